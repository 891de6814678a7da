// /ui: the instances, filtered by runtime status, workflow, created time and
// id prefix, a page at a time (the API's x-ms-continuation-token), with the
// count of each status (GET /v1/stats, for the chosen workflow) on its
// chip. The filters live in the address, so a filtered list can be
// bookmarked.

import {
  h, clear, api, DF, UI, STATUSES, TERMINAL, initFrame, onKeyChange, hideBanner, showError,
  statusBadge, fmtTime, age, summary, countdown, instanceURL, waitLabel,
} from './common.js';

const params = new URLSearchParams(location.search);
const f = {
  statuses: new Set((params.get('runtimeStatus') || '').split(',').filter((s) => STATUSES.includes(s))),
  workflow: params.get('workflow') || '',
  from: params.get('createdTimeFrom') || '',
  to: params.get('createdTimeTo') || '',
  prefix: params.get('instanceIdPrefix') || '',
  top: Math.min(1000, Math.max(1, parseInt(params.get('top'), 10) || 50)),
};

let tokens = ['']; // tokens[i] starts page i
let page = 0;
let rows = [];
let loading = false;
const ui = {};

initFrame();
onKeyChange(() => { loadWorkflows(); load(); });
build();
loadWorkflows();
load();
setInterval(() => {
  if (ui.auto.checked && !loading && document.visibilityState === 'visible') load(true);
}, 5000);
setInterval(tickAges, 1000);

function build() {
  ui.statusBoxes = STATUSES.map((s) => h('label', {class: 'chip'},
    h('input', {type: 'checkbox', value: s, checked: f.statuses.has(s), onchange: apply}), ' ', s,
    h('span', {class: 'muted small n', 'data-count': s})));
  ui.workflow = h('select', {id: 'f-workflow', onchange: apply}, h('option', {value: ''}, 'any workflow'));
  if (f.workflow) ui.workflow.append(h('option', {value: f.workflow, selected: true}, f.workflow));
  ui.from = h('input', {id: 'f-from', type: 'datetime-local', step: 1, value: toLocalInput(f.from), onchange: apply});
  ui.to = h('input', {id: 'f-to', type: 'datetime-local', step: 1, value: toLocalInput(f.to), onchange: apply});
  ui.prefix = h('input', {id: 'f-prefix', type: 'search', placeholder: 'id prefix', value: f.prefix, spellcheck: 'false', autocomplete: 'off'});
  ui.top = h('select', {id: 'f-top', onchange: apply}, [10, 25, 50, 100, 250, 1000].map((n) =>
    h('option', {value: n, selected: n === f.top}, `${n} per page`)));
  ui.auto = h('input', {type: 'checkbox', id: 'auto', checked: true});
  ui.tbody = h('tbody', {id: 'rows'});
  ui.prev = h('button', {type: 'button', id: 'prev', onclick: () => go(page - 1)}, '← Previous');
  ui.next = h('button', {type: 'button', id: 'next', onclick: () => go(page + 1)}, 'Next →');
  ui.pageInfo = h('span', {class: 'muted', id: 'page-info'});
  ui.count = h('span', {class: 'muted small'});
  ui.bulkOp = h('select', {id: 'bulk-op', 'aria-label': 'bulk operation'},
    ['terminate', 'suspend', 'resume', 'purge'].map((op) => h('option', {value: op}, op)));
  ui.bulkBtn = h('button', {type: 'button', id: 'bulk-go', onclick: bulk}, 'every matching instance…');
  ui.bulkInfo = h('span', {class: 'muted small', id: 'bulk-info'});

  const form = h('form', {class: 'filters', id: 'filters', onsubmit: (e) => { e.preventDefault(); apply(); }},
    h('div', {class: 'chips', role: 'group', 'aria-label': 'runtime status'}, ui.statusBoxes),
    h('div', {class: 'filter-row'},
      h('label', null, 'Workflow ', ui.workflow),
      h('label', null, 'Created from ', ui.from),
      h('label', null, 'to ', ui.to),
      h('label', null, 'Id ', ui.prefix),
      ui.top,
      h('button', {type: 'submit'}, 'Filter'),
      h('button', {type: 'button', onclick: reset}, 'Clear')),
    h('div', {class: 'filter-row'}, ui.bulkOp, ui.bulkBtn, ui.bulkInfo));

  clear(document.getElementById('main'),
    h('div', {class: 'page-head'}, h('h1', null, 'Instances'), ui.count,
      h('label', {class: 'auto muted small'}, ui.auto, ' refresh every 5 s')),
    form,
    h('section', {class: 'card flush'},
      h('table', {class: 'list', id: 'instances'},
        h('thead', null, h('tr', null,
          h('th', null, 'Instance'), h('th', null, 'Workflow'), h('th', null, 'Status'),
          h('th', null, 'Custom status'), h('th', null, 'Current step'),
          h('th', {class: 'num', title: 'oldest first, as the API lists them'}, 'Age ↓'))),
        ui.tbody)),
    h('div', {class: 'pager'}, ui.prev, ui.pageInfo, ui.next));
}

