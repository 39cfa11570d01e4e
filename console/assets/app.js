// The console's shell: sign-in, the hash router, navigation and keyboard
// shortcuts. Each page is a module exporting a function that renders into
// <main> and may return a cleanup function (streams, timers).

import { signIn, signOut, hasSession, call, whenSignedOut } from './api.js';
import { h, render, view, errorBox, showError, toast, nextView } from './ui.js';
import * as functions from './functions.js';
import * as invocations from './invocations.js';
import * as logs from './logs.js';
import * as metrics from './metrics.js';
import * as acceleration from './acceleration.js';
import * as cost from './cost.js';

const routes = [
  [/^#\/functions$/, () => functions.list()],
  [/^#\/new$/, () => functions.edit(null)],
  [/^#\/functions\/([^/]+)$/, (m) => functions.detail(decodeURIComponent(m[1]))],
  [/^#\/functions\/([^/]+)\/edit$/, (m) => functions.edit(decodeURIComponent(m[1]))],
  [/^#\/invocations(?:\/([^/]+))?$/, (m) => invocations.page(m[1] && decodeURIComponent(m[1]))],
  [/^#\/logs(?:\/([^/]+))?$/, (m) => logs.page(m[1] && decodeURIComponent(m[1]))],
  [/^#\/metrics$/, () => metrics.page()],
  [/^#\/acceleration$/, () => acceleration.page()],
  [/^#\/cost$/, () => cost.page()],
];

let cleanup = null;
let session = null;

async function route() {
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  nextView();
  const show = view();
  if (!session) return showSignIn();
  const hash = (location.hash || '#/functions').split('?')[0];
  const section = hash.split('/')[1];
  for (const a of document.querySelectorAll('#nav a')) {
    const on = a.getAttribute('href') === `#/${section}` || (section === 'new' && a.getAttribute('href') === '#/functions');
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  for (const [re, page] of routes) {
    const m = hash.match(re);
    if (m) {
      try {
        cleanup = await page(m);
      } catch (err) {
        // An API refusal is shown; anything else is a bug, logged too.
        if (!err.code) console.error(err);
        show(h('h1', {}, 'Something went wrong'), errorBox(err));
      }
      return;
    }
  }
  location.hash = '#/functions';
}

function setShell(signedIn) {
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  document.getElementById('who-key').textContent = signedIn ? session.accessKeyId : '';
}

function showSignIn(reason) {
  nextView();
  session = null;
  setShell(false);
  document.title = 'Sign in · fcd';
  const err = errorBox();
  if (reason) showError(err, { message: reason });
  const id = h('input', { id: 'ak-id', name: 'accessKeyId', autocomplete: 'username', required: true, spellcheck: 'false' });
  const secret = h('input', { id: 'ak-secret', name: 'accessKeySecret', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { class: 'primary', type: 'submit', id: 'sign-in' }, 'Sign in');
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      showError(err, null);
      try {
        session = await signIn(id.value.trim(), secret.value);
        secret.value = '';
        setShell(true);
        route();
      } catch (ex) {
        showError(err, ex);
        submit.disabled = false;
      }
    },
  },
  h('label', {}, 'Access key ID', id),
  h('label', {}, 'Access key secret', secret, h('small', {}, 'Used once in this page to sign the sign-in request; it is neither sent nor stored.')),
  err, h('div', { class: 'form-actions' }, submit));
  render(h('div', { class: 'signin panel' },
    h('h1', {}, 'Sign in to fcd'),
    h('p', { class: 'muted' }, 'Use an access key of this fcd: ', h('code', {}, 'credentials.json'), ' in its data directory holds the admin key (', h('code', {}, 'fcctl'), ' uses the same file).'),
    form));
  id.focus();
}

async function start() {
  whenSignedOut((reason) => showSignIn(reason));
  document.getElementById('sign-out').addEventListener('click', async () => {
    await signOut().catch(() => {});
    toast('Signed out');
    showSignIn();
  });
  const help = document.getElementById('help');
  document.getElementById('help-close').addEventListener('click', () => help.close());
  let g = false;
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || !session) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) return;
    if (e.key === '?') { help.showModal(); return; }
    if (e.key === '/') {
      const f = document.querySelector('[data-filter]');
      if (f) { e.preventDefault(); f.focus(); }
      return;
    }
    if (g) {
      g = false;
      const a = document.querySelector(`#nav a[data-key="${e.key}"]`);
      if (a) location.hash = a.getAttribute('href');
      return;
    }
    if (e.key === 'g') g = true;
    if (e.key === 'n') location.hash = '#/new';
  });
  window.addEventListener('hashchange', route);
  if (hasSession()) {
    try {
      session = await call('GET', '/fcd/v1/session');
      setShell(true);
    } catch {
      session = null;
    }
  }
  route();
}

start();
