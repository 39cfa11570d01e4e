// Metrics: per function, request rate, latency p50/p99 and cold starts
// over time, computed from its recent invocations (the same records the
// invocations page shows), next to fcd's counters from /fcd/v1/stats.

import { call, enc64 } from './api.js';
import { h, view, title, panel, noFunctions, link } from './ui.js';
import { lineChart, legend, fmtNum } from './chart.js';
import { listFunctions } from './functions.js';

const MAX_FUNCTIONS = 8;
// STEPS are the bucket widths a chart may use, in ms.
const STEPS = [1e3, 5e3, 10e3, 30e3, 60e3, 300e3, 900e3, 3600e3, 6 * 3600e3, 86400e3];

function quantile(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// buckets groups invocations by time into about 30 buckets (at least a
// minute wide) and returns the series of each chart.
export function series(invs) {
  const done = invs.filter((i) => i.status !== 'running');
  if (done.length === 0) return { rate: [], p50: [], p99: [], cold: [], width: 60e3 };
  const times = done.map((i) => new Date(i.start).getTime());
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const width = STEPS.find((w) => w >= (t1 - t0) / 30) || STEPS[STEPS.length - 1];
  const groups = new Map();
  done.forEach((inv, k) => {
    const b = Math.floor(times[k] / width) * width;
    if (!groups.has(b)) groups.set(b, []);
    groups.get(b).push(inv);
  });
  const first = Math.floor(t0 / width) * width;
  const rate = [], p50 = [], p99 = [], cold = [];
  // Every bucket from the first to the last, so quiet ones read 0.
  for (let b = first - width; b <= t1 + width; b += width) {
    const g = groups.get(b) || [];
    const mid = b + width / 2;
    rate.push([mid, g.length / (width / 1000)]);
    cold.push([mid, g.filter((i) => i.cold).length]);
    if (g.length === 0) continue;
    const d = g.map((i) => i.durationMs).sort((x, y) => x - y);
    p50.push([mid, quantile(d, 0.5)]);
    p99.push([mid, quantile(d, 0.99)]);
  }
  return { rate, p50, p99, cold, width };
}

function chartBox(heading, s, opts) {
  return h('div', {}, h('h3', { class: 'muted', style: 'font-size:.85rem;margin:0 0 4px' }, heading), lineChart(s, opts), s.length > 1 ? legend(s) : null);
}

export async function page() {
  const render = view();
  const fns = await listFunctions();
  if (fns.length === 0) return render(title('Metrics'), noFunctions());
  const { stats } = await call('GET', '/fcd/v1/stats?prefix=fcd_').catch(() => ({ stats: [] }));
  const value = (name, fn) => stats.find((s) => s.name === name)?.samples.find((x) => !fn || x.labels?.function === fn)?.value ?? 0;
  const totals = panel('fcd',
    h('div', { class: 'stats' },
      ...[['fcd_invocations_total', 'invocations'], ['fcd_invocation_function_errors_total', 'function errors'], ['fcd_invocation_throttled_total', 'throttled'], ['fcd_invocation_start_failures_total', 'start failures']]
        .map(([n, label]) => h('div', { class: 'stat' }, h('b', {}, fmtNum(value(n))), h('span', {}, label)))),
    h('p', { class: 'muted' }, 'Counters since fcd started, from the registry ', h('code', {}, '/metrics'), ' serves.'));
  const shown = fns.slice(0, MAX_FUNCTIONS);
  const blocks = await Promise.all(shown.map(async (f) => {
    const name = f.functionName;
    const { invocations } = await call('GET', `/fcd/v1/invocations/${enc64(name)}?limit=2000`).catch(() => ({ invocations: [] }));
    const s = series(invocations);
    const per = s.width >= 3600e3 ? `${s.width / 3600e3} h` : s.width >= 60e3 ? `${s.width / 60e3} min` : `${s.width / 1000} s`;
    return panel(null,
      h('h2', {}, link(`#/functions/${enc64(name)}`, name), h('span', { class: 'muted', style: 'font-weight:400' }, ` · ${invocations.length} recent requests, ${fmtNum(value('fcd_cold_starts_total', name))} cold starts since fcd started`)),
      invocations.length === 0 ? h('p', { class: 'muted' }, 'No requests yet.') :
        h('div', { class: 'grid3' },
          chartBox(`Requests per second (${per} buckets)`, [{ name: 'req/s', points: s.rate }], { title: `${name} request rate`, height: 160 }),
          chartBox('Latency', [{ name: 'p50', points: s.p50 }, { name: 'p99', points: s.p99, dashed: true }], { title: `${name} latency p50 and p99`, unit: ' ms', height: 160 }),
          chartBox(`Cold starts per ${per}`, [{ name: 'cold starts', points: s.cold }], { title: `${name} cold starts`, height: 160 })));
  }));
  render(title('Metrics'), totals, blocks,
    fns.length > MAX_FUNCTIONS ? h('p', { class: 'muted' }, `Showing the first ${MAX_FUNCTIONS} of ${fns.length} functions.`) : null);
}
