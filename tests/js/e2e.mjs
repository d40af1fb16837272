// PouchDB with the ep1 encryption plugin under Node, driven by tests/integration/test_e2e_encryption.py,
// bench/bench_e2e.py and, as a device kept across steps (the `device` command), tests/sync.
//
//   echo '{"command": "push", "remote": {...}, "docs": [...]}' | node tests/js/e2e.mjs
//
// One JSON command in (the first line of stdin), one JSON line out (the last on stdout): exit
// code 0 when the scenario ran to its end (what it observed is for the caller to judge), 1 when it
// threw. Progress notes go to stderr.
//
// A remote is {"url": ".../db/<app>", "token": "...", "key": "ep1k:..."}: the gateway with a
// device token (Bearer), sealed with the app key when "key" is given (the export string, as a
// second device would type or scan it), plaintext otherwise. Local databases live in memory, are
// fresh for every command and use random revision ids (the plugin's localOptions()).
//
// Documents go in and come out in CouchDB's JSON shape; attachments as {content_type, data}
// with base64 data. Every document a sealed remote could not open is listed under "e2e_errors"
// ({id, rev, error}) from the plugin's `e2e-error` event.


import PouchDB from 'pouchdb';
import memoryAdapter from 'pouchdb-adapter-memory';

import { bulkLoad, errorInfo, generateDocs, runCommand, summary } from './driver.mjs';
import { emit, nextLine, readCommand } from './stdio.mjs';
import { hasRev, waitUntil } from './waiting.mjs';

import encryption, { localOptions } from '../../encryption_plugin/js/src/index.js';

PouchDB.plugin(memoryAdapter);
PouchDB.plugin(encryption);

const http = { requests: 0, failures: [] };
const e2eErrors = [];
let localCounter = 0;

function note(message) {
  process.stderr.write(`[e2e.mjs ${new Date().toISOString()}] ${message}\n`);
}

function localDb(label) {
  // memdown shares one store per name within a process, so every local db gets its own name.
  localCounter += 1;
  return new PouchDB(`${label}-${localCounter}-${Math.random().toString(16).slice(2)}`,
                     localOptions({ adapter: 'memory' }));
}

function bearerFetch(token) {
  return async (url, opts) => {
    opts.headers.set('Authorization', 'Bearer ' + token);
    http.requests += 1;
    const response = await PouchDB.fetch(url, opts);
    if (response.status >= 400) {
      const { pathname, search } = new URL(url);
      http.failures.push({ method: (opts.method || 'GET').toUpperCase(), path: pathname + search,
                           status: response.status,
                           body: (await response.clone().text()).slice(0, 300) });
    }
    return response;
  };
}

/** The gateway's /db/<app> as a device, sealed when the spec carries the app key. */
async function remoteDb(spec, side = 'remote') {
  const db = new PouchDB(spec.url, { fetch: bearerFetch(spec.token) });
  if (spec.key) {
    const info = await db.useEncryption(spec.key);
    note(`${side}: sealing with key ${info.fingerprint}`);
    db.on('e2e-error', ({ id, rev, error }) => {
      e2eErrors.push({ side, id, rev, error: { name: error.name, message: error.message } });
    });
  }
  return db;
}

async function replicate(label, source, target, opts = {}) {
  const start = performance.now();
  const result = await PouchDB.replicate(source, target, opts);
  const ms = performance.now() - start;
  note(`${label}: ${ms.toFixed(0)} ms`);
  return { ...summary(result), elapsed_ms: ms };
}

/** Every live document of a local db, sorted by id, attachments inline (base64). */
async function docsOf(db) {
  const res = await db.changes({ include_docs: true, attachments: true });
  return res.results
    .filter((change) => !change.deleted)
    .map((change) => change.doc)
    .sort((x, y) => (x._id < y._id ? -1 : x._id > y._id ? 1 : 0));
}

