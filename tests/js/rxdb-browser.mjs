// An RxDB device in Chromium, for tests/browser/test_rxdb_browser.py and bench/bench_rxdb.py:
// RxDB on its Dexie storage over the browser's own IndexedDB, replicating through couchgate with
// RxDB's own replicateCouchDB and the ep1 plugin's sealedFetch. Bundled by bundle.mjs; the
// Python side drives it through window.device.

import { createRxDatabase } from 'rxdb';
import { replicateCouchDB } from 'rxdb/plugins/replication-couchdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';

import { sealedFetch } from '../../encryption_plugin/js/src/index.js';
import { NOTE_SCHEMA, benchDocs, plain, writeInBatches } from './rxdb-notes.mjs';

// statuses: the HTTP statuses the replication reported (a revoked device's 401, say).
const state = { errors: [], statuses: [], e2eErrors: [], docs: [] };

/** The fetch for a remote {url, token, key}, with the app's database made on the server: sealed
 * by the plugin when there is a key (what it cannot open lands in state.e2eErrors), plaintext
 * otherwise (an app couchgate lets through unsealed). */
async function remoteFetch({ url, token, key }) {
  const withToken = (u, opts = {}) => {
    const headers = new Headers(opts.headers ?? {});
    headers.set('Authorization', `Bearer ${token}`);
    return fetch(u, { ...opts, headers });
  };
  if (!key) {
    const res = await withToken(`${url}/`, { method: 'PUT' });
    if (!res.ok && res.status !== 412) throw new Error(`creating the database: ${res.status}`);
    return { fetch: withToken };
  }
  const sealed = sealedFetch(key, { fetch: withToken });
  sealed.addEventListener('e2e-error', ({ detail }) => {
    state.e2eErrors.push({ id: detail.id, error: detail.error.name });
  });
  await sealed.createDatabase(url);
  return { fetch: sealed.fetch, fingerprint: sealed.fingerprint };
}

async function notesOf(name) {
  const db = await createRxDatabase({ name, storage: getRxStorageDexie() });
  const { notes } = await db.addCollections({ notes: { schema: NOTE_SCHEMA } });
  return notes;
}

function replicate(notes, remote, { live, batchSize = 100, id = 'couchgate-browser' }) {
  const replication = replicateCouchDB({
    replicationIdentifier: id,
    collection: notes,
    url: `${remote.url}/`,
    fetch: remote.fetch,
    live,
    retryTime: 500,
    pull: { batchSize },
    push: { batchSize },
  });
  replication.error$.subscribe((err) => {
    // RxDB keeps only name and message of a fetch error: its status leads the message.
    const cause = err?.parameters?.errors?.[0] ?? err?.parameters?.error ?? err;
    const status = cause?.status ?? Number(/^(\d{3}) /.exec(cause?.message ?? '')?.[1]);
    if (status) state.statuses.push(status);
    state.errors.push(String(err?.message ?? err));
  });
  return replication;
}

async function start(spec) {
  const remote = { url: spec.url, ...(await remoteFetch(spec)) };
  const notes = await notesOf(spec.name);
  // What the device holds, kept current for the test to read synchronously.
  notes.find({ sort: [{ id: 'asc' }] }).$.subscribe((docs) => { state.docs = docs.map(plain); });
  Object.assign(state, { notes, remote });
  await online();
  return { fingerprint: remote.fingerprint };
}

async function online() {
  state.replication = replicate(state.notes, state.remote, { live: true });
  await state.replication.awaitInitialReplication();
}

/**
 * A first sync as an app's first start does it: `count` generated notes of `doc_size` bytes
 * written on one fresh device and sent (a push), then taken by another fresh one (a pull), each
 * a one-shot replicateCouchDB run timed from its start until awaitInitialReplication.
 */
async function bench({ url, token, key, count, doc_size: size = 1024, batch_size: batchSize }) {
  const remote = { url, ...(await remoteFetch({ url, token, key })) };
  const tag = Math.random().toString(36).slice(2, 10);
  const firstSync = async (notes) => {
    const replication = replicate(notes, remote, { live: false, batchSize, id: `bench-${tag}` });
    let sent = 0;
    replication.sent$.subscribe(() => { sent += 1; });
    const started = performance.now();
    await replication.awaitInitialReplication();
    const ms = performance.now() - started;
    await replication.cancel();
    return { ms, sent };
  };
  const writer = await notesOf(`bench-a-${tag}`);
  await writeInBatches(writer, benchDocs(count, size), batchSize);
  const push = await firstSync(writer);
  const reader = await notesOf(`bench-b-${tag}`);
  const pull = await firstSync(reader);
  return {
    push: { elapsed_ms: push.ms, docs_written: push.sent },
    pull: { elapsed_ms: pull.ms, docs_written: await reader.count().exec() },
    e2e_errors: state.e2eErrors,
    replication_errors: state.errors,
  };
}

window.device = {
  start,
  bench,
  state,
  async put(doc) {
    await state.notes.upsert(doc);
  },
  async remove(id) {
    await (await state.notes.findOne(id).exec()).remove();
  },
  async offline() {
    await state.replication.cancel();
  },
  online,
  async inSync() {
    await state.replication.awaitInSync();
  },
  /** The IndexedDB databases the page holds (RxDB's Dexie storage makes them). */
  async indexedDbNames() {
    return (await indexedDB.databases()).map((info) => info.name);
  },
};
window.dispatchEvent(new Event('device-ready'));
