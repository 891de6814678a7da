// /ui/instances/{id}: one instance — its workflow as a diagram with the steps
// done and the current one, the custom status, what it waits for with a
// countdown, the history, and buttons to raise an event, suspend, resume and
// terminate. It follows the instance live through the status stream
// (GET /v1/instances/{id}/events) without reloading.

import {
  h, clear, api, withKey, DF, UI, TERMINAL, initFrame, onKeyChange, banner, hideBanner, showError, toast,
  statusBadge, fmtTime, countdown, jsonView, shortHash, card, ApiError, waitLabel,
} from './common.js';
import {loadGraph, renderGraph, computeMarks, applyMarks, stepBox} from './graph.js';

const id = instanceId();
const base = `${DF}/instances/${encodeURIComponent(id)}`;

let st = null;          // the latest full status (with historyEvents)
let graph = null;       // the diagram's step tree
let graphHash = '';     // definitionHash the diagram is of
let diagram = null;     // the rendered diagram
let es = null;          // the EventSource
let refreshTimer = 0;
let pollTimer = 0;
const ui = {};          // elements updated in place

initFrame();
onKeyChange(() => { closeStream(); start(); });
buildSkeleton();
start();
setInterval(tick, 500);

// instanceId reads the id from the address: /ui/instances/{id}.
function instanceId() {
  const raw = location.pathname.slice((UI + '/instances/').length).replace(/\/+$/, '');
  try { return decodeURIComponent(raw); } catch { return raw; }
}

function buildSkeleton() {
  ui.status = h('span', {id: 'runtime-status'});
  ui.live = h('span', {id: 'live', class: 'live-dot off', title: 'live updates'}, 'offline');
  ui.workflow = h('a', {id: 'workflow-link'});
  ui.meta = h('dl', {class: 'meta'});
  ui.diagram = h('div', {id: 'diagram'}, h('p', {class: 'muted'}, 'Loading the workflow…'));
  ui.custom = h('div', {id: 'custom-status'});
  ui.waiting = h('div', {id: 'waiting'});
  ui.waitCard = card('Waiting for', ui.waiting);
  ui.output = h('div', {id: 'output'});
  ui.outCard = card('Output', ui.output);
  ui.input = h('div', {id: 'input'});
  ui.history = h('ol', {id: 'history', class: 'timeline'});
  ui.histCount = h('span', {class: 'muted small'});

  // Raise an event.
  ui.evName = h('input', {id: 'event-name', name: 'event', required: true, placeholder: 'EventName', spellcheck: 'false', autocomplete: 'off'});
  ui.evPayload = h('textarea', {id: 'event-payload', name: 'payload', rows: 3, placeholder: 'JSON payload, e.g. true (empty = null)', spellcheck: 'false'});
  ui.evError = h('div', {class: 'form-error', role: 'alert'});
  ui.raise = h('button', {id: 'raise-event', type: 'submit', class: 'primary'}, 'Raise event');
  const raiseForm = h('form', {id: 'raise-form', class: 'stack', onsubmit: raiseEvent},
    h('label', null, 'Event name', ui.evName),
    h('label', null, 'Payload', ui.evPayload),
    ui.evError,
    h('div', null, ui.raise));

  // Suspend, resume, terminate.
  ui.reason = h('input', {id: 'reason', name: 'reason', placeholder: 'reason (optional)', autocomplete: 'off'});
  ui.suspend = h('button', {id: 'suspend', type: 'button', onclick: () => control('suspend')}, 'Suspend');
  ui.resume = h('button', {id: 'resume', type: 'button', onclick: () => control('resume')}, 'Resume');
  ui.terminate = h('button', {id: 'terminate', type: 'button', class: 'danger', onclick: terminateClick}, 'Terminate');
  const controls = h('div', {class: 'stack'},
    h('label', null, 'Reason', ui.reason),
    h('div', {class: 'buttons'}, ui.suspend, ui.resume, ui.terminate));

  ui.actions = card('Actions', raiseForm, h('hr'), controls);

  clear(document.getElementById('main'),
    h('div', {class: 'page-head'},
      h('h1', null, h('span', {class: 'muted'}, 'Instance '), h('span', {id: 'instance-id'}, id)),
      ui.status, ui.live),
    h('div', {class: 'subhead'}, 'Workflow ', ui.workflow, ui.meta),
    h('div', {class: 'grid'},
      h('section', {class: 'card diagram-card'}, h('h2', null, 'Steps'), ui.diagram),
      h('div', {class: 'side'},
        card('Custom status', ui.custom),
        ui.waitCard,
        ui.outCard,
        ui.actions,
        h('details', {class: 'card'}, h('summary', null, 'Input'), ui.input))),
    h('section', {class: 'card'}, h('h2', null, 'History ', ui.histCount), ui.history));
  document.title = `${id} · cairn`;
}

