// /ui/workflows: every deployed workflow with its versions, the diagram of a
// version, its lint problems and its source; a form starts an instance.

import {
  h, clear, api, DF, UI, initFrame, onKeyChange, hideBanner, showError, fmtTime, shortHash, card,
  instanceURL, ApiError,
} from './common.js';
import {loadGraph, renderGraph} from './graph.js';

const params = new URLSearchParams(location.search);
let selected = params.get('name') || '';
let selectedHash = params.get('hash') || '';
let workflows = [];
const ui = {};

initFrame();
onKeyChange(load);
build();
load();

function build() {
  ui.list = h('nav', {class: 'wf-list', id: 'workflow-list', 'aria-label': 'workflows'});
  ui.detail = h('div', {class: 'wf-detail', id: 'workflow'});
  clear(document.getElementById('main'),
    h('div', {class: 'page-head'}, h('h1', null, 'Workflows')),
    h('div', {class: 'wf-layout'}, ui.list, ui.detail));
}

async function load() {
  try {
    workflows = (await api('/v1/workflows')).body.workflows || [];
  } catch (e) {
    showError(e, 'Listing workflows');
    return;
  }
  hideBanner();
  workflows.sort((a, b) => a.name.localeCompare(b.name));
  if (!workflows.length) {
    clear(ui.list);
    clear(ui.detail, card(null, h('p', null, 'No workflow is deployed yet. Deploy one with ',
      h('code', null, 'cairn serve --workflows DIR'), ' or ', h('code', null, 'PUT /v1/workflows/{name}'), '.')));
    return;
  }
  if (!workflows.some((w) => w.name === selected)) {
    selected = workflows[0].name;
    selectedHash = '';
  }
  renderList();
  show();
}

function renderList() {
  clear(ui.list, workflows.map((w) => h('a', {
    href: `${UI}/workflows?name=${encodeURIComponent(w.name)}`,
    class: w.name === selected ? 'active' : '',
    'data-name': w.name,
    onclick: (e) => {
      e.preventDefault();
      selected = w.name;
      selectedHash = '';
      history.replaceState(null, '', `${UI}/workflows?name=${encodeURIComponent(w.name)}`);
      renderList();
      show();
    },
  }, h('span', null, w.name), h('span', {class: 'muted small'}, `${w.versions.length} version${w.versions.length === 1 ? '' : 's'}`))));
}

async function show() {
  const w = workflows.find((x) => x.name === selected);
  const hash = selectedHash && w.versions.some((v) => v.hash === selectedHash) ? selectedHash : w.latestHash;
  clear(ui.detail, h('p', {class: 'muted'}, 'Loading…'));
  let graph, doc;
  try {
    [graph, doc] = await Promise.all([
      loadGraph(w.name, hash),
      api(`/v1/workflows/${encodeURIComponent(w.name)}`, {query: {hash}}).then((r) => r.body),
    ]);
  } catch (e) {
    showError(e, 'Reading ' + w.name);
    clear(ui.detail);
    return;
  }
  if (selected !== w.name) return; // another was chosen meanwhile

  const source = sourceView(doc.source, graph.issues);
  const diagram = renderGraph(graph, {
    onStep: (n, el) => el.addEventListener('click', (e) => { e.stopPropagation(); source.show(n.pos.line); }),
  });
  const versions = [...w.versions].sort((a, b) => String(b.createdTime).localeCompare(String(a.createdTime)));

  clear(ui.detail,
    h('div', {class: 'wf-head'},
      h('h2', {class: 'wf-name'}, w.name),
      hash === w.latestHash ? h('span', {class: 'badge st-latest'}, 'latest') : h('span', {class: 'badge st-old'}, 'older version'),
      h('a', {href: `${UI}?workflow=${encodeURIComponent(w.name)}`, class: 'button'}, 'Instances →')),
    graph.description ? h('p', {class: 'description'}, graph.description) : null,
    h('div', {class: 'grid'},
      h('section', {class: 'card diagram-card'}, h('h2', null, 'Steps'), diagram,
        h('p', {class: 'muted small'}, 'Click a step to see its source.')),
      h('div', {class: 'side'},
        lintCard(graph),
        startCard(w.name),
        card('Versions', h('table', {class: 'list compact', id: 'versions'},
          h('thead', null, h('tr', null, h('th', null, 'Hash'), h('th', null, 'Deployed'), h('th'))),
          h('tbody', null, versions.map((v) => h('tr', {class: v.hash === hash ? 'selected' : ''},
            h('td', null, h('a', {
              href: `${UI}/workflows?name=${encodeURIComponent(w.name)}&hash=${v.hash}`,
              title: v.hash,
              onclick: (e) => {
                e.preventDefault();
                selectedHash = v.hash;
                history.replaceState(null, '', e.currentTarget.href);
                show();
              },
            }, h('code', null, shortHash(v.hash)))),
            h('td', null, fmtTime(v.createdTime)),
            h('td', null, v.hash === w.latestHash ? h('span', {class: 'muted small'}, 'latest') : null)))))))),
    source.el);
}

