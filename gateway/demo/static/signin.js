/**
 * Signing a browser in to couchgate, shared by the notes demo and the account page.
 *
 * The device token is kept in localStorage under STORE: a demo's choice (any script on this
 * origin can read it); a real app would keep it where only it can.
 */

export const STORE = 'couchgate-demo';

export function loadSession() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || 'null');
  } catch {
    return null;
  }
}

export function saveSession(session) {
  localStorage.setItem(STORE, JSON.stringify(session));
}

export function forgetSession() {
  localStorage.removeItem(STORE);
}

/** A couchgate error in words: the server's `reason`, or the HTTP status. */
export class GatewayError extends Error {
  constructor(status, body) {
    super(body?.reason || `the server answered ${status}`);
    this.status = status;
    this.error = body?.error;
  }
}

export async function api(method, path, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
  });
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new GatewayError(resp.status, data);
  return data;
}

function signedIn(data, previous = {}) {
  return { ...previous, token: data.token, user: data.user, device: data.device };
}

export async function enroll(code, deviceName) {
  return signedIn(await api('POST', '/auth/enroll', { body: { code: code.trim(), device: deviceName } }));
}

export async function redeemLink(code, deviceName) {
  return signedIn(await api('POST', '/auth/link/redeem', { body: { code, device: deviceName } }));
}

export async function requestEmailCode(email) {
  return (await api('POST', '/auth/code', { body: { email } })).challenge;
}

export async function redeemEmailCode(challenge, code, deviceName) {
  return signedIn(await api('POST', '/auth/token', {
    body: { challenge, code: code.trim(), device: deviceName },
  }));
}

/** Wire the sign-in forms of a page (ids: enroll-form, email-form, email-code-form). */
export function wireSignInForms(doc, { deviceName, onSignedIn, onProblem }) {
  let challenge = null;
  const $ = (id) => doc.getElementById(id);
  const guard = (fn) => async (event) => {
    event.preventDefault();
    try {
      await fn();
    } catch (err) {
      onProblem(err.status === 401 ? 'That code is wrong, used or expired.' : `Sign-in failed: ${err.message}`);
    }
  };
  $('enroll-form').addEventListener('submit', guard(async () => {
    onSignedIn(await enroll($('enroll-code').value, deviceName()));
  }));
  $('email-form').addEventListener('submit', guard(async () => {
    challenge = await requestEmailCode($('email').value.trim());
    $('email-code-form').hidden = false;
    $('email-code').focus();
  }));
  $('email-code-form').addEventListener('submit', guard(async () => {
    onSignedIn(await redeemEmailCode(challenge, $('email-code').value, deviceName()));
  }));
}
