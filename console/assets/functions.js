// Functions: the list, a function's detail (configuration, triggers,
// provisioned target, instances, a test invocation) and the create/edit
// form, whose errors are FC's validation messages as fcd returns them.

import { call, request, FC, enc64 } from './api.js';
import { h, view, title, panel, table, badge, props, toast, errorBox, showError, ago, age, ms, bytes, clock, link, noFunctions } from './ui.js';

export async function listFunctions() {
  const out = [];
  let token = '';
  do {
    const page = await call('GET', `${FC}/functions?limit=100${token ? '&nextToken=' + enc64(token) : ''}`);
    out.push(...page.functions);
    token = page.nextToken || '';
  } while (token && out.length < 1000);
  return out;
}

// instanceCounts returns, by function, the scheduler's gauges.
export async function instanceCounts() {
  const { stats } = await call('GET', '/fcd/v1/stats?prefix=fcd_instances');
  const out = {};
  for (const s of stats) {
    for (const smp of s.samples) {
      const fn = smp.labels?.function;
      if (!fn) continue;
      out[fn] ??= {};
      out[fn][s.name.replace('fcd_instances', '') || 'ready'] = smp.value;
    }
  }
  return out;
}

export async function list() {
  const render = view();
  const [fns, counts] = await Promise.all([listFunctions(), instanceCounts().catch(() => ({}))]);
  const newBtn = h('a', { class: 'button primary', href: '#/new', id: 'new-function' }, '+ New function');
  if (fns.length === 0) {
    render(title('Functions', newBtn), noFunctions());
    return;
  }
  const filter = h('input', { type: 'search', placeholder: 'Filter by name or image', 'data-filter': true, 'aria-label': 'Filter functions' });
  const rows = fns.map((f) => {
    const c = counts[f.functionName] || {};
    const tr = h('tr', { 'data-name': f.functionName },
      h('td', {}, link(`#/functions/${enc64(f.functionName)}`, f.functionName)),
      h('td', { class: 'truncate mono hide-sm', title: f.customContainerConfig?.image }, f.customContainerConfig?.image || ''),
      h('td', { class: 'num' }, `${f.memorySize} MB`),
      h('td', { class: 'num hide-sm' }, `${f.timeout} s`),
      h('td', { class: 'num' }, `${c.ready || 0}${c._busy ? ` (${c._busy} busy)` : ''}`),
      h('td', { class: 'hide-sm' }, f.customContainerConfig?.accelerationType === 'Default' ? badge(f.customContainerConfig?.accelerationInfo?.status || 'Preparing') : h('span', { class: 'muted' }, 'off')),
      h('td', { class: 'hide-sm muted' }, ago(f.lastModifiedTime)));
    return tr;
  });
  filter.addEventListener('input', () => {
    const q = filter.value.toLowerCase();
    rows.forEach((tr, i) => { tr.hidden = q && !(fns[i].functionName.toLowerCase().includes(q) || (fns[i].customContainerConfig?.image || '').toLowerCase().includes(q)); });
  });
  render(title('Functions', newBtn),
    h('div', { class: 'toolbar' }, h('label', {}, 'Filter', filter)),
    panel(null, table(['Name', ['Image', 'hide-sm'], ['Memory', 'num'], ['Timeout', 'num hide-sm'], ['Instances', 'num'], ['Acceleration', 'hide-sm'], ['Modified', 'hide-sm']], rows)));
}