const commands = {
  // Load the docs into a fresh local db and push them once.
  async push(cmd) {
    const local = localDb('push');
    await bulkLoad(local, cmd.docs);
    const replication = await replicate('push', local, await remoteDb(cmd.remote));
    return { replication };
  },

  // Pull once into a fresh local db; return every doc with its attachments.
  async pull(cmd) {
    const local = localDb('pull');
    const replication = await replicate('pull', await remoteDb(cmd.remote), local);
    return { replication, docs: await docsOf(local) };
  },

  // Two devices with live two-way syncs: a write on either side must show on the other,
  // attachments included.
  async 'sync-live'(cmd) {
    const timeoutMs = cmd.timeout_ms || 15000;
    const a = localDb('live-a');
    const b = localDb('live-b');
    const syncs = [];
    const paused = { a: 0, b: 0 };
    const errors = [];
    for (const [name, local, spec] of [['a', a, cmd.remote_a], ['b', b, cmd.remote_b]]) {
      const sync = local.sync(await remoteDb(spec, name), { live: true, retry: true });
      sync.on('paused', () => { paused[name] += 1; });
      sync.on('denied', (err) => errors.push({ side: name, event: 'denied', ...errorInfo(err) }));
      sync.on('error', (err) => errors.push({ side: name, event: 'error', ...errorInfo(err) }));
      syncs.push(sync);
    }
    const steps = [];
    const step = async (name, write, reader) => {
      const rev = (await write()).rev;
      const seen = await waitUntil(() => hasRev(reader, name, rev), timeoutMs);
      note(`${name}: ${seen.ok ? 'seen' : 'NOT seen'} after ${seen.ms.toFixed(0)} ms`);
      steps.push({ name, ok: seen.ok, ms: seen.ms });
      return seen.ok;
    };
    const settled = await waitUntil(() => paused.a > 0 && paused.b > 0, timeoutMs);
    const attachment = { content_type: 'text/plain', data: Buffer.from(cmd.marker).toString('base64') };
    const ok = settled.ok
      && await step('from-a', () => a.put({ _id: 'from-a', text: cmd.marker,
                                            _attachments: { [cmd.marker]: attachment } }), b)
      && await step('from-b', () => b.put({ _id: 'from-b', text: cmd.marker }), a);
    for (const sync of syncs) sync.cancel();
    return { all_seen: !!ok, settled: settled.ok, steps, errors,
             docs: { a: await docsOf(a), b: await docsOf(b) } };
  },

  // One PouchDB device kept across steps: the test sends one step per stdin line and reads one
  // {"event": "done", ...} line back for each, so it can act (on a folder device, say) between
  // them. Steps: {"op": "sync"} (one-shot two-way sync with the remote), {"op": "get", "id"}
  // (the local doc, its _conflicts and every live leaf, deleted ones left out), {"op": "put", "doc"}
  // (a local edit; its rev), {"op": "end"}.
  async device(cmd) {
    const local = localDb('device');
    const remote = await remoteDb(cmd.remote);
    const steps = {
      async sync() {
        const result = await local.sync(remote);
        return { push: summary(result.push), pull: summary(result.pull) };
      },
      async get(step) {
        const doc = await local.get(step.id, { conflicts: true });
        const leaves = await local.get(step.id, { open_revs: 'all' });
        const live = leaves.filter((leaf) => leaf.ok && !leaf.ok._deleted);
        return { doc, leaves: live.map((leaf) => leaf.ok) };
      },
      async put(step) {
        return { rev: (await local.put(step.doc)).rev };
      },
    };
    emit('ready');
    for (let line = await nextLine(); line !== null; line = await nextLine()) {
      const step = JSON.parse(line);
      if (step.op === 'end') break;
      note(`device: ${step.op}`);
      emit('done', { op: step.op, ...(await steps[step.op](step)) });
    }
    return {};
  },

  // Throughput: push N generated docs from a fresh local db, then pull them into another.
  async bench(cmd) {
    const a = localDb('bench-a');
    await bulkLoad(a, generateDocs(cmd.count, { size: cmd.doc_size || 256 }));
    const opts = cmd.batch_size ? { batch_size: cmd.batch_size } : {};
    const push = await replicate('bench push', a, await remoteDb(cmd.remote), opts);
    const pull = await replicate('bench pull', await remoteDb(cmd.remote), localDb('bench-b'),
                                 opts);
    return { push, pull };
  },
};

function finish(output, code) {
  process.stdout.write(JSON.stringify({ ...output, http, e2e_errors: e2eErrors }) + '\n',
                       () => process.exit(code));
}

runCommand(commands, { readCommand, finish, note });
