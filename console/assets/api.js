// fcd's API as the console calls it: one signed request to open a session,
// then every call with the session cookie (sent by the browser, HttpOnly)
// and the CSRF token (kept for this tab only, in sessionStorage). The
// access key secret is used once, to sign, and never stored.

import { sha256, hmacSHA256, hex } from './sha256.js';

const enc = new TextEncoder();
const CSRF_KEY = 'fcd.csrf';
export const FC = '/2023-03-30';

async function sha256Hex(bytes) {
  if (globalThis.crypto && crypto.subtle) {
    return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
  }
  return hex(sha256(bytes));
}

async function hmacHex(secret, msg) {
  if (globalThis.crypto && crypto.subtle) {
    const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return hex(new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(msg))));
  }
  return hex(hmacSHA256(enc.encode(secret), enc.encode(msg)));
}

function nonce() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return hex(b);
}

// signedHeaders returns the headers of an ACS3-HMAC-SHA256 signature (V3)
// over method, path (no query) and an empty body, as api/signature.go
// verifies it.
export async function signedHeaders(method, path, id, secret, host = location.host) {
  const payload = await sha256Hex(new Uint8Array());
  const headers = {
    host,
    'x-acs-content-sha256': payload,
    'x-acs-date': new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    'x-acs-signature-nonce': nonce(),
  };
  const names = Object.keys(headers).sort();
  const canonical = [
    method, path, '',
    ...names.map((n) => `${n}:${headers[n].trim()}`),
    '', names.join(';'), payload,
  ].join('\n');
  const toSign = 'ACS3-HMAC-SHA256\n' + (await sha256Hex(enc.encode(canonical)));
  const signature = await hmacHex(secret, toSign);
  delete headers.host;
  headers.Authorization = `ACS3-HMAC-SHA256 Credential=${id},SignedHeaders=${names.join(';')},Signature=${signature}`;
  return headers;
}

// APIError is an FC error body: Code, Message, RequestId, and the status.
export class APIError extends Error {
  constructor(status, body) {
    super(body.Message || `HTTP ${status}`);
    this.status = status;
    this.code = body.Code || '';
    this.requestId = body.RequestId || '';
  }
}

let onSignedOut = () => {};
export function whenSignedOut(f) { onSignedOut = f; }

// signIn opens a session with the key pair. The secret is not kept.
export async function signIn(id, secret) {
  const path = '/fcd/v1/session';
  const resp = await fetch(path, { method: 'POST', headers: await signedHeaders('POST', path, id, secret), credentials: 'same-origin' });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new APIError(resp.status, body);
  sessionStorage.setItem(CSRF_KEY, body.csrfToken);
  return body;
}

export async function signOut() {
  try { await call('DELETE', '/fcd/v1/session'); } finally { sessionStorage.removeItem(CSRF_KEY); }
}

export function hasSession() { return !!sessionStorage.getItem(CSRF_KEY); }

// request sends a console request and returns the Response, signed out
// on a refused session.
export async function request(method, path, { body, headers = {}, signal } = {}) {
  const h = { 'x-fcd-csrf': sessionStorage.getItem(CSRF_KEY) || '', ...headers };
  if (body !== undefined && typeof body !== 'string') {
    body = JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  const resp = await fetch(path, { method, body, headers: h, credentials: 'same-origin', signal });
  if (resp.status === 403 && resp.headers.get('content-type')?.includes('json')) {
    const err = new APIError(resp.status, await resp.clone().json().catch(() => ({})));
    if (/session|CSRF/.test(err.message)) {
      sessionStorage.removeItem(CSRF_KEY);
      onSignedOut(err.message);
    }
  }
  return resp;
}

// call sends a request and returns its JSON body (null for none), or
// throws an APIError.
export async function call(method, path, body) {
  const resp = await request(method, path, { body });
  const text = await resp.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { Message: text }; }
  if (!resp.ok) throw new APIError(resp.status, parsed || {});
  return parsed;
}

export const enc64 = (s) => encodeURIComponent(s);