export async function detail(name) {
  const render = view();
  const path = `${FC}/functions/${enc64(name)}`;
  const [f, trig, prov, counts, cs, li] = await Promise.all([
    call('GET', path),
    call('GET', `${path}/triggers`).catch(() => ({ triggers: [] })),
    call('GET', `${path}/provision-config`).catch(() => null),
    instanceCounts().catch(() => ({})),
    call('GET', `/fcd/v1/coldstarts/${enc64(name)}?limit=32`).catch(() => ({ coldStarts: [] })),
    call('GET', `${path}/instances`).catch(() => ({ instances: [] })),
  ]);
  const cc = f.customContainerConfig || {};
  const c = counts[name] || {};
  const env = Object.entries(f.environmentVariables || {});
  const config = panel('Configuration', props([
    ['Image', h('code', {}, cc.image || '')],
    ['Resolved image', cc.resolvedImageUri ? h('code', {}, cc.resolvedImageUri) : ''],
    ['Port', String(cc.port || 9000)],
    ['Command', cc.command?.length ? h('code', {}, [...(cc.entrypoint || []), ...cc.command].join(' ')) : ''],
    ['Memory', `${f.memorySize} MB`], ['vCPU', f.cpu ? String(f.cpu) : ''], ['Disk', `${f.diskSize} MB`],
    ['Timeout', `${f.timeout} s`], ['Concurrency', String(f.instanceConcurrency)],
    ['Acceleration', cc.accelerationType === 'Default' ? h('span', {}, badge(cc.accelerationInfo?.status || 'Preparing'), ' ', f.lastUpdateStatusReasonCode || '') : 'None'],
    ['Role', f.role ? h('code', {}, f.role) : ''],
    ['Environment', env.length ? h('code', {}, env.map(([k, v]) => `${k}=${v}`).join('\n')) : ''],
    ['State', badge(f.state || 'Active')],
    ['Created', `${new Date(f.createdTime).toLocaleString()} (${ago(f.createdTime)})`],
    ['Function ARN', h('code', {}, f.functionArn || '')],
  ]));
  const triggers = trig.triggers || [];
  const trigPanel = panel('Triggers', triggers.length
    ? table(['Name', 'Type', 'URL'], triggers.map((t) => h('tr', {}, h('td', {}, t.triggerName), h('td', {}, t.triggerType),
      h('td', { class: 'mono' }, t.httpTrigger?.urlInternet ? link(t.httpTrigger.urlInternet, t.httpTrigger.urlInternet) : ''))))
    : h('p', { class: 'muted' }, 'No triggers, so no HTTP endpoint. Create one with ', h('code', {}, `fcctl trigger create ${name} NAME`), '.'));
  const inst = h('div', {}, instancesPanel(name, c, prov, cs.coldStarts || [], li.instances || []));
  // After a test invocation, the instance it may have started shows.
  const refresh = async () => {
    const [p2, c2, cs2, li2] = await Promise.all([
      call('GET', `${path}/provision-config`).catch(() => null),
      instanceCounts().catch(() => ({})),
      call('GET', `/fcd/v1/coldstarts/${enc64(name)}?limit=32`).catch(() => ({ coldStarts: [] })),
      call('GET', `${path}/instances`).catch(() => ({ instances: [] })),
    ]);
    inst.replaceChildren(instancesPanel(name, c2[name] || {}, p2, cs2.coldStarts || [], li2.instances || []));
  };
  render(
    h('div', { class: 'crumbs' }, link('#/functions', 'Functions'), ' / ', name),
    title(name,
      h('a', { class: 'button', href: `#/invocations/${enc64(name)}` }, 'Invocations'),
      h('a', { class: 'button', href: `#/logs/${enc64(name)}` }, 'Logs'),
      h('a', { class: 'button', href: `#/functions/${enc64(name)}/edit`, id: 'edit-function' }, 'Edit'),
      deleteButton(name)),
    h('div', { class: 'grid2' }, h('div', { class: 'stack' }, config, trigPanel), h('div', { class: 'stack' }, invokePanel(name, refresh), inst)));
}

// instancesPanel lists the function's running instances (ListInstances)
// with their state and age, and how long each one's start took when fcd
// still keeps its record; then the recent starts.
function instancesPanel(name, c, prov, coldStarts, instances) {
  const starts = coldStarts.slice().reverse();
  const startOf = Object.fromEntries(starts.map((s) => [s.instanceId, s]));
  const running = instances.slice().sort((a, b) => b.createdTimeMs - a.createdTimeMs);
  return panel('Instances',
    h('div', { class: 'stats' },
      h('div', { class: 'stat' }, h('b', { id: 'inst-ready' }, String(c.ready || 0)), h('span', {}, 'ready')),
      h('div', { class: 'stat' }, h('b', {}, String(c._busy || 0)), h('span', {}, 'busy')),
      h('div', { class: 'stat' }, h('b', {}, String(c._starting || 0)), h('span', {}, 'starting')),
      h('div', { class: 'stat' }, h('b', {}, prov ? `${prov.current}/${prov.target}` : '—'), h('span', {}, 'provisioned (current/target)'))),
    table(['Instance', 'State', 'Age', ['Version', 'hide-sm'], ['Start took', 'num']], running.map((i) => h('tr', { 'data-instance-id': i.instanceId },
      h('td', { class: 'mono' }, i.instanceId),
      h('td', {}, badge(i.status, i.status === 'Running' ? 'ok' : 'warn')),
      h('td', { title: new Date(i.createdTimeMs).toLocaleString() }, age(i.createdTimeMs)),
      h('td', { class: 'hide-sm' }, i.versionId || 'LATEST'),
      h('td', { class: 'num' }, startOf[i.instanceId] ? ms(startOf[i.instanceId].totalMs) : '—'))),
    { empty: 'No instance runs now: the next invocation starts one, and idle ones are reclaimed after a few minutes.' }),
    h('h2', { class: 'sub' }, 'Recent instance starts'),
    table(['Instance', 'Started', ['Start took', 'num'], ['Image', 'hide-sm']], starts.slice(0, 10).map((s) => h('tr', {},
      h('td', { class: 'mono' }, s.instanceId), h('td', {}, `${clock(s.startedAt)} (${ago(s.startedAt)})`),
      h('td', { class: 'num' }, ms(s.totalMs)), h('td', { class: 'hide-sm' }, s.cached ? 'cached' : `pulled ${bytes(s.fetchedBytes)}`))),
    { empty: 'No instance has started yet: the first invocation starts one.' }));
}

