// An RxDB device in Chromium, for tests/browser/test_rxdb_browser.py: RxDB on its Dexie storage
// over the browser's own IndexedDB, replicating live through couchgate with RxDB's own
// replicateCouchDB and the ep1 plugin's sealedFetch. Bundled by bundle.mjs at test time; the
// test drives it through window.device.

import { createRxDatabase } from 'rxdb';
import { replicateCouchDB } from 'rxdb/plugins/replication-couchdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';

import { sealedFetch } from '../../encryption_plugin/js/src/index.js';
import { NOTE_SCHEMA, plain } from './rxdb-notes.mjs';

const state = { errors: [], e2eErrors: [], docs: [] };

async function start({ url, token, key, name }) {
  const db = await createRxDatabase({ name, storage: getRxStorageDexie() });
  const { notes } = await db.addCollections({ notes: { schema: NOTE_SCHEMA } });
  const sealed = sealedFetch(key, {
    fetch: (u, opts = {}) =>
      fetch(u, { ...opts, headers: { ...opts.headers, Authorization: `Bearer ${token}` } }),
  });
  sealed.addEventListener('e2e-error', ({ detail }) => {
    state.e2eErrors.push({ id: detail.id, error: detail.error.name });
  });
  await sealed.createDatabase(url);
  const replication = replicateCouchDB({
    replicationIdentifier: 'couchgate-browser',
    collection: notes,
    url: `${url}/`,
    fetch: sealed.fetch,
    live: true,
    retryTime: 500,
    pull: {},
    push: {},
  });
  replication.error$.subscribe((err) => state.errors.push(String(err?.message ?? err)));
  // What the device holds, kept current for the test to read synchronously.
  notes.find({ sort: [{ id: 'asc' }] }).$.subscribe((docs) => { state.docs = docs.map(plain); });
  await replication.awaitInitialReplication();
  Object.assign(state, { db, notes, replication, fingerprint: sealed.fingerprint });
  return { fingerprint: sealed.fingerprint };
}

window.device = {
  start,
  state,
  async put(doc) {
    await state.notes.upsert(doc);
  },
  /** The IndexedDB databases the page holds (RxDB's Dexie storage makes them). */
  async indexedDbNames() {
    return (await indexedDB.databases()).map((info) => info.name);
  },
};
window.dispatchEvent(new Event('device-ready'));