async function start() {
  if (!id) {
    banner('No instance id in the address.');
    return;
  }
  await refresh();
  if (st && !TERMINAL.has(st.runtimeStatus)) openStream();
}

// refresh reads the full status (with history) and redraws.
async function refresh() {
  let res;
  try {
    res = await api(base, {query: {showHistory: 'true', showHistoryOutput: 'true'}});
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      clear(document.getElementById('main'),
        h('h1', null, 'No instance ', h('code', null, id)),
        h('p', null, 'It may have been purged, or never started. ', h('a', {href: UI}, 'All instances')));
      closeStream();
      return;
    }
    showError(e, 'Reading the status');
    return;
  }
  hideBanner();
  // An older answer overtaken by a newer one (a restarted instance under
  // the same id starts its revisions again, with a new created time).
  if (st && res.body.createdTime === st.createdTime && res.body.revision < st.revision) return;
  st = res.body;
  render();
  if (st.definitionHash && st.definitionHash !== graphHash) await drawGraph();
  mark();
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 80);
}

async function drawGraph() {
  const hash = st.definitionHash;
  try {
    graph = await loadGraph(st.name, hash);
  } catch (e) {
    clear(ui.diagram, h('p', {class: 'muted'}, 'The diagram is not available: ' + e.message));
    return;
  }
  graphHash = hash;
  diagram = renderGraph(graph);
  clear(ui.diagram, diagram);
}

function mark() {
  if (!diagram || !graph || !st) return;
  applyMarks(diagram, computeMarks(graph, st));
  tick();
}

function render() {
  clear(ui.status, statusBadge(st.runtimeStatus));
  ui.status.dataset.status = st.runtimeStatus;
  ui.workflow.textContent = st.name;
  ui.workflow.href = `${UI}/workflows?name=${encodeURIComponent(st.name)}&hash=${encodeURIComponent(st.definitionHash || '')}`;
  clear(ui.meta,
    h('dt', null, 'created'), h('dd', null, fmtTime(st.createdTime)),
    h('dt', null, 'updated'), h('dd', {id: 'updated'}, fmtTime(st.lastUpdatedTime)),
    h('dt', null, 'version'), h('dd', {title: st.definitionHash}, h('code', null, shortHash(st.definitionHash))),
    h('dt', null, 'revision'), h('dd', {id: 'revision'}, String(st.revision)));
  renderCustom();
  renderWaiting();
  const done = TERMINAL.has(st.runtimeStatus);
  ui.outCard.hidden = !done;
  clear(ui.output, done ? jsonView(st.output) : null);
  clear(ui.input, jsonView(st.input));
  renderHistory();
  renderActions();
}

function renderCustom() {
  clear(ui.custom, st.customStatus == null
    ? h('p', {class: 'muted'}, 'No custom status yet.')
    : jsonView(st.customStatus, 'big'));
}

