// Small SVG charts drawn from data: a line chart over time and a
// cold-start waterfall drawn to scale. No library; the SVG scales with
// its container (viewBox) and carries a text title for screen readers.

const NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function fmtNum(v) {
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(1).replace(/\.0$/, '');
  return v.toPrecision(2);
}

function fmtTime(t, span) {
  const d = new Date(t);
  if (span > 2 * 86400e3) return `${d.getMonth() + 1}/${d.getDate()}`;
  return d.toTimeString().slice(0, span > 3600e3 ? 5 : 8);
}

// lineChart draws series [{name, cls, points: [[timeMs, value], ...]}]
// over a shared time axis.
export function lineChart(series, { title, unit = '', height = 180, width = 360 } = {}) {
  const W = width, H = height, L = 52, R = 14, T = 12, B = 26;
  const all = series.flatMap((s) => s.points);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img' });
  root.append(svg('title', {}, title || ''));
  if (all.length === 0) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'muted' }, 'no data yet'));
    return root;
  }
  let t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  if (t1 === t0) { t0 -= 30e3; t1 += 30e3; }
  const vmax = niceMax(Math.max(...all.map((p) => p[1])));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = (vmax * i) / 4;
    root.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    root.append(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, fmtNum(v) + unit));
  }
  const nx = W < 500 ? 2 : 4;
  for (let i = 0; i <= nx; i++) {
    const t = t0 + ((t1 - t0) * i) / nx;
    root.append(svg('text', { x: x(t), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === nx ? 'end' : 'middle', class: 'axis' }, fmtTime(t, t1 - t0)));
  }
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
    root.append(svg('path', { d, class: `line s${i}${s.dashed ? ' dashed' : ''}` }));
    for (const p of s.points.length <= 60 ? s.points : []) {
      const c = svg('circle', { cx: x(p[0]), cy: y(p[1]), r: 2.5, class: `dot s${i}` });
      c.append(svg('title', {}, `${s.name}: ${fmtNum(p[1])}${unit} at ${new Date(p[0]).toLocaleTimeString()}`));
      root.append(c);
    }
  });
  return root;
}

// legend returns a legend for the series of a chart.
export function legend(series) {
  const ul = document.createElement('ul');
  ul.className = 'legend';
  series.forEach((s, i) => {
    const li = document.createElement('li');
    li.innerHTML = `<span class="swatch s${i}"></span>`;
    li.append(s.name);
    ul.append(li);
  });
  return ul;
}

// waterfall draws phases [{name, phase, startMs, ms, kind, note}] on one
// time scale, one row each, with each duration (and note, e.g. bytes)
// after its bar.
// valueRoom is the room right of the plot for the longest value label.
function valueRoom(phases) {
  return Math.min(150, 16 + 6.2 * Math.max(0, ...phases.map((p) => `${fmtNum(p.ms)} ms${p.note ? ` · ${p.note}` : ''}`.length)));
}

export function waterfall(phases, { title = 'cold start', width = 640 } = {}) {
  // On a narrow screen the value labels get less room than they need:
  // those that do not fit right of their bar go left of it.
  const rowH = 22, L = 96, R = Math.min(valueRoom(phases), width * 0.22), W = width, T = 8;
  const end = Math.max(1, ...phases.map((p) => p.startMs + p.ms));
  const H = T + phases.length * rowH + 24;
  const x = (ms) => L + (ms / end) * (W - L - R);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart waterfall', role: 'img' });
  root.append(svg('title', {}, `${title}: ${phases.map((p) => `${p.name} ${fmtNum(p.ms)} ms`).join(', ')}`));
  const ticks = W < 500 ? 3 : 5;
  const step = niceMax(end / ticks) / (niceMax(end / ticks) > end / (ticks / 2) ? 2 : 1);
  for (let t = 0; t <= end + 1e-9; t += step) {
    root.append(svg('line', { x1: x(t), x2: x(t), y1: T, y2: H - 20, class: 'grid' }));
    root.append(svg('text', { x: x(t), y: H - 6, 'text-anchor': 'middle', class: 'axis' }, `${fmtNum(t)} ms`));
  }
  phases.forEach((p, i) => {
    const yy = T + i * rowH;
    root.append(svg('text', { x: L - 8, y: yy + 15, 'text-anchor': 'end', class: 'label' }, p.name));
    const bar = svg('rect', { x: x(p.startMs), y: yy + 4, width: Math.max(1.5, x(p.startMs + p.ms) - x(p.startMs)), height: rowH - 8, rx: 2, class: `bar ${p.kind || ''}`, 'data-phase': p.phase || p.name });
    bar.append(svg('title', {}, `${p.name}: ${fmtNum(p.ms)} ms, from ${fmtNum(p.startMs)} ms${p.note ? `, ${p.note}` : ''}`));
    root.append(bar);
    // Bars end at most at W - R, which leaves room for the value; a bar
    // ending far right puts its value inside the plot, left of its start.
    const value = `${fmtNum(p.ms)} ms${p.note ? ` · ${p.note}` : ''}`;
    const after = x(p.startMs + p.ms) + 5, before = x(p.startMs) - 5, len = value.length * 6.2;
    const [vx, anchor] = after + len <= W ? [after, 'start'] : before - len >= L ? [before, 'end'] : [W, 'end'];
    root.append(svg('text', { x: vx, y: yy + 15, class: 'value', 'text-anchor': anchor }, value));
  });
  return root;
}
