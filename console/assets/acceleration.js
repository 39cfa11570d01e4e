// Image acceleration: conversion jobs with their progress and the
// repositories set to convert on push; a form starts a conversion.

import { call } from './api.js';
import { h, view, title, panel, table, badge, bytes, ago, errorBox, showError, toast, empty } from './ui.js';

export async function page() {
  const render = view();
  const [{ jobs }, { repositories }] = await Promise.all([
    call('GET', '/fcd/v1/acceleration/jobs'),
    call('GET', '/fcd/v1/acceleration/repositories').catch(() => ({ repositories: [] })),
  ]);
  const image = h('input', { id: 'accel-image', required: true, placeholder: 'registry:port/repo:tag', spellcheck: 'false' });
  const mode = h('select', { id: 'accel-mode' }, h('option', { value: 'full' }, 'full (eStargz)'), h('option', { value: 'index-only' }, 'index-only'));
  const err = errorBox();
  const start = h('button', { class: 'primary', type: 'submit', id: 'accel-start' }, 'Accelerate');
  const form = h('form', {
    class: 'toolbar',
    onsubmit: async (e) => {
      e.preventDefault();
      showError(err, null);
      start.disabled = true;
      try {
        await call('POST', '/fcd/v1/acceleration/jobs', { image: image.value.trim(), mode: mode.value });
        toast('Conversion started');
        page();
      } catch (ex) {
        showError(err, ex);
        start.disabled = false;
      }
    },
  }, h('label', { style: 'flex:1' }, 'Image', image), h('label', {}, 'Mode', mode), start);
  const rows = (jobs || []).slice().sort((a, b) => new Date(b.updated) - new Date(a.updated)).map((j) => {
    const p = j.progress || {};
    const pct = p.bytes ? Math.round((100 * p.bytesDone) / p.bytes) : j.state === 'Ready' ? 100 : 0;
    return h('tr', {},
      h('td', { class: 'mono wrap' }, j.ref, h('div', { class: 'muted' }, j.mode)),
      h('td', {}, badge(j.state), j.error ? h('div', { class: 'muted' }, j.error) : null),
      h('td', {}, !p.bytes && j.state !== 'Ready' ? h('span', { class: 'muted' }, '—') : [
        h('div', { class: 'progress', role: 'progressbar', 'aria-valuenow': pct, 'aria-valuemin': 0, 'aria-valuemax': 100 }, h('span', { style: `width:${pct}%` })),
        h('small', { class: 'muted' }, [`${pct}% · ${p.layersDone ?? 0}/${p.layers ?? 0} layers · ${bytes(p.bytesDone)} of ${bytes(p.bytes)}`,
          j.state === 'Preparing' && p.bytesPerSecond ? ` · ${bytes(p.bytesPerSecond)}/s` : '',
          j.state === 'Preparing' && p.eta ? ` · ${Math.ceil(p.eta / 1e9)} s left` : ''].join(''))]),
      h('td', { class: 'hide-sm muted' }, ago(j.updated)));
  });
  const timer = (jobs || []).some((j) => j.state === 'Preparing') ? setTimeout(() => { if (location.hash === '#/acceleration') page(); }, 2000) : null;
  render(title('Image acceleration'),
    panel('Convert an image', h('p', { class: 'muted' }, 'Writes <tag>_accelerated next to it; functions with acceleration Default run it lazily once Ready.'), form, err),
    rows.length === 0
      ? empty('No acceleration jobs yet', h('p', {}, 'Start one above, or enable conversion on push for a repository: ', h('code', {}, 'fcctl image accelerate <image>')))
      : panel('Jobs', table(['Image', 'State', 'Progress', ['Updated', 'hide-sm']], rows)),
    panel('Repositories converted on push', table(['Repository', 'Enabled', 'Mode'], (repositories || []).map((r) => h('tr', {}, h('td', { class: 'mono wrap' }, r.repository), h('td', {}, r.enabled ? 'yes' : 'no'), h('td', {}, r.mode))), { empty: 'None: conversion runs only when asked.' })));
  return () => clearTimeout(timer);
}