function renderWaiting() {
  const w = !TERMINAL.has(st.runtimeStatus) ? st.waitingFor : null;
  ui.waitCard.hidden = !w;
  if (!w) {
    clear(ui.waiting);
    return;
  }
  const what = waitLabel(w);
  clear(ui.waiting,
    h('div', {class: 'wait-what'}, h('span', {class: 'kind'}, what[0]), ' ', h('strong', {id: 'waiting-for'}, what[1] || '')),
    h('div', {class: 'muted small'}, 'at step ', h('code', null, st.currentStep || '')),
    w.until
      ? h('div', {class: 'deadline'},
        h('span', {id: 'countdown', class: 'countdown', 'data-until': w.until}, countdown(w.until)),
        h('span', {class: 'muted small'}, ' until ', fmtTime(w.until)))
      : h('div', {class: 'muted small'}, 'no deadline'));
  if (w.kind === 'event' && w.event && !ui.evName.value && document.activeElement !== ui.evName) {
    ui.evName.value = w.event;
  }
}

function renderActions() {
  const s = st.runtimeStatus;
  const done = TERMINAL.has(s);
  ui.actions.hidden = done;
  ui.raise.disabled = done;
  ui.suspend.disabled = done || s === 'Suspended';
  ui.resume.disabled = s !== 'Suspended';
  ui.terminate.disabled = done;
}

const EVENT_LABELS = {
  ExecutionScheduled: 'scheduled', ExecutionStarted: 'started', ExecutionCompleted: 'completed', ExecutionFailed: 'failed',
  ExecutionTerminated: 'terminated', ExecutionSuspended: 'suspended', ExecutionResumed: 'resumed',
  TaskScheduled: 'activity scheduled', TaskCompleted: 'activity completed', TaskFailed: 'activity failed',
  TimerCreated: 'timer created', TimerFired: 'timer fired', EventRaised: 'event raised',
  CustomStatusUpdated: 'status set',
};

function renderHistory() {
  const evs = st.historyEvents || [];
  ui.histCount.textContent = `(${evs.length} events)`;
  const t0 = evs.length ? new Date(evs[0].Timestamp).getTime() : 0;
  clear(ui.history, evs.map((e) => {
    const offset = (new Date(e.Timestamp).getTime() - t0) / 1000;
    const data = e.Data !== undefined ? e.Data : null;
    return h('li', {class: 'ev ev-' + e.EventType, 'data-type': e.EventType},
      h('span', {class: 'ev-time', title: e.Timestamp}, fmtTime(e.Timestamp, true).slice(11), h('span', {class: 'muted'}, ` +${offset.toFixed(3)} s`)),
      h('span', {class: 'ev-type'}, EVENT_LABELS[e.EventType] || e.EventType),
      e.StepId ? h('a', {class: 'ev-step', href: '#', onclick: (ev) => { ev.preventDefault(); flash(e.StepId); }}, e.StepId) : null,
      e.Name ? h('span', {class: 'ev-name'}, e.Name) : null,
      e.Attempt > 1 ? h('span', {class: 'muted small'}, `attempt ${e.Attempt}`) : null,
      e.Reason ? h('span', {class: 'ev-reason'}, '“' + e.Reason + '”') : null,
      data !== null ? h('code', {class: 'ev-data', title: JSON.stringify(data, null, 2)}, clip(JSON.stringify(data), 140)) : null);
  }));
}