function deleteButton(name) {
  const btn = h('button', { class: 'danger', type: 'button', id: 'delete-function' }, 'Delete');
  let armed = false;
  btn.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      btn.classList.add('armed');
      btn.textContent = `Delete ${name}?`;
      setTimeout(() => { armed = false; btn.classList.remove('armed'); btn.textContent = 'Delete'; }, 5000);
      return;
    }
    btn.disabled = true;
    try {
      await call('DELETE', `${FC}/functions/${enc64(name)}`);
      toast(`Deleted ${name}`);
      location.hash = '#/functions';
    } catch (err) {
      toast(err.message, true);
      btn.disabled = false;
    }
  });
  return btn;
}

function invokePanel(name, onDone) {
  const event = h('textarea', { id: 'invoke-event', 'aria-label': 'Event' }, '{"hello":"console"}');
  const out = h('div', { id: 'invoke-result', class: 'result' });
  const btn = h('button', { class: 'primary', type: 'submit', id: 'invoke' }, 'Invoke');
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      btn.disabled = true;
      out.replaceChildren(h('p', { class: 'muted' }, 'Invoking… (a cold start pulls the image and starts an instance)'));
      const t0 = performance.now();
      try {
        const resp = await request('POST', `${FC}/functions/${enc64(name)}/invocations`, { body: event.value, headers: { 'x-fc-log-type': 'Tail', 'Content-Type': 'application/octet-stream' } });
        const text = await resp.text();
        const rid = resp.headers.get('x-fc-request-id') || '';
        let tail = '';
        try { tail = new TextDecoder().decode(Uint8Array.from(atob(resp.headers.get('x-fc-log-result') || ''), (ch) => ch.charCodeAt(0))); } catch { tail = ''; }
        out.replaceChildren(
          props([['Status', badge(String(resp.status), resp.ok ? 'ok' : 'bad')], ['Request ID', h('code', {}, rid)], ['Round trip', ms(performance.now() - t0)]]),
          h('pre', { id: 'invoke-body' }, text || '(empty body)'),
          tail ? h('details', {}, h('summary', {}, 'Log tail'), h('pre', {}, tail)) : '',
          h('p', {}, link(`#/invocations/${enc64(name)}`, 'See it in invocations →')));
      } catch (err) {
        out.replaceChildren(errorBox(err));
      } finally {
        btn.disabled = false;
        onDone().catch(() => {});
      }
    },
  }, h('label', {}, 'Event', event), h('div', { class: 'form-actions', style: 'margin-top:8px' }, btn));
  return panel('Test invocation', form, out);
}

