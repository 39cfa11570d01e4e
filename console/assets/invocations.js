// Invocations: a function's recent requests with status, duration and
// cold/warm; a cold one opens the waterfall of its instance's start
// phases and its first response, drawn to one time scale.

import { call, enc64 } from './api.js';
import { h, view, title, panel, table, badge, link, ms, bytes, ago, clock, fitWidth, functionPicker, noFunctions, empty, props } from './ui.js';
import { waterfall } from './chart.js';
import { listFunctions } from './functions.js';

// SHOWN is how many requests the table lists before "Show all".
const SHOWN = 50;

// phaseLabel names instance start phases on the waterfall: issue 17's
// vocabulary, where create is the container and its task, start the
// task's start.
const phaseLabel = { container: 'create', task: 'create task', task_start: 'start', first_response: 'first response' };

// phaseKind groups instance start phases for the waterfall's colours:
// the image's steps, the instance's, the probe and the response.
const phaseKind = {
  pull: 'pull', resolve: 'image', auth: 'image', index: 'image', fetch: 'image', mount: 'image', prefetch: 'prefetch',
  probe: 'probe', first_response: 'response',
};

// phases lays a cold start and its first response out on one time axis,
// in milliseconds from the start's beginning. Each phase has its own
// offset: they overlap where the work did (auth within resolve, the
// prefetch alongside the container's start).
export function phases(inv) {
  const cs = inv.coldStart;
  const out = (cs.phases || []).map((p) => ({
    name: phaseLabel[p.name] || p.name, phase: p.name, startMs: p.atMs || 0, ms: p.ms, kind: phaseKind[p.name] || 'start',
    note: p.bytes ? bytes(p.bytes) : '',
  }));
  if (!out.some((p) => p.phase === 'first_response')) {
    // A start recorded without its first response: the request's own
    // time on the new instance, from when the proxy sent it.
    const sent = Math.max(cs.totalMs, new Date(inv.start) - new Date(cs.startedAt));
    out.push({ name: 'request', phase: 'request', startMs: sent, ms: inv.durationMs, kind: 'response' });
  }
  return out;
}

// httpStatus shows an invocation's HTTP status code, or its state while
// the code is unknown.
function httpStatus(inv) {
  if (!inv.httpStatus) return badge(inv.status);
  const cls = inv.httpStatus < 400 ? 'ok' : inv.httpStatus < 500 ? 'warn' : 'bad';
  return h('span', { class: 'http-status', 'data-status': inv.httpStatus }, badge(String(inv.httpStatus), cls), inv.status === 'timeout' ? [' ', badge('timeout')] : null);
}

export async function page(name) {
  const render = view();
  const fns = await listFunctions();
  if (fns.length === 0) return render(title('Invocations'), noFunctions());
  const names = fns.map((f) => f.functionName);
  if (!name || !names.includes(name)) name = names[0];
  const { invocations } = await call('GET', `/fcd/v1/invocations/${enc64(name)}?limit=200`);
  const detail = h('div', { id: 'waterfall' });
  const show = (inv, tr, scroll = true) => {
    document.querySelectorAll('tr.selected').forEach((r) => r.classList.remove('selected'));
    tr?.classList.add('selected');
    if (!inv.cold) {
      detail.replaceChildren(panel(`Request ${inv.requestId}`, props([['Instance', h('code', {}, inv.instanceId)], ['Status', httpStatus(inv)], ['Duration', ms(inv.durationMs)], ['Served by', 'a warm instance: no start phases']])));
      return;
    }
    const cs = inv.coldStart;
    const ph = phases(inv);
    const end = Math.max(...ph.map((p) => p.startMs + p.ms));
    detail.replaceChildren(panel(`Cold start of ${inv.requestId}`,
      props([['Instance', h('code', {}, inv.instanceId)], ['Status', httpStatus(inv)], ['Instance start', ms(cs.totalMs)],
        ['Image', cs.cached ? 'already on this host' : `pulled ${bytes(cs.fetchedBytes)}`], ['Start to first response', ms(cs.firstResponseMs || end)]]),
      waterfall(ph, { title: `cold start of ${inv.requestId}`, width: fitWidth() }),
      h('p', { class: 'muted' }, 'Each bar starts when its phase began (fcd_instance_start_phase_seconds): the image\'s steps lie within pull, auth within the step that asked for credentials, a lazy image\'s prefetch runs on beside the container\'s start.')));
    if (scroll) detail.scrollIntoView({ block: 'nearest' });
  };
  const rows = invocations.map((inv) => {
    const tr = h('tr', {
      tabindex: 0, 'data-request-id': inv.requestId, class: inv.cold ? 'cold-row' : '',
      onclick: () => show(inv, tr), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); show(inv, tr); } },
    },
    h('td', { title: new Date(inv.start).toLocaleString() }, clock(inv.start), h('div', { class: 'muted hide-sm' }, ago(inv.start))),
    h('td', { class: 'mono truncate hide-sm' }, inv.requestId),
    h('td', {}, httpStatus(inv)),
    h('td', { class: 'num' }, inv.status === 'running' ? '…' : ms(inv.durationMs)),
    h('td', {}, inv.cold ? badge('cold') : badge('warm')),
    h('td', { class: 'mono hide-sm' }, inv.instanceId));
    return tr;
  });
  render(title('Invocations'),
    h('div', { class: 'toolbar' }, functionPicker(names, name, (n) => `#/invocations/${enc64(n)}`),
      h('button', { type: 'button', onclick: () => page(name) }, 'Refresh'),
      link(`#/logs/${enc64(name)}`, 'Logs of ' + name)),
    invocations.length === 0
      ? empty(`${name} has not been invoked yet`, h('p', {}, 'Invoke it from its page, or: ', h('code', {}, `fcctl invoke ${name} -d '{}'`)), h('p', {}, link(`#/functions/${enc64(name)}`, 'Open ' + name)))
      : h('div', { class: 'stack' },
        detail,
        panel(`Recent requests of ${name}`, h('p', { class: 'muted' }, 'Select a request (Enter) to see its cold-start waterfall above.'),
          table(['Time', ['Request ID', 'hide-sm'], 'Status', ['Duration', 'num'], 'Start', ['Instance', 'hide-sm']], rows.slice(0, SHOWN)),
          rows.length > SHOWN ? h('button', { type: 'button', onclick: (e) => { e.target.previousSibling.querySelector('tbody').append(...rows.slice(SHOWN)); e.target.remove(); } }, `Show all ${rows.length}`) : null)));
  // The newest cold start is shown first.
  const firstCold = invocations.find((i) => i.cold);
  if (firstCold) show(firstCold, rows[invocations.indexOf(firstCold)], false);
}
