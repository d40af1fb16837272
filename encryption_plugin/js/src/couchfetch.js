/**
 * Sealing for apps that speak CouchDB's HTTP API themselves, as RxDB's own `replicateCouchDB`
 * does (rxdb/plugins/replication-couchdb): a `fetch` to hand to the replication, which seals
 * every document on its way out and opens every document on its way in, with the envelope code
 * the PouchDB plugin uses (envelope.js). The app keeps RxDB's replication and storage (Dexie,
 * IndexedDB, ...) as they are; only the wire carries ciphertext.
 *
 *   import { replicateCouchDB } from 'rxdb/plugins/replication-couchdb';
 *   import { sealedFetch } from '@couchgate/encryption-plugin';
 *
 *   const sealed = sealedFetch(exportString, { fetch: withToken });
 *   sealed.addEventListener('e2e-error', ({ detail: { id, error } }) => report(id, error));
 *   await sealed.createDatabase(url);             // once per device; "exists" is fine
 *   replicateCouchDB({ collection, url, fetch: sealed.fetch, live: true, pull: {}, push: {},
 *                      replicationIdentifier: 'notes-sync' });
 *
 * What the fetch changes (RxDB 17's replication uses exactly these):
 *   POST _bulk_docs            each document of the body is sealed (sealDoc), ids and _rev kept
 *   GET  _changes              include_docs answers: each doc opened
 *   GET|POST _all_docs         include_docs answers: each row's doc opened
 * Everything else passes through as it is; couchgate refuses any unsealed write that slips by.
 *
 * Why a fetch and not a storage wrapper: RxDB compares the server's state with the state it
 * assumed (its conflict handler) after reading `_all_docs` through this fetch, so it compares
 * plaintext, and the local store never holds anything but plaintext RxDB wrote or opened.
 *
 * A document that does not open (tampered, moved, sealed with a key this device lacks) is never
 * handed to RxDB, so it is never stored: it is left out of the answer and reported as an
 * `e2e-error` event ({detail: {id, rev, error}}, error a CryptoError) and to `options.onError`.
 * Because RxDB stops its first pull at the first `_changes` page shorter than it asked for, a
 * page that lost documents is topped up from the pages after it before it is handed over.
 *
 * Answers with an error status from these three endpoints reject the fetch with an Error that
 * carries CouchDB's {status, error, reason}: RxDB then retries and reports on `error$`, where
 * parsing the error body as a result would throw outside its handlers (a revoked device's long
 * poll, say).
 *
 * Revision ids: RxDB's own revisions never leave the device (it sends only the server's `_rev`
 * back), and the server makes new ones from the sealed body, so no digest of plaintext travels.
 * Document ids stay in clear, as for every CouchDB client: use random ids, or `sealed.idFor()`
 * (the keyed MAC of docs/encryption-format.md, the same as the PouchDB plugin's `idFor`) for ids
 * made from natural keys.
 */

import { b64uEncode } from './codec.js';
import { openDoc, sealDoc } from './envelope.js';
import { CryptoError } from './errors.js';
import { keyringFromExport } from './exportkey.js';
import { idFor } from './ids.js';
import { Keyring } from './keys.js';

const SEALED_WRITES = new Set(['_bulk_docs']);
const OPENED_READS = new Set(['_changes', '_all_docs']);
// How many further `_changes` pages one answer may read to make up for documents it dropped.
const MAX_TOP_UP_PAGES = 100;

/** The endpoint a request names: the last segment of its path when it is one we handle. */
function endpointOf(url) {
  const path = new URL(url, 'http://relative.invalid').pathname;
  const last = path.slice(path.lastIndexOf('/') + 1);
  return SEALED_WRITES.has(last) || OPENED_READS.has(last) ? last : null;
}

function keyringFrom(key, { appId, olderKeys = [] }) {
  const keyring = key instanceof Keyring ? key : keyringFromExport(key, { appId });
  if (appId !== undefined && keyring.appId !== appId) {
    throw new TypeError('the key belongs to another app');
  }
  for (const older of olderKeys) {
    keyring.add(keyringFromExport(older, { appId: keyring.appId }).activeKeys().root);
  }
  return keyring;
}

/** An Error in CouchDB's shape for an answer with an error status. */
async function answerError(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON: status alone says it
  }
  const err = new Error(`${response.status} ${body.error ?? response.statusText}: ` +
    `${body.reason ?? ''}`.trim());
  err.status = response.status;
  err.error = body.error ?? 'unknown_error';
  err.reason = body.reason ?? response.statusText;
  return err;
}

function jsonResponse(response, body) {
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  headers.set('content-type', 'application/json');
  return new Response(JSON.stringify(body), {
    status: response.status, statusText: response.statusText, headers,
  });
}