function lintCard(graph) {
  const issues = graph.issues || [];
  if (!issues.length && !graph.error) {
    return card('Lint', h('p', {class: 'ok', id: 'lint'}, '✓ No problems.'));
  }
  return card(`Lint: ${issues.length} problem${issues.length === 1 ? '' : 's'}`,
    h('ul', {class: 'issues', id: 'lint'}, issues.map((i) => h('li', {class: 'sev-' + i.severity},
      h('span', {class: 'sev'}, i.severity), ' ',
      h('code', null, `${i.pos.line}:${i.pos.col}`), ' ', i.message, ' ',
      h('span', {class: 'muted small'}, `[${i.code}]`)))),
    graph.error && !issues.length ? h('p', null, graph.error) : null);
}

function startCard(name) {
  const id = h('input', {name: 'id', placeholder: 'generated when empty', spellcheck: 'false', autocomplete: 'off'});
  const input = h('textarea', {name: 'input', rows: 3, placeholder: 'JSON input, e.g. "user1" (empty = null)', spellcheck: 'false'});
  const err = h('div', {class: 'form-error', role: 'alert'});
  const btn = h('button', {type: 'submit', class: 'primary'}, 'Start');
  const form = h('form', {class: 'stack', id: 'start-form'},
    h('label', null, 'Instance id', id),
    h('label', null, 'Input', input),
    err, h('div', null, btn));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    const text = input.value.trim();
    if (text) {
      try { JSON.parse(text); } catch (x) {
        err.textContent = 'The input is not JSON: ' + x.message;
        return;
      }
    }
    btn.disabled = true;
    try {
      const path = `${DF}/orchestrators/${encodeURIComponent(name)}` + (id.value.trim() ? '/' + encodeURIComponent(id.value.trim()) : '');
      const res = await api(path, {method: 'POST', body: text});
      location.href = instanceURL(res.body.id);
    } catch (x) {
      if (!(x instanceof ApiError && x.status === 401)) err.textContent = x.message;
    } finally {
      btn.disabled = false;
    }
  });
  return card('Start an instance', form);
}

// sourceView shows the YAML with line numbers and the lint problems at
// their lines; show(line) opens it at a line.
function sourceView(src, issues) {
  const byLine = new Map();
  for (const i of issues || []) byLine.set(i.pos.line, (byLine.get(i.pos.line) || []).concat(i));
  const lines = String(src || '').replace(/\n$/, '').split('\n');
  const rows = lines.map((text, i) => h('div', {class: 'src-line' + (byLine.has(i + 1) ? ' has-issue' : ''), 'data-line': i + 1},
    h('span', {class: 'ln'}, String(i + 1)),
    h('span', {class: 'code'}, text || ' '),
    byLine.has(i + 1) ? h('span', {class: 'src-issue'}, byLine.get(i + 1).map((x) => x.message).join('; ')) : null));
  const el = h('details', {class: 'card source', id: 'source'}, h('summary', null, 'Source'), h('div', {class: 'src'}, rows));
  return {
    el,
    show(line) {
      el.open = true;
      for (const r of rows) r.classList.toggle('hl', Number(r.dataset.line) === line);
      const r = rows[line - 1];
      if (r) r.scrollIntoView({block: 'center', behavior: 'smooth'});
    },
  };
}
