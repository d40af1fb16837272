/**
 * Signing a browser in to couchgate, shared by the notes demo and the account page.
 *
 * The device token is kept in localStorage under STORE: a demo's choice (any script on this
 * origin can read it); a real app would keep it where only it can.
 */

import {
  GatewayError, enroll, gatewayApi, redeemEmailCode, redeemLink, requestEmailCode,
} from './vendor/couchgate-ep1.js';

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

// The calls themselves are the plugin's (encryption_plugin/js/src/signin.js), for any app.
export const api = gatewayApi;
export { GatewayError, enroll, redeemEmailCode, redeemLink, requestEmailCode };

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
