/**
 * Signing a device in to couchgate and pairing another one: the calls and the pairing link the
 * demo uses (gateway/demo), for any app, whether it syncs with PouchDB or with RxDB.
 *
 *   const { token } = await redeemEmailCode(await requestEmailCode(email), code, 'Laptop',
 *                                           { base });
 *   // on the first device: a QR code of this link pairs the second one
 *   const link = pairingLink(`${base}/app/`, { code: (await linkCode(token, { base })).code,
 *                                             key: exportString });
 *   // on the second device, from the scanned or opened link:
 *   const { code, key } = parsePairing(link);
 *   const { token: its } = await redeemLink(code, 'Phone', { base });
 *
 * The app key rides in the link's fragment, which a browser never sends to a server; the link
 * code is single-use and short-lived. Answers other than 2xx reject with a GatewayError that
 * carries CouchDB's `error` and `reason` and the HTTP status. Tokens are the caller's to keep;
 * nothing here stores them.
 */

/** A couchgate error in words: the server's `reason`, or the HTTP status. */
export class GatewayError extends Error {
  constructor(status, body) {
    super(body?.reason || `the server answered ${status}`);
    this.status = status;
    this.error = body?.error;
  }
}

/**
 * One JSON call to couchgate. `base` is its address ('' for the page's own origin); `token` a
 * device token (Bearer); `fetch` the fetch to use (the global one by default).
 */
export async function gatewayApi(method, path, { token, body, base = '', fetch: f } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await (f ?? globalThis.fetch)(`${base}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
  });
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new GatewayError(resp.status, data);
  return data;
}

function signedIn(data) {
  return { token: data.token, user: data.user, device: data.device };
}

/** Sign in with an admin's enrollment code (`couchgate users add`): {token, user, device}. */
export async function enroll(code, deviceName, opts = {}) {
  const body = { code: code.trim(), device: deviceName };
  return signedIn(await gatewayApi('POST', '/auth/enroll', { ...opts, body }));
}

/** Sign in with a pairing code another device of the same person made (linkCode). */
export async function redeemLink(code, deviceName, opts = {}) {
  const body = { code, device: deviceName };
  return signedIn(await gatewayApi('POST', '/auth/link/redeem', { ...opts, body }));
}

/** Ask for a sign-in code by email; returns the challenge redeemEmailCode needs. */
export async function requestEmailCode(email, opts = {}) {
  return (await gatewayApi('POST', '/auth/code', { ...opts, body: { email } })).challenge;
}

export async function redeemEmailCode(challenge, code, deviceName, opts = {}) {
  const body = { challenge, code: code.trim(), device: deviceName };
  return signedIn(await gatewayApi('POST', '/auth/token', { ...opts, body }));
}

/** A single-use code that signs another device in to this device's account: {code, expires}. */
export async function linkCode(token, opts = {}) {
  return gatewayApi('POST', '/auth/link', { ...opts, token });
}

/** The link that pairs a device: the app's address, the link code and the key in the fragment. */
export function pairingLink(appUrl, { code, key }) {
  return `${appUrl}#pair=${encodeURIComponent(code)}&key=${encodeURIComponent(key)}`;
}

/** What a pairing link (or its fragment alone) carries: {code, key, enroll}, absent ones null. */
export function parsePairing(text) {
  const hash = text.includes('#') ? text.slice(text.indexOf('#') + 1) : text;
  const params = new URLSearchParams(hash);
  return { code: params.get('pair'), key: params.get('key'), enroll: params.get('enroll') };
}
