// /ui/schedules: every schedule of the deployed workflows (GET /v1/schedules)
// with its rule, next and last run and last instance; pause, resume and
// trigger it here (POST /v1/schedules/{id}/pause|resume|trigger).

import {
  h, clear, api, UI, initFrame, onKeyChange, hideBanner, showError, toast, fmtTime, countdown, card,
  instanceURL,
} from './common.js';

const ui = {};

initFrame();
onKeyChange(load);
build();
load();
setInterval(tick, 1000);

function build() {
  ui.body = h('tbody', {id: 'schedule-rows'});
  ui.table = h('table', {class: 'list', id: 'schedules'},
    h('thead', null, h('tr', null,
      ['Schedule', 'Workflow', 'Rule', 'Overlap', 'Next run', 'Last run', 'Last instance', ''].map((t) => h('th', null, t)))),
    ui.body);
  ui.empty = h('p', {class: 'muted', hidden: true}, 'No deployed workflow has schedules. Add a ',
    h('code', null, 'schedules:'), ' section to a workflow (docs/schedules.md).');
  clear(document.getElementById('main'),
    h('div', {class: 'page-head'}, h('h1', null, 'Schedules')),
    card(null, ui.table, ui.empty));
}

async function load() {
  let list;
  try {
    list = (await api('/v1/schedules')).body.schedules || [];
  } catch (e) {
    showError(e, 'Listing schedules');
    return;
  }
  hideBanner();
  ui.empty.hidden = list.length > 0;
  ui.table.hidden = list.length === 0;
  clear(ui.body, list.map(row));
}

function row(s) {
  const rule = (s.cron ? `cron ${s.cron}` : `every ${s.every}`) + (s.timezone && s.timezone !== 'UTC' ? ` (${s.timezone})` : '');
  const act = (what) => async () => {
    try {
      await api(`/v1/schedules/${encodeURIComponent(s.id)}/${what}`, {method: 'POST'});
      toast(`${s.id}: ${what} accepted`);
    } catch (e) {
      showError(e, `${what} ${s.id}`);
    }
    load();
  };
  return h('tr', {'data-id': s.id, 'data-paused': String(s.paused)},
    h('td', {class: 'id'}, s.id),
    h('td', null, h('a', {href: `${UI}/workflows?name=${encodeURIComponent(s.workflow)}`, class: 'quiet'}, s.workflow)),
    h('td', null, h('code', null, rule)),
    h('td', null, s.overlap),
    h('td', null, s.paused ? h('span', {class: 'muted'}, 'paused')
      : s.nextRun ? h('span', {class: 'cd', 'data-until': s.nextRun, title: fmtTime(s.nextRun)}, countdown(s.nextRun)) : '—'),
    h('td', null, s.lastRun ? fmtTime(s.lastRun) : '—'),
    h('td', null, s.lastInstanceId ? h('a', {href: instanceURL(s.lastInstanceId)}, s.lastInstanceId) : '—'),
    h('td', {class: 'actions'},
      s.paused
        ? h('button', {type: 'button', class: 'resume', onclick: act('resume')}, 'Resume')
        : h('button', {type: 'button', class: 'pause', onclick: act('pause')}, 'Pause'),
      ' ',
      h('button', {type: 'button', class: 'trigger', onclick: act('trigger')}, 'Run now')));
}

// tick refreshes the countdowns, and the list when a run is due.
function tick() {
  let due = false;
  for (const el of document.querySelectorAll('.cd[data-until]')) {
    el.textContent = countdown(el.dataset.until);
    due = due || Date.parse(el.dataset.until) <= Date.now();
  }
  if (due) load();
}
