// Live logs: a function's instance log, streamed from
// /fcd/v1/logs/{function} and followed until the page is left.

import { request, enc64 } from './api.js';
import { h, view, title, functionPicker, noFunctions, link } from './ui.js';
import { listFunctions } from './functions.js';

const MAX_LINES = 2000;

function lineEl(raw) {
  // <time> <instance> <stream> <text>
  const m = raw.match(/^(\S+) (\S+) (\S+) (.*)$/);
  if (!m) return h('div', {}, raw);
  const [, t, inst, stream, text] = m;
  return h('div', { class: stream },
    h('span', { class: 't' }, t.slice(11, 23)), ' ',
    h('span', { class: 'i', title: inst }, inst.slice(-8)), ' ',
    h('span', { class: stream === 'fc' ? 'fc' : '' }, text));
}

export async function page(name) {
  const render = view();
  const fns = await listFunctions();
  if (fns.length === 0) return render(title('Logs'), noFunctions());
  const names = fns.map((f) => f.functionName);
  if (!name || !names.includes(name)) name = names[0];
  const box = h('div', { class: 'logs', id: 'log-lines', tabindex: 0, role: 'log', 'aria-label': `Logs of ${name}` });
  const status = h('span', { class: 'muted', id: 'log-status' }, 'connecting…');
  const filter = h('input', { type: 'search', placeholder: 'Filter, e.g. a request id', 'data-filter': true, 'aria-label': 'Filter lines' });
  let paused = false;
  const pause = h('button', { type: 'button', onclick: () => { paused = !paused; pause.textContent = paused ? 'Follow' : 'Hold scroll'; } }, 'Hold scroll');
  const apply = (el) => { el.hidden = !!filter.value && !el.textContent.includes(filter.value); };
  filter.addEventListener('input', () => box.childNodes.forEach(apply));
  render(title(`Logs`),
    h('div', { class: 'toolbar' }, functionPicker(names, name, (n) => `#/logs/${enc64(n)}`), h('label', {}, 'Filter', filter), pause,
      h('button', { type: 'button', onclick: () => box.replaceChildren() }, 'Clear'), status),
    box,
    h('p', { class: 'muted' }, 'Lines of every instance of ', link(`#/functions/${enc64(name)}`, name), ': stdout, stderr and fcd\'s own (fc) markers. The same as ', h('code', {}, `fcctl logs ${name}`), '.'));

  const ctl = new AbortController();
  let stopped = false;
  const append = (raw) => {
    if (raw === '') return; // heartbeat
    const el = lineEl(raw);
    apply(el);
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 30;
    box.append(el);
    while (box.childNodes.length > MAX_LINES) box.firstChild.remove();
    if (atBottom && !paused) box.scrollTop = box.scrollHeight;
  };
  (async () => {
    let tail = 200;
    while (!stopped) {
      try {
        const resp = await request('GET', `/fcd/v1/logs/${enc64(name)}?tail=${tail}`, { signal: ctl.signal });
        if (!resp.ok) { status.textContent = `error ${resp.status}`; return; }
        status.textContent = 'live';
        const reader = resp.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          const parts = buf.split('\n');
          buf = parts.pop();
          if (box.childElementCount === 0 && parts.every((p) => p === '')) continue;
          parts.forEach(append);
        }
      } catch (err) {
        if (stopped) return;
        status.textContent = 'reconnecting…';
      }
      tail = 0;
      if (!stopped) await new Promise((r) => setTimeout(r, 1000));
      // On reconnect only new lines matter; the stream restarts from the
      // end of the log.
      box.append(h('div', { class: 't' }, '— reconnected —'));
    }
  })();
  return () => { stopped = true; ctl.abort(); };
}
