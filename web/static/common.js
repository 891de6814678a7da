// Shared helpers of the cairn pages: DOM building, the API client with the
// key kept in the browser session, formatting.

export const DF = '/runtime/webhooks/durabletask';
export const UI = '/ui';

export const STATUSES = ['Pending', 'Running', 'Suspended', 'Completed', 'Failed', 'Terminated'];
export const TERMINAL = new Set(['Completed', 'Failed', 'Terminated', 'ContinuedAsNew', 'Canceled']);

// h builds an element: h('a', {href, class}, 'text', child...). Children
// are nodes or strings (always text, never HTML); null and false are
// skipped; arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- API key -------------------------------------------------------------

const KEY = 'cairn.apiKey';

export function apiKey() {
  try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
}

function setKey(k) {
  try {
    if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY);
  } catch { /* storage disabled: the key lives until the page closes */ }
  memKey = k;
}
let memKey = '';
const currentKey = () => apiKey() || memKey;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

// api calls the JSON API. It returns {status, body, headers}; a 4xx/5xx
// throws ApiError with the server's {error, message}.
export async function api(path, {method = 'GET', body, headers = {}, query} = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v != null && v !== '') url.searchParams.set(k, v);
  }
  const hd = {Accept: 'application/json', ...headers};
  const key = currentKey();
  if (key) hd['x-functions-key'] = key;
  if (body !== undefined) hd['Content-Type'] = hd['Content-Type'] || 'application/json';
  let res;
  try {
    res = await fetch(url, {method, headers: hd, body, cache: 'no-store'});
  } catch (e) {
    throw new ApiError(0, 'network', 'the server does not answer: ' + e.message);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (res.status >= 400) {
    const err = new ApiError(res.status, data && data.error, data && data.message);
    if (res.status === 401) needKey(err.message);
    throw err;
  }
  return {status: res.status, body: data, headers: res.headers};
}

// withKey adds the key as ?code= to a URL the browser opens itself
// (EventSource cannot send headers).
export function withKey(path) {
  const key = currentKey();
  if (!key) return path;
  return path + (path.includes('?') ? '&' : '?') + 'code=' + encodeURIComponent(key);
}

// ---- page frame ----------------------------------------------------------

const keyListeners = [];

// onKeyChange runs fn after the user enters or forgets a key, so the page
// can load its data again.
export function onKeyChange(fn) { keyListeners.push(fn); }

export function initFrame() {
  const page = document.body.dataset.page;
  for (const a of document.querySelectorAll('nav a[data-nav]')) {
    if (a.dataset.nav.split(' ').includes(page)) a.classList.add('active');
  }
  const form = document.getElementById('key-form');
  const input = document.getElementById('api-key');
  const forget = document.getElementById('key-forget');
  const show = () => {
    const k = currentKey();
    input.value = '';
    input.placeholder = k ? 'saved for this session' : 'none';
    forget.hidden = !k;
  };
  show();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const k = input.value.trim();
    if (!k) return;
    setKey(k);
    show();
    hideBanner();
    keyListeners.forEach((fn) => fn());
  });
  forget.addEventListener('click', () => {
    setKey('');
    show();
    keyListeners.forEach((fn) => fn());
  });
}

export function banner(text, kind = 'error') {
  const b = document.getElementById('banner');
  b.className = 'banner ' + kind;
  b.textContent = text;
  b.hidden = false;
}

export function hideBanner() {
  document.getElementById('banner').hidden = true;
}

function needKey(message) {
  banner((currentKey() ? 'The API key was refused: ' : 'This server needs an API key: ') +
    'enter it in the field at the top right. (' + message + ')');
  document.getElementById('api-key').focus();
}

// showError reports a failed call (401 already has its banner).
export function showError(err, what) {
  if (err instanceof ApiError && err.status === 401) return;
  banner((what ? what + ': ' : '') + (err.message || String(err)));
}

// toast shows a short notice at the bottom of the page.
export function toast(text, kind = 'ok') {
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', {id: 'toasts', class: 'toasts', 'aria-live': 'polite'});
    document.body.append(box);
  }
  const t = h('div', {class: 'toast ' + kind}, text);
  box.append(t);
  setTimeout(() => t.remove(), 5000);
}

// ---- formatting ------------------------------------------------------------

