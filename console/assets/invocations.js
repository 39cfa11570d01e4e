// Invocations: a function's recent requests with status, duration and
// cold/warm; a cold one opens the waterfall of its instance's start
// phases and its first response, drawn to one time scale.

import { call, enc64 } from './api.js';
import { h, view, title, panel, table, badge, link, ms, ago, clock, fitWidth, functionPicker, noFunctions, empty, props } from './ui.js';
import { waterfall } from './chart.js';
import { listFunctions } from './functions.js';

// SHOWN is how many requests the table lists before "Show all".
const SHOWN = 50;

// phaseKind groups instance start phases for the waterfall's colours.
const phaseKind = { pull: 'pull', mount: 'pull', prefetch: 'pull', resolve: 'pull', auth: 'pull', probe: 'probe' };

// phases lays a cold start and its first response out on one time axis,
// in milliseconds from the start.
export function phases(inv) {
  const cs = inv.coldStart;
  const out = [];
  let at = 0;
  for (const p of cs.phases || []) {
    out.push({ name: p.name.replace('_', ' '), startMs: at, ms: p.ms, kind: phaseKind[p.name] || 'start' });
    at += p.ms;
  }
  const sent = Math.max(at, new Date(inv.start) - new Date(cs.startedAt));
  out.push({ name: 'first response', startMs: sent, ms: inv.durationMs, kind: 'response' });
  return out;
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
      detail.replaceChildren(panel(`Request ${inv.requestId}`, props([['Instance', h('code', {}, inv.instanceId)], ['Duration', ms(inv.durationMs)], ['Served by', 'a warm instance: no start phases']])));
      return;
    }
    const cs = inv.coldStart;
    const ph = phases(inv);
    const end = Math.max(...ph.map((p) => p.startMs + p.ms));
    detail.replaceChildren(panel(`Cold start of ${inv.requestId}`,
      props([['Instance', h('code', {}, inv.instanceId)], ['Instance start', ms(cs.totalMs)], ['Image', cs.cached ? 'already on this host' : `pulled ${(cs.fetchedBytes / 1048576).toFixed(1)} MB`], ['Start to response', ms(end)]]),
      waterfall(ph, { title: `cold start of ${inv.requestId}`, width: fitWidth() }),
      h('p', { class: 'muted' }, 'Phases as the instance manager timed them (fcd_instance_start_phase_seconds); the last bar is the request on the new instance.')));
    if (scroll) detail.scrollIntoView({ block: 'nearest' });
  };
  const rows = invocations.map((inv) => {
    const tr = h('tr', {
      tabindex: 0, 'data-request-id': inv.requestId, class: inv.cold ? 'cold-row' : '',
      onclick: () => show(inv, tr), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); show(inv, tr); } },
    },
    h('td', { title: new Date(inv.start).toLocaleString() }, clock(inv.start), h('div', { class: 'muted hide-sm' }, ago(inv.start))),
    h('td', { class: 'mono truncate hide-sm' }, inv.requestId),
    h('td', {}, badge(inv.status)),
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
