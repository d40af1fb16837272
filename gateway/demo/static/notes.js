/**
 * The notes demo: PouchDB in the browser, sealed with the ep1 plugin on the way to couchgate.
 *
 * The local database stays plaintext (so the page can list notes offline) with random revision
 * ids; the remote handle seals every write and opens every read. Sync is live and retries on
 * its own; what it is doing, and why it stopped, is shown in words in #sync-state / #problem.
 *
 * The page replicates every document's body but leaves attachments on the server until one is
 * opened (files.js; docs/notes-format.md, "A web device"): an account whose folder client keeps
 * large files in chunks and their old versions syncs here in the time its notes take.
 * `localStorage['couchgate-demo-attachments'] = 'replicate'` replicates everything instead, as
 * the demo did before (bench/bench_demo_sync.py measures one against the other).
 */

import {
  encryption, generateKey, keyringFromExport, linkCode, localOptions, pairingLink, parsePairing,
  qrSvg,
} from './vendor/couchgate-ep1.js';
import {
  api, forgetSession, loadSession, redeemLink, saveSession, wireSignInForms,
} from './signin.js';
import { shareButton } from './share-button.js';
import { fileItems, historyList, isFile, versionsByFile } from './files.js';

const APP = 'notes';
const PouchDB = window.PouchDB;
PouchDB.plugin(encryption);

const $ = (id) => document.getElementById(id);
let session = loadSession();
let local = null;
let remote = null;
let sync = null;
let renderQueued = false;
let rendering = Promise.resolve();
const RENDER_DELAY_MS = 200;

function show(section) {
  for (const id of ['signin', 'setup-key', 'notes']) $(id).hidden = id !== section;
}

function setState(text) {
  $('sync-state').textContent = text;
}

function problem(text) {
  $('problem').textContent = text || '';
  $('problem').hidden = !text;
}

function deviceName() {
  return $('device-name').value.trim() || 'Browser';
}

/** Why a sync stopped, in words a person can act on. */
function describe(err) {
  const name = (err?.name || err?.error || '').toLowerCase();
  if (err?.status === 401 || name === 'unauthorized') {
    return 'This device was signed out (revoked). Your notes stay here; sign in again to sync.';
  }
  if (err?.status === 403 || name === 'forbidden') {
    return `The server refused a change: ${err.reason || err.message}.`;
  }
  if (err?.status === 413) return 'A note is too large for the server.';
  return `Sync problem: ${err?.reason || err?.message || 'unknown error'}. Retrying.`;
}

function remoteDb() {
  const token = session.token;
  return new PouchDB(`${location.origin}/db/${APP}`, {
    fetch(url, opts) {
      const headers = new Headers(opts.headers || {});
      headers.set('Authorization', `Bearer ${token}`);
      return PouchDB.fetch(url, { ...opts, headers, credentials: 'omit' });
    },
  });
}

function attachmentMode() {
  return localStorage.getItem('couchgate-demo-attachments') === 'replicate'
    ? 'replicate' : 'on-demand';
}

async function render() {
  const result = await local.allDocs({ include_docs: true, descending: true });
  const docs = result.rows.map((row) => row.doc);
  const versions = versionsByFile(docs);
  const dbs = { local, remote };
  $('note-list').replaceChildren(...docs.filter((doc) => doc.text !== undefined).map((doc) => {
    const item = document.createElement('li');
    const when = document.createElement('time');
    when.textContent = new Date(doc.created).toLocaleString();
    item.append(when, document.createTextNode(doc.text),
      shareButton(doc, { token: session.token, app: APP, onProblem: problem }));
    const kept = versions.get(doc._id);
    if (kept) item.append(historyList(kept, dbs, problem));
    return item;
  }));
  $('file-list').replaceChildren(...fileItems(docs.filter(isFile), versions, dbs, problem));
}

/**
 * One render for a burst of changes, and never two at once: a first sync writes hundreds of
 * documents in a few seconds, and each render reads them all and rebuilds the lists.
 */
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(async () => {
    await rendering;
    renderQueued = false;
    rendering = render().catch((err) => problem(`The list could not be shown: ${err.message}`));
  }, RENDER_DELAY_MS);
}