// apply reads the form into the filters and the address, and starts again
// at the first page.
function apply() {
  f.statuses = new Set(ui.statusBoxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value));
  f.workflow = ui.workflow.value;
  f.from = fromLocalInput(ui.from.value);
  f.to = fromLocalInput(ui.to.value);
  f.prefix = ui.prefix.value.trim();
  f.top = parseInt(ui.top.value, 10) || 50;
  const q = new URLSearchParams();
  if (f.statuses.size) q.set('runtimeStatus', [...f.statuses].join(','));
  if (f.workflow) q.set('workflow', f.workflow);
  if (f.from) q.set('createdTimeFrom', f.from);
  if (f.to) q.set('createdTimeTo', f.to);
  if (f.prefix) q.set('instanceIdPrefix', f.prefix);
  if (f.top !== 50) q.set('top', f.top);
  history.replaceState(null, '', UI + (q.toString() ? '?' + q : ''));
  tokens = [''];
  page = 0;
  load();
}

function reset() {
  for (const l of ui.statusBoxes) l.querySelector('input').checked = false;
  ui.workflow.value = '';
  ui.from.value = ui.to.value = ui.prefix.value = '';
  ui.top.value = '50';
  apply();
}

function go(p) {
  if (p < 0 || p >= tokens.length) return;
  page = p;
  load();
}

async function load(quiet) {
  if (loading) return;
  loading = true;
  if (!quiet) ui.tbody.classList.add('loading');
  try {
    const token = tokens[page];
    const [res] = await Promise.all([api(`${DF}/instances`, {
      query: {
        runtimeStatus: [...f.statuses].join(','), workflow: f.workflow,
        createdTimeFrom: f.from, createdTimeTo: f.to,
        instanceIdPrefix: f.prefix, top: f.top, showInput: 'false',
      },
      headers: token ? {'x-ms-continuation-token': token} : {},
    }), loadCounts()]);
    const next = res.headers.get('x-ms-continuation-token') || '';
    tokens.length = page + 1;
    if (next) tokens.push(next);
    rows = res.body || [];
    hideBanner();
    render();
  } catch (e) {
    showError(e, 'Listing instances');
  } finally {
    loading = false;
    ui.tbody.classList.remove('loading');
  }
}

function render() {
  if (!rows.length) {
    clear(ui.tbody, h('tr', null, h('td', {colspan: 6, class: 'empty'},
      page ? 'No more instances.' : 'No instances match. Start one from ', page ? null : h('a', {href: UI + '/workflows'}, 'Workflows'), page ? null : '.')));
  } else {
    clear(ui.tbody, rows.map(row));
  }
  ui.prev.disabled = page === 0;
  ui.next.disabled = page + 1 >= tokens.length;
  ui.pageInfo.textContent = `page ${page + 1}`;
  ui.count.textContent = `${rows.length} shown`;
}

