// The workflow diagram: the step tree from /ui/api/workflows/{name}/{hash}/graph
// drawn as nested boxes — a spine of steps, switch cases and parallel
// branches side by side, onTimeout/onError handlers beside their step — and
// the marks of an instance on it: steps done, the current step, the branches
// taken.

import {h, UI, api} from './common.js';

export async function loadGraph(name, hash) {
  const path = `${UI}/api/workflows/${encodeURIComponent(name)}/${encodeURIComponent(hash || 'latest')}/graph`;
  return (await api(path)).body;
}

// Where nested lists are drawn, by block kind (the rest, bodies, inside).
const BRANCH_KINDS = new Set(['case', 'default', 'branch']);
const HANDLER_KINDS = new Set(['onTimeout', 'onError', 'catch']);

const KIND_TAGS = {
  activity: 'activity', wait: 'wait event', timer: 'timer', setStatus: 'set status', set: 'set',
  switch: 'switch', return: 'return', fail: 'fail', parallel: 'parallel', forEach: 'for each',
  while: 'while', try: 'try', call: 'call', continueAsNew: 'continue as new',
};

// renderGraph returns the diagram element. opts.onStep(node, el) is called
// for each step box (the workflows page links boxes to the source).
export function renderGraph(graph, opts = {}) {
  const root = h('div', {class: 'diagram', 'data-workflow': graph.name});
  if (graph.error) {
    root.append(h('p', {class: 'muted'}, 'This version does not parse any more: ' + graph.error));
    return root;
  }
  const flow = renderFlow(graph.steps, opts);
  flow.prepend(h('div', {class: 'item terminal'}, h('span', {class: 'pill start'}, 'start')));
  flow.append(h('div', {class: 'item terminal'}, h('span', {class: 'pill end', 'data-end': ''}, 'end')));
  root.append(flow);
  return root;
}

function renderFlow(steps, opts) {
  const flow = h('div', {class: 'flow'});
  for (const n of steps) flow.append(renderStep(n, opts));
  return flow;
}

function renderStep(n, opts) {
  const box = h('div', {
    class: `step k-${n.kind}`,
    'data-step': n.id,
    title: (n.source ? n.source + '\n\n' : '') + `step ${n.id} · line ${n.pos.line}`,
    tabindex: 0,
  },
  h('div', {class: 'step-head'},
    h('span', {class: 'kind'}, KIND_TAGS[n.kind] || n.kind),
    h('span', {class: 'step-id'}, n.id)),
  n.label && n.label !== n.kind ? h('div', {class: 'label'}, n.label) : null,
  n.detail ? h('div', {class: 'detail'}, n.detail) : null,
  n.if ? h('div', {class: 'cond'}, 'if ', h('code', null, n.if)) : null,
  h('div', {class: 'live', 'data-live': ''}));
  if (opts.onStep) opts.onStep(n, box);

  const item = h('div', {class: 'item', 'data-item': n.id});
  const blocks = n.blocks || [];
  const branches = blocks.filter((b) => BRANCH_KINDS.has(b.kind));
  const handlers = blocks.filter((b) => HANDLER_KINDS.has(b.kind));
  const bodies = blocks.filter((b) => !BRANCH_KINDS.has(b.kind) && !HANDLER_KINDS.has(b.kind));

  // A loop's or a try's steps: inside the step.
  for (const b of bodies) {
    box.append(h('div', {class: 'body', 'data-block': b.id},
      h('div', {class: 'body-label'}, b.label),
      b.steps.length ? renderFlow(b.steps, opts) : h('div', {class: 'muted small'}, '(no steps)')));
  }
  // Timeouts, errors: beside the step, dashed.
  if (handlers.length) {
    const side = h('div', {class: 'handlers'});
    for (const b of handlers) {
      side.append(h('div', {class: 'handler b-' + b.kind, 'data-block': b.id},
        h('div', {class: 'handler-label'}, b.label),
        b.steps.length ? renderFlow(b.steps, opts) : h('div', {class: 'muted small'}, '(nothing: go on)')));
    }
    item.append(h('div', {class: 'with-handlers'}, box, side));
  } else {
    item.append(box);
  }
  // Cases and branches: side by side below the step, joined after it.
  if (branches.length) {
    const row = h('div', {class: 'branches'});
    for (const b of branches) {
      row.append(h('div', {class: 'branch b-' + b.kind, 'data-block': b.id},
        h('div', {class: 'item'}, h('span', {class: 'pill case', title: b.label}, b.label)),
        renderFlow(b.steps, opts),
        h('div', {class: 'tail'})));
    }
    item.append(row);
  }
  return item;
}