/**
 * A sealing fetch for one app's remote database (see the module comment).
 * @param {string|Keyring} key  the app key (`ep1k:…` or its base32 form), or a Keyring
 * @param {object} [options]
 * @param {typeof fetch} [options.fetch]  the fetch underneath (adds the device token, say)
 * @param {(e: {id: string, rev?: string, error: Error}) => void} [options.onError]
 * @param {string[]} [options.olderKeys]  exports of previous keys, still accepted for opening
 * @param {string} [options.appId]  require the key to be for this app
 */
export function sealedFetch(key, options = {}) {
  return new SealedFetch(keyringFrom(key, options), options);
}

export class SealedFetch extends EventTarget {
  #keyring;
  #inner;
  #onError;

  constructor(keyring, { fetch: inner, onError } = {}) {
    super();
    this.#keyring = keyring;
    this.#inner = inner ?? ((...args) => globalThis.fetch(...args));
    this.#onError = onError;
    /** The fetch to give replicateCouchDB (bound: pass it around freely). */
    this.fetch = (url, init) => this.#fetch(url, init);
  }

  get appId() {
    return this.#keyring.appId;
  }

  get kid() {
    return b64uEncode(this.#keyring.kid);
  }

  /** The active key's fingerprint, to show beside the other devices' ("9618-2C7D-…"). */
  get fingerprint() {
    return this.#keyring.fingerprint();
  }

  /** The id for a natural key: a keyed MAC the server can neither read nor guess. */
  idFor(naturalKey, opts) {
    return idFor(naturalKey, this.#keyring, opts);
  }

  /**
   * Create the app's database on the server (couchgate provisions it on this PUT); one that
   * already exists is fine. RxDB's replication never creates it itself.
   */
  async createDatabase(url) {
    const response = await this.#inner(url.endsWith('/') ? url : `${url}/`, { method: 'PUT' });
    if (response.ok || response.status === 412) return;
    throw await answerError(response);
  }

  #report(doc, error) {
    const detail = { id: doc?._id, rev: doc?._rev, error };
    this.dispatchEvent(Object.assign(new Event('e2e-error'), { detail }));
    if (this.#onError) this.#onError(detail);
  }

  /** The opened document, or undefined (reported) when it does not open. */
  async #open(doc) {
    try {
      return await openDoc(doc, this.#keyring);
    } catch (error) {
      if (!(error instanceof CryptoError)) throw error;
      this.#report(doc, error);
      return undefined;
    }
  }

  async #fetch(url, init) {
    const endpoint = endpointOf(typeof url === 'string' ? url : String(url.url ?? url));
    if (endpoint === '_bulk_docs') return this.#bulkDocs(url, init);
    const response = await this.#inner(url, init);
    if (endpoint === null) return response;
    if (!response.ok) throw await answerError(response);
    if (endpoint === '_all_docs') return this.#allDocs(response);
    return this.#changes(url, init, response);
  }

  async #bulkDocs(url, init) {
    const request = JSON.parse(init.body);
    const docs = Array.isArray(request) ? request : request.docs;
    const sealed = await Promise.all(docs.map((doc) => sealDoc(doc, this.#keyring)));
    const body = JSON.stringify(Array.isArray(request) ? sealed : { ...request, docs: sealed });
    const response = await this.#inner(url, { ...init, body });
    if (!response.ok) throw await answerError(response);
    return response;
  }

  async #allDocs(response) {
    const answer = await response.json();
    const rows = [];
    for (const row of answer.rows ?? []) {
      if (!row.doc) {
        rows.push(row);
        continue;
      }
      const doc = await this.#open(row.doc);
      if (doc) rows.push({ ...row, doc });
    }
    return jsonResponse(response, { ...answer, rows });
  }

  async #changes(url, init, response) {
    let answer = await response.json();
    const results = await this.#openChanges(answer.results);
    const target = new URL(url);
    const limit = Number(target.searchParams.get('limit'));
    const longpoll = target.searchParams.get('feed') === 'longpoll';
    // Top up a full page that lost documents, so that RxDB does not take it for the last one.
    for (let page = 0; !longpoll && limit && page < MAX_TOP_UP_PAGES; page += 1) {
      if (answer.results.length < limit || results.length >= limit) break;
      target.searchParams.set('since', answer.last_seq);
      const more = await this.#inner(target.toString(), init);
      if (!more.ok) throw await answerError(more);
      answer = await more.json();
      results.push(...await this.#openChanges(answer.results));
    }
    return jsonResponse(response, { ...answer, results });
  }

  async #openChanges(changes) {
    const out = [];
    for (const change of changes ?? []) {
      if (!change.doc) {
        out.push(change);
        continue;
      }
      const doc = await this.#open(change.doc);
      if (doc) out.push({ ...change, doc });
    }
    return out;
  }
}