function row(it) {
  const url = instanceURL(it.instanceId);
  const w = !TERMINAL.has(it.runtimeStatus) ? it.waitingFor : null;
  let step = '—';
  if (it.currentStep) {
    step = [h('code', null, it.currentStep)];
    if (w) {
      const what = waitLabel(w).join(' ').trim();
      step.push(h('span', {class: 'muted small'}, ' ', what,
        w.until ? h('span', {class: 'cd', 'data-until': w.until}, ' · ' + countdown(w.until)) : null));
    }
  }
  return h('tr', {'data-id': it.instanceId, 'data-status': it.runtimeStatus},
    h('td', {class: 'id'}, h('a', {href: url}, it.instanceId)),
    h('td', null, h('a', {href: `${UI}/workflows?name=${encodeURIComponent(it.name)}`, class: 'quiet'}, it.name)),
    h('td', null, statusBadge(it.runtimeStatus)),
    h('td', {class: 'summary', title: it.customStatus == null ? '' : JSON.stringify(it.customStatus, null, 2)}, summary(it.customStatus)),
    h('td', null, step),
    h('td', {class: 'num', title: 'created ' + fmtTime(it.createdTime), 'data-created': it.createdTime}, age(it.createdTime)));
}

// bulk applies the chosen operation to every instance the filters select
// (POST /v1/bulk/{op}): a dry run for the count, a confirmation, then page
// after page, showing the progress.
async function bulk() {
  const op = ui.bulkOp.value;
  const query = {
    workflow: f.workflow, runtimeStatus: [...f.statuses].join(','),
    createdTimeFrom: f.from, createdTimeTo: f.to, instanceIdPrefix: f.prefix,
  };
  if (!Object.values(query).some((v) => v)) {
    ui.bulkInfo.textContent = 'Choose a filter first: a bulk operation never takes every instance.';
    return;
  }
  ui.bulkBtn.disabled = true;
  try {
    const pages = async (dryRun, progress) => {
      let token = '';
      const sum = {matched: 0, applied: 0, skipped: 0};
      do {
        const res = await api(`/v1/bulk/${op}`, {method: 'POST', query: {...query, dryRun: dryRun ? 'true' : '', continuationToken: token}});
        for (const k of Object.keys(sum)) sum[k] += res.body[k] || 0;
        token = res.body.continuationToken || '';
        if (progress) progress(sum);
      } while (token);
      return sum;
    };
    const count = (await pages(true)).matched;
    if (!count) {
      ui.bulkInfo.textContent = `No instance to ${op}.`;
      return;
    }
    if (!confirm(`${op} ${count.toLocaleString('en')} instance${count === 1 ? '' : 's'}?`)) return;
    const sum = await pages(false, (s) => { ui.bulkInfo.textContent = `${op}: ${s.applied.toLocaleString('en')} of ${count.toLocaleString('en')}…`; });
    ui.bulkInfo.textContent = `${op}: done, ${sum.applied} applied` + (sum.skipped ? `, ${sum.skipped} skipped (finished or gone meanwhile)` : '') + '.';
    load();
  } catch (e) {
    showError(e, `Bulk ${op}`);
  } finally {
    ui.bulkBtn.disabled = false;
  }
}

// loadCounts puts the instances per status (of the chosen workflow, or of
// all) on the status chips; the list does without them when they fail.
async function loadCounts() {
  try {
    const res = await api('/v1/stats', {query: {workflow: f.workflow}});
    for (const el of document.querySelectorAll('[data-count]')) {
      const n = (res.body.total || {})[el.dataset.count] || 0;
      el.textContent = ' ' + n.toLocaleString('en');
    }
  } catch {
    for (const el of document.querySelectorAll('[data-count]')) el.textContent = '';
  }
}

function tickAges() {
  for (const td of ui.tbody.querySelectorAll('[data-created]')) td.textContent = age(td.dataset.created);
  for (const el of ui.tbody.querySelectorAll('.cd')) el.textContent = ' · ' + countdown(el.dataset.until);
}

async function loadWorkflows() {
  try {
    const res = await api('/v1/workflows');
    const names = (res.body.workflows || []).map((w) => w.name).sort();
    const cur = f.workflow;
    clear(ui.workflow, h('option', {value: ''}, 'any workflow'),
      names.map((n) => h('option', {value: n, selected: n === cur}, n)));
    if (cur && !names.includes(cur)) ui.workflow.append(h('option', {value: cur, selected: true}, cur));
  } catch { /* the list has its own error */ }
}

// datetime-local inputs hold local time without a zone; the API wants UTC.
function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function fromLocalInput(v) {
  if (!v) return '';
  const d = new Date(v);
  return isNaN(d) ? '' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