// index maps every step id to where it stands: its list, its place in it,
// the block holding the list and the step owning that block.
function index(graph) {
  const byId = new Map();
  const walk = (steps, owner, block) => {
    steps.forEach((node, i) => {
      byId.set(node.id, {node, steps, i, owner, block});
      for (const b of node.blocks || []) walk(b.steps, node, b);
    });
  };
  walk(graph.steps, null, null);
  return byId;
}

const RANK = {done: 1, entered: 2, failed: 3, current: 4};

// computeMarks works out, from a status with historyEvents, which steps
// are done, which one is current, and which blocks were taken. The history
// names the steps that left a trace (activities, timers, statuses, the
// end); a step before a traced one in its list has run too, and so has the
// owner of a list a traced step is in.
export function computeMarks(graph, status) {
  const byId = index(graph);
  const marks = new Map();
  const taken = new Set();
  const entered = new Set(); // owners of the current step
  const set = (id, m) => {
    if ((RANK[m] || 0) > (RANK[marks.get(id)] || 0)) marks.set(id, m);
  };
  const reach = (id, m) => {
    let at = byId.get(id);
    if (!at) return;
    set(id, m);
    for (;;) {
      for (let j = 0; j < at.i; j++) set(at.steps[j].id, 'done');
      if (!at.block) return;
      taken.add(at.block.id);
      const owner = at.owner;
      set(owner.id, m === 'current' ? 'entered' : 'done');
      if (m === 'current') entered.add(owner.id);
      at = byId.get(owner.id);
      if (!at) return;
    }
  };
  const terminal = ['Completed', 'Failed', 'Terminated'].includes(status.runtimeStatus);
  let ended = false;
  for (const e of status.historyEvents || []) {
    if (e.EventType === 'ExecutionCompleted') {
      ended = true;
      if (e.StepId) reach(e.StepId, 'done');
      else if (graph.steps.length) reach(graph.steps[graph.steps.length - 1].id, 'done');
    } else if (e.EventType === 'ExecutionFailed') {
      if (e.StepId) reach(e.StepId, 'failed');
    } else if (e.StepId) {
      reach(e.StepId, 'done');
    }
  }
  if (!terminal && status.currentStep) reach(status.currentStep, 'current');
  // A step that already holds the current step is not done.
  for (const id of entered) marks.set(id, 'entered');
  return {marks, taken, ended, current: terminal ? null : status.currentStep};
}

// applyMarks puts the marks on a rendered diagram.
export function applyMarks(root, m) {
  for (const el of root.querySelectorAll('.step')) {
    el.classList.remove('done', 'current', 'entered', 'failed');
    const mark = m.marks.get(el.dataset.step);
    if (mark) el.classList.add(mark);
    el.closest('.item').classList.toggle('reached', !!mark);
  }
  for (const el of root.querySelectorAll('.branch, .handler, .body')) {
    el.classList.toggle('taken', m.taken.has(el.dataset.block));
  }
  for (const row of root.querySelectorAll('.branches')) {
    const any = [...row.children].some((b) => b.classList.contains('taken'));
    for (const b of row.children) b.classList.toggle('untaken', any && !b.classList.contains('taken'));
  }
  const end = root.querySelector('[data-end]');
  if (end) {
    end.classList.toggle('done', !!m.ended);
    end.closest('.item').classList.toggle('reached', !!m.ended);
  }
}

// stepBox returns the box of a step id in a rendered diagram.
export function stepBox(root, id) {
  return [...root.querySelectorAll('.step')].find((el) => el.dataset.step === id) || null;
}