async function startNotes() {
  show('notes');
  problem('');
  local = new PouchDB(`notes-${session.user}`, localOptions());
  remote = remoteDb();
  const info = await remote.useEncryption(session.key, {
    appId: APP,
    attachments: attachmentMode(),
    onError: ({ id }) => problem(`A note (${id}) could not be decrypted with this key and was skipped.`),
  });
  $('fingerprint').textContent = info.fingerprint;
  local.changes({ live: true, since: 'now' }).on('change', scheduleRender);
  await render();
  setState('Connecting…');
  // Bodies alone are small: 500 a batch (PouchDB's default is 100) makes a first sync fewer
  // round trips and renders. Replicating attachments too, a batch of 500 chunks could be 2 GB.
  const batch = attachmentMode() === 'on-demand' ? { batch_size: 500 } : {};
  sync = local.sync(remote, { live: true, retry: true, ...batch })
    .on('active', () => setState('Syncing…'))
    .on('paused', (err) => setState(err ? 'Offline: will retry' : 'Synced'))
    .on('denied', (err) => problem(describe(err)))
    .on('error', (err) => {
      setState('Sync stopped');
      problem(describe(err));
    });
}

function afterSignIn(signed) {
  session = { ...signed, key: session?.user === signed.user ? session.key : undefined };
  saveSession(session);
  if (session.key) startNotes();
  else show('setup-key');
}

function useKey(exportString) {
  keyringFromExport(exportString, { appId: APP }); // throws on a mistyped or foreign key
  session.key = exportString;
  saveSession(session);
  return startNotes();
}

/**
 * Whether a pairing link may replace the session this device already has. A link opened from
 * anywhere would otherwise sign the device into whatever account made it (login CSRF), and its
 * new notes would sync there: so ask, naming what changes and the new key's fingerprint.
 */
function mayReplaceSession(key) {
  if (!session?.token) return true;
  let fingerprint;
  try {
    fingerprint = keyringFromExport(key, { appId: APP }).fingerprint();
  } catch {
    return true; // not a key for Notes: pairFrom refuses it before touching the session
  }
  return window.confirm(
    'This device is already signed in to Notes.\n\n'
    + 'Opening this pairing link will sign this device out of its current account and into '
    + `another one, whose key has the fingerprint:\n\n${fingerprint}\n\n`
    + 'Only continue if you made this link yourself, on your other device, and that device '
    + 'shows the same fingerprint. Leave this account and join the other one?',
  );
}

async function pairFrom(text) {
  const { code, key } = parsePairing(text);
  if (!code || !key) throw new Error('That is not a pairing text from Notes.');
  keyringFromExport(key, { appId: APP });
  const signed = await redeemLink(code, deviceName());
  session = { ...signed, key };
  saveSession(session);
  await startNotes();
}

async function showPairing() {
  const { code } = await linkCode(session.token);
  const link = pairingLink(`${location.origin}/demo/`, { code, key: session.key });
  $('pair-qr').innerHTML = qrSvg(link);
  $('pair-link').value = link;
  $('pair-box').hidden = false;
}

function wire() {
  wireSignInForms(document, { deviceName, onSignedIn: afterSignIn, onProblem: problem });
  $('create-key').addEventListener('click', () => useKey(generateKey(APP)));
  $('use-pair-text').addEventListener('click', () => {
    const { key } = parsePairing($('pair-text').value.trim());
    useKey(key || $('pair-text').value.trim()).catch((err) => problem(err.message));
  });
  $('note-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = $('note-text').value;
    if (!text.trim()) return;
    const created = new Date().toISOString();
    const id = `${created}-${Math.random().toString(36).slice(2, 8)}`;
    await local.put({ _id: id, text, created });
    $('note-text').value = '';
  });
  $('pair').addEventListener('click', () => showPairing().catch((err) => problem(describe(err))));
  $('sign-out').addEventListener('click', async () => {
    if (sync) sync.cancel();
    await api('DELETE', `/auth/devices/${session.device}`, { token: session.token }).catch(() => {});
    forgetSession();
    location.replace('/demo/');
  });
}

async function main() {
  wire();
  const fragment = parsePairing(location.hash.slice(1));
  if (location.hash) history.replaceState(null, '', location.pathname); // the key leaves the URL bar
  const pairing = Boolean(fragment.code && fragment.key);
  const declined = pairing && !mayReplaceSession(fragment.key);
  if (pairing && !declined) {
    setState('Pairing…');
    await pairFrom(`#pair=${encodeURIComponent(fragment.code)}&key=${encodeURIComponent(fragment.key)}`)
      .catch((err) => {
        show('signin');
        problem(err.status === 401 ? 'That pairing code is used or expired: make a new one.' : err.message);
      });
    return;
  }
  if (fragment.enroll) $('enroll-code').value = fragment.enroll;
  if (!session?.token) show('signin');
  else if (!session.key) show('setup-key');
  else await startNotes();
  if (declined) problem('The pairing link was not used: this device stays in its account.');
}

// A link opened in a tab that already shows the demo only changes the fragment: start over.
window.addEventListener('hashchange', () => location.reload());
main().catch((err) => problem(`The app failed to start: ${err.message}`));