function clip(s, n) {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

function flash(stepId) {
  const box = diagram && stepBox(diagram, stepId);
  if (!box) return;
  box.scrollIntoView({block: 'center', behavior: 'smooth'});
  box.classList.remove('flash');
  void box.offsetWidth;
  box.classList.add('flash');
}

// tick updates the countdowns every half second.
function tick() {
  const w = st && !TERMINAL.has(st.runtimeStatus) ? st.waitingFor : null;
  const cd = document.getElementById('countdown');
  if (cd) cd.textContent = countdown(cd.dataset.until);
  if (!diagram) return;
  for (const el of diagram.querySelectorAll('[data-live]')) {
    const box = el.closest('.step');
    if (w && box.classList.contains('current')) {
      const what = w.kind === 'event' ? 'waiting for ' + w.event
        : w.kind === 'activity' ? 'running' : w.kind === 'retry' ? 'retrying' : 'timer';
      el.textContent = what + (w.until ? ' · ' + countdown(w.until) : '');
      if (st.runtimeStatus === 'Suspended') el.textContent = 'suspended · ' + el.textContent;
    } else if (el.textContent) {
      el.textContent = '';
    }
  }
}

// ---- live updates ----------------------------------------------------------

function openStream() {
  closeStream();
  if (typeof EventSource === 'undefined') {
    poll();
    return;
  }
  es = new EventSource(withKey(`/v1/instances/${encodeURIComponent(id)}/events`));
  es.addEventListener('open', () => setLive(true));
  es.addEventListener('status', (msg) => {
    let ev;
    try { ev = JSON.parse(msg.data); } catch { return; }
    applyEvent(ev);
  });
  es.addEventListener('error', () => {
    setLive(false);
    if (es && es.readyState === EventSource.CLOSED) {
      // Refused (a wrong key, a purged instance): poll instead.
      es = null;
      poll();
    }
  });
}

function closeStream() {
  if (es) es.close();
  es = null;
  clearTimeout(pollTimer);
  setLive(false);
}

function poll() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(async () => {
    await refresh();
    if (st && !TERMINAL.has(st.runtimeStatus)) poll();
  }, 3000);
}

function setLive(on) {
  ui.live.className = 'live-dot ' + (on ? 'on' : 'off');
  ui.live.textContent = on ? 'live' : (st && TERMINAL.has(st.runtimeStatus) ? 'finished' : 'offline');
}

// applyEvent shows a status event at once, then reads the rest (current
// step, history) with one status call.
function applyEvent(ev) {
  if (!st || ev.revision < st.revision) return;
  const changed = ev.revision !== st.revision || ev.runtimeStatus !== st.runtimeStatus;
  st.runtimeStatus = ev.runtimeStatus;
  st.customStatus = ev.customStatus;
  st.output = ev.output;
  st.lastUpdatedTime = ev.lastUpdatedTime;
  st.revision = ev.revision;
  clear(ui.status, statusBadge(st.runtimeStatus));
  ui.status.dataset.status = st.runtimeStatus;
  renderCustom();
  if (TERMINAL.has(ev.runtimeStatus)) {
    if (es) es.close();
    es = null;
    setLive(false);
  }
  if (changed) scheduleRefresh();
}

// ---- actions ---------------------------------------------------------------

async function raiseEvent(e) {
  e.preventDefault();
  ui.evError.textContent = '';
  const name = ui.evName.value.trim();
  const text = ui.evPayload.value.trim();
  if (!name) {
    ui.evError.textContent = 'Give the event a name.';
    return;
  }
  if (text) {
    try { JSON.parse(text); } catch (err) {
      ui.evError.textContent = 'The payload is not JSON: ' + err.message;
      return;
    }
  }
  ui.raise.disabled = true;
  try {
    await api(`${base}/raiseEvent/${encodeURIComponent(name)}`, {method: 'POST', body: text});
    toast(`Event ${name} raised.`);
    ui.evPayload.value = '';
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) ui.evError.textContent = err.message;
  } finally {
    ui.raise.disabled = st && TERMINAL.has(st.runtimeStatus);
  }
  if (!es) scheduleRefresh();
}

let armed = 0;
function terminateClick() {
  if (!armed) {
    ui.terminate.textContent = 'Confirm terminate';
    ui.terminate.classList.add('armed');
    armed = setTimeout(disarm, 4000);
    return;
  }
  disarm();
  control('terminate');
}

function disarm() {
  clearTimeout(armed);
  armed = 0;
  ui.terminate.textContent = 'Terminate';
  ui.terminate.classList.remove('armed');
}

async function control(what) {
  try {
    await api(`${base}/${what}`, {method: 'POST', query: {reason: ui.reason.value.trim()}});
    toast(`${what[0].toUpperCase() + what.slice(1)} sent.`);
    ui.reason.value = '';
  } catch (err) {
    showError(err, what);
  }
  if (!es) scheduleRefresh();
}
