// Cost: image-pull and invocation GB·s from the billing ledger, totals
// and cumulative over time, for every function or one.

import { call, enc64 } from './api.js';
import { h, view, title, panel, table, ms, bytes, empty, fitWidth } from './ui.js';
import { lineChart, legend, fmtNum } from './chart.js';

const RANGES = [['1h', 3600e3], ['24h', 86400e3], ['7d', 7 * 86400e3], ['30d', 30 * 86400e3]];

// cumulative turns records into a running total of GB·s per kind.
// Each series starts at 0 at the first record of any kind and runs to now,
// so a kind with one record still draws a line.
export function cumulative(records, kind) {
  if (records.length === 0) return [];
  const t0 = Math.min(...records.map((r) => new Date(r.start).getTime()));
  let sum = 0;
  const points = [[t0, 0]];
  for (const r of records.filter((x) => x.kind === kind).sort((a, b) => new Date(a.end) - new Date(b.end))) {
    const t = new Date(r.end).getTime();
    points.push([t, sum]);
    sum += r.gbSeconds;
    points.push([t, sum]);
  }
  points.push([Date.now(), sum]);
  return points;
}

export async function page() {
  const render = view();
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const range = RANGES.find(([k]) => k === q.get('range')) || RANGES[1];
  const fn = q.get('function') || '';
  const since = new Date(Date.now() - range[1]).toISOString().replace(/\.\d+Z$/, 'Z');
  const { records, totals } = await call('GET', `/fcd/v1/billing?since=${since}${fn ? '&function=' + enc64(fn) : ''}&limit=5000`);
  const nav = (r, f) => `#/cost?range=${r}${f ? '&function=' + enc64(f) : ''}`;
  const picker = h('select', { 'aria-label': 'Range', id: 'cost-range', onchange: () => { location.hash = nav(picker.value, fn); } },
    RANGES.map(([k]) => h('option', { value: k, selected: k === range[0] }, `last ${k}`)));
  const s = [{ name: 'invocation GB·s', points: cumulative(records, 'invocation') }, { name: 'image-pull GB·s', points: cumulative(records, 'pull') }];
  const byFn = new Map();
  for (const r of records) {
    const t = byFn.get(r.function) || { pull: 0, inv: 0, n: 0, pulls: 0 };
    if (r.kind === 'pull') { t.pull += r.gbSeconds; t.pulls++; } else { t.inv += r.gbSeconds; t.n += r.count || 1; }
    byFn.set(r.function, t);
  }
  render(title('Cost'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Range', picker), fn ? h('a', { href: nav(range[0], '') }, `all functions (now: ${fn})`) : null),
    records.length === 0 ? empty(`Nothing metered in the last ${range[0]}`, h('p', {}, 'Invocations and image pulls are metered in GB·s (memory × time) as they happen.')) : [
      h('div', { class: 'grid3 tiles' },
        panel('Total', h('div', { class: 'stat' }, h('b', {}, fmtNum(totals.gbSeconds)), h('span', {}, 'GB·s'))),
        panel('Invocations', h('div', { class: 'stat' }, h('b', {}, fmtNum(totals.invocationGBSeconds)), h('span', {}, `GB·s · ${totals.invocations} requests · ${ms(totals.invocationSeconds * 1000)}`))),
        panel('Image pulls', h('div', { class: 'stat' }, h('b', {}, fmtNum(totals.pullGBSeconds)), h('span', {}, `GB·s · ${totals.coldStarts} cold starts, ${totals.cacheHits} cached · ${bytes(totals.pullBytes)}`)))),
      panel('GB·s over time (cumulative)', lineChart(s, { title: 'cumulative GB·s', height: 220, width: fitWidth() }), legend(s)),
      panel('By function', table(['Function', ['Invocations', 'num hide-sm'], ['Invocation GB·s', 'num'], ['Pulls', 'num hide-sm'], ['Pull GB·s', 'num']],
        [...byFn.entries()].sort((a, b) => (b[1].pull + b[1].inv) - (a[1].pull + a[1].inv)).map(([name, t]) => h('tr', {},
          h('td', {}, h('a', { href: nav(range[0], name) }, name)), h('td', { class: 'num hide-sm' }, String(t.n)), h('td', { class: 'num' }, fmtNum(t.inv)),
          h('td', { class: 'num hide-sm' }, String(t.pulls)), h('td', { class: 'num' }, fmtNum(t.pull)))))),
    ]);
}