// edit is the create form (name null) or the edit form of a function.
export async function edit(name) {
  const render = view();
  const f = name ? await call('GET', `${FC}/functions/${enc64(name)}`) : null;
  const cc = f?.customContainerConfig || {};
  const field = (label, input, hint) => h('label', {}, label, input, hint ? h('small', {}, hint) : null);
  const inp = (id, value, attrs = {}) => h('input', { id, name: id, value: value ?? '', ...attrs });
  const fields = {
    functionName: inp('functionName', f?.functionName, { required: true, disabled: !!f, autocomplete: 'off', spellcheck: 'false' }),
    image: inp('image', cc.image, { required: true, spellcheck: 'false', placeholder: 'registry:port/repo:tag' }),
    memorySize: inp('memorySize', f?.memorySize ?? 512, { type: 'number', step: 64 }),
    cpu: inp('cpu', f?.cpu || '', { type: 'number', step: 0.05, placeholder: 'default' }),
    timeout: inp('timeout', f?.timeout ?? 3, { type: 'number' }),
    instanceConcurrency: inp('instanceConcurrency', f?.instanceConcurrency ?? 1, { type: 'number' }),
    port: inp('port', cc.port ?? 9000, { type: 'number' }),
    diskSize: h('select', { id: 'diskSize' }, [512, 10240].map((v) => h('option', { value: v, selected: (f?.diskSize ?? 512) === v }, `${v} MB`))),
    accelerationType: h('select', { id: 'accelerationType' }, ['None', 'Default'].map((v) => h('option', { value: v, selected: (cc.accelerationType || 'None') === v }, v))),
    role: inp('role', f?.role, { placeholder: 'acs:ram::<account>:role/<name>', spellcheck: 'false' }),
    command: inp('command', (cc.command || []).join(' '), { placeholder: 'default: the image\'s', spellcheck: 'false' }),
    env: h('textarea', { id: 'env', spellcheck: 'false', placeholder: 'KEY=value, one a line' }, Object.entries(f?.environmentVariables || {}).map(([k, v]) => `${k}=${v}`).join('\n')),
  };
  const err = errorBox();
  err.id = 'form-error';
  const save = h('button', { class: 'primary', type: 'submit', id: 'save-function' }, f ? 'Save' : 'Create');
  const form = h('form', {
    class: 'edit',
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      showError(err, null);
      form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
      const num = (el) => (el.value === '' ? undefined : Number(el.value));
      const env = {};
      for (const line of fields.env.value.split('\n').map((l) => l.trim()).filter(Boolean)) {
        const i = line.indexOf('=');
        env[i < 0 ? line : line.slice(0, i)] = i < 0 ? '' : line.slice(i + 1);
      }
      const body = {
        functionName: fields.functionName.value.trim(),
        runtime: 'custom-container',
        memorySize: num(fields.memorySize), cpu: num(fields.cpu), timeout: num(fields.timeout),
        instanceConcurrency: num(fields.instanceConcurrency), diskSize: num(fields.diskSize),
        role: fields.role.value.trim() || undefined,
        environmentVariables: env,
        customContainerConfig: {
          image: fields.image.value.trim(), port: num(fields.port), accelerationType: fields.accelerationType.value,
          command: fields.command.value.trim() ? fields.command.value.trim().split(/\s+/) : undefined,
        },
      };
      save.disabled = true;
      try {
        const saved = f
          ? await call('PUT', `${FC}/functions/${enc64(name)}`, { ...body, functionName: undefined })
          : await call('POST', `${FC}/functions`, body);
        toast(`${f ? 'Saved' : 'Created'} ${saved.functionName}`);
        location.hash = `#/functions/${enc64(saved.functionName)}`;
      } catch (ex) {
        showError(err, ex);
        save.disabled = false;
        // FC's messages start with the field they are about: mark it.
        const key = (ex.message.match(/^(?:customContainerConfig\.)?(\w+)/) || [])[1];
        const el = fields[key] || (/^environment/.test(ex.message) ? fields.env : null);
        if (el) {
          el.setAttribute('aria-invalid', 'true');
          el.setAttribute('aria-describedby', 'form-error');
          el.focus();
        } else {
          err.scrollIntoView({ block: 'nearest' });
        }
      }
    },
  },
  h('div', { class: 'wide' }, field('Name', fields.functionName, f ? 'A function keeps its name.' : '1-64 letters, digits, _ or -, not starting with a digit or -.')),
  h('div', { class: 'wide' }, field('Image', fields.image, 'linux/amd64; its HTTP server must listen on 0.0.0.0 at the port below.')),
  field('Memory (MB)', fields.memorySize, '128-32768, a multiple of 64.'),
  field('vCPU', fields.cpu, '0.05 steps; cpu : memory GB between 1:1 and 1:4.'),
  field('Timeout (s)', fields.timeout, '1-86400.'),
  field('Concurrency per instance', fields.instanceConcurrency, 'Requests one instance serves at once.'),
  field('Port', fields.port), field('Disk', fields.diskSize),
  field('Acceleration', fields.accelerationType, 'Default runs the lazily-loaded <tag>_accelerated image once it is Ready.'),
  field('Role', fields.role, 'For private images: the role whose temporary keys pull it.'),
  h('div', { class: 'wide' }, field('Command', fields.command, 'Space-separated; overrides the image\'s.')),
  h('div', { class: 'wide' }, field('Environment variables', fields.env)),
  h('div', { class: 'wide' }, err),
  h('div', { class: 'wide form-actions' }, save, h('a', { class: 'button', href: f ? `#/functions/${enc64(name)}` : '#/functions' }, 'Cancel')));
  render(
    h('div', { class: 'crumbs' }, link('#/functions', 'Functions'), f ? [' / ', link(`#/functions/${enc64(name)}`, name)] : ''),
    title(f ? `Edit ${name}` : 'New function'), panel(null, form));
  (f ? fields.image : fields.functionName).focus();
}