export function statusBadge(status) {
  return h('span', {class: 'badge st-' + String(status || 'unknown').toLowerCase(), 'data-status': status}, status || '?');
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// fmtTime writes a time in the browser's zone: 2026-01-02 15:04:05.
export function fmtTime(iso, ms = false) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return ms ? s + '.' + pad(d.getMilliseconds(), 3) : s;
}

// fmtSpan writes a duration in seconds briefly: 42 s, 3 min 5 s, 2 h 10 min, 4 d 3 h.
export function fmtSpan(sec) {
  sec = Math.max(0, Math.floor(sec));
  if (sec < 60) return `${sec} s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return sec % 60 ? `${m} min ${sec % 60} s` : `${m} min`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return m % 60 ? `${hr} h ${m % 60} min` : `${hr} h`;
  const d = Math.floor(hr / 24);
  return hr % 24 ? `${d} d ${hr % 24} h` : `${d} d`;
}

// countdown writes the time left until iso: 00:42, 1:02:03, or "due".
export function countdown(iso, now = Date.now()) {
  const left = Math.ceil((new Date(iso).getTime() - now) / 1000);
  if (!(left > 0)) return 'due';
  const s = left % 60, m = Math.floor(left / 60) % 60, hr = Math.floor(left / 3600);
  return hr ? `${hr}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

export function age(iso, now = Date.now()) {
  const t = new Date(iso).getTime();
  if (isNaN(t)) return '';
  return fmtSpan((now - t) / 1000);
}

// summary writes a JSON value on one short line: an object's fields as
// "k: v", a string as is.
export function summary(v, max = 110) {
  let s;
  if (v == null) s = '';
  else if (typeof v === 'string') s = v;
  else if (typeof v === 'object' && !Array.isArray(v)) {
    s = Object.entries(v).map(([k, x]) => `${k}: ${typeof x === 'string' ? x : JSON.stringify(x)}`).join(', ');
  } else s = JSON.stringify(v);
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

// jsonView renders a JSON value indented, its parts coloured.
export function jsonView(v, cls = '') {
  const pre = h('pre', {class: 'json ' + cls});
  const out = [];
  const tok = (c, t) => out.push(h('span', {class: 'j-' + c}, t));
  const txt = (t) => out.push(t);
  const walk = (x, ind) => {
    if (x === null) return tok('null', 'null');
    if (Array.isArray(x)) {
      if (!x.length) return txt('[]');
      txt('[\n');
      x.forEach((e, i) => { txt(ind + '  '); walk(e, ind + '  '); txt(i < x.length - 1 ? ',\n' : '\n'); });
      return txt(ind + ']');
    }
    switch (typeof x) {
      case 'object': {
        const ks = Object.keys(x);
        if (!ks.length) return txt('{}');
        txt('{\n');
        ks.forEach((k, i) => {
          txt(ind + '  ');
          tok('key', JSON.stringify(k));
          txt(': ');
          walk(x[k], ind + '  ');
          txt(i < ks.length - 1 ? ',\n' : '\n');
        });
        return txt(ind + '}');
      }
      case 'string': return tok('str', JSON.stringify(x));
      case 'number': return tok('num', String(x));
      case 'boolean': return tok('bool', String(x));
      default: return txt(String(x));
    }
  };
  walk(v, '');
  append(pre, out);
  return pre;
}

export function shortHash(hash) {
  return hash ? String(hash).slice(0, 12) : '';
}

export function instanceURL(id) {
  return UI + '/instances/' + encodeURIComponent(id);
}

export function card(title, ...body) {
  return h('section', {class: 'card'}, title ? h('h2', null, title) : null, ...body);
}

// waitLabel is [kind, what] for a status's waitingFor: what the instance
// waits for, in a few words ("event Paid or Cancelled", "branches 7/20").
export function waitLabel(w) {
  const events = (w.events || []).join(w.all ? ' and ' : ' or ');
  switch (w.kind) {
    case 'event': return ['event', w.event || events];
    case 'activity': return ['activity', w.activity + (w.attempt > 1 ? ` (attempt ${w.attempt})` : '')];
    case 'retry': return ['retry of', w.activity + (w.attempt ? ` (attempt ${w.attempt + 1} next)` : '')];
    case 'branches': return ['branches', `${w.done || 0}/${w.branches} done`];
    case 'child': return ['child', w.child || ''];
    default: return [w.kind, ''];
  }
}
