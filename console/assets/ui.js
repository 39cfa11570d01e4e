// DOM helpers shared by the pages. Text always goes in as text nodes,
// never as HTML, so nothing from the API can inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    // Through the CSSOM: the Content-Security-Policy refuses style
    // attributes.
    else if (k === 'style') el.style.cssText = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function main() { return document.getElementById('main'); }

// render replaces the page with children and moves focus to it, so a
// keyboard user starts at the top of the new page.
export function render(...children) {
  const m = main();
  m.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return m;
}

// Views: each route starts a new one, and a page renders through the
// view it began in, so a page whose data arrives after the user moved on
// renders nothing over the page they are on.
let generation = 0;
export function nextView() { generation++; }
export function view() {
  const g = generation;
  return (...children) => (g === generation ? render(...children) : main());
}

export function title(text, ...actions) {
  document.title = `${text} · fcd`;
  return h('h1', {}, text, actions.length ? h('span', { class: 'actions' }, ...actions) : null);
}

export function panel(heading, ...children) {
  return h('section', { class: 'panel' }, heading ? h('h2', {}, heading) : null, ...children);
}

export function table(headers, rows, { empty = 'Nothing here yet.' } = {}) {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  const head = h('tr', {}, headers.map((x) => {
    const [label, cls] = Array.isArray(x) ? x : [x, ''];
    return h('th', { class: cls, scope: 'col' }, label);
  }));
  return h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, head), h('tbody', {}, rows)));
}

export function badge(text, cls = text) { return h('span', { class: `badge ${cls}` }, text); }

export function props(pairs) {
  return h('dl', { class: 'props' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function toast(msg, bad = false) {
  const el = h('div', { class: bad ? 'bad' : '' }, msg);
  document.getElementById('toast').append(el);
  setTimeout(() => el.remove(), 5000);
}

export function errorBox(err) {
  const box = h('div', { class: 'error', role: 'alert' });
  if (err) showError(box, err);
  return box;
}

export function showError(box, err) {
  box.replaceChildren();
  if (!err) return;
  box.append(err.code ? h('b', {}, err.code + ': ') : '', err.message || String(err));
}

export function ago(t) {
  const d = (Date.now() - new Date(t).getTime()) / 1000;
  if (!isFinite(d)) return '';
  if (d < 1) return 'just now';
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return `${Math.floor(d / 86400)} d ago`;
}

// fitWidth is the drawing width of a chart that spans its panel: about
// its size on screen, so its text stays readable on a phone.
export function fitWidth(max = 900) { return Math.max(320, Math.min(max, window.innerWidth - 64)); }

export function clock(t) { return new Date(t).toTimeString().slice(0, 8); }

export function age(t) { return ago(t).replace(' ago', ''); }

export function ms(v) {
  if (v === undefined || v === null) return '';
  if (v >= 10000) return `${(v / 1000).toFixed(1)} s`;
  if (v >= 100) return `${Math.round(v)} ms`;
  return `${v.toFixed(1)} ms`;
}

export function bytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${u[i]}`;
}

export function link(href, text, attrs = {}) { return h('a', { href, ...attrs }, text); }

// functionPicker is a select of function names that navigates to
// route(name) on change.
export function functionPicker(names, current, route) {
  const sel = h('select', { id: 'fn-picker', 'aria-label': 'Function', onchange: () => { location.hash = route(sel.value); } },
    names.map((n) => h('option', { value: n, selected: n === current }, n)));
  return h('label', {}, 'Function', sel);
}

// empty is an empty state: what is missing and how to make it.
export function empty(heading, ...body) {
  return h('div', { class: 'panel empty' }, h('h2', {}, heading), ...body);
}

export function noFunctions() {
  return empty('No functions yet — here is how to create one',
    h('p', {}, 'A function is a container image whose HTTP server listens on port 9000. Create one here, or from a shell:'),
    h('pre', {}, 'make run          # starts fcd and pushes examples/echo\nfcctl function create hello --image <registry>/examples/echo:latest\nfcctl invoke hello -d \'{"hi":1}\''),
    h('p', {}, h('a', { class: 'button primary', href: '#/new' }, 'Create a function')));
}
