// Real PouchDB (Node, in-memory adapter) replicating against a CouchDB-compatible URL.
// Usage: node pouchdb_driver.mjs <scenario> <db-url> <user> <password> [count]
// Prints one JSON object with what it observed; exits non-zero on failure.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'js', 'node_modules', 'x.js'));
const PouchDB = require('pouchdb');
PouchDB.plugin(require('pouchdb-adapter-memory'));

const [scenario, url, user, password, countArg] = process.argv.slice(2);
const count = Number(countArg || 1000);
let localNames = 0;
const local = () => new PouchDB(`local-${process.pid}-${localNames++}`, { adapter: 'memory' });
const remote = () => new PouchDB(url, { auth: { username: user, password } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(predicate, timeoutMs = 15000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await predicate()) return Date.now() - start;
    await sleep(20);
  }
  throw new Error('timed out waiting');
}

function makeDocs(n, size = 0) {
  const filler = 'x'.repeat(size);
  return Array.from({ length: n }, (_, i) => ({
    _id: `doc-${String(i).padStart(6, '0')}`,
    n: i,
    ...(size ? { filler } : {}),
  }));
}

const scenarios = {
  // Push N docs (some with attachments) to the server, pull them into a fresh db, compare.
  async pushpull() {
    const a = local();
    const docs = makeDocs(count);
    for (let i = 0; i < docs.length; i += 50) {
      docs[i]._attachments = {
        'blob.bin': { content_type: 'application/octet-stream',
                      data: Buffer.from(`attachment ${i} `.repeat(20)).toString('base64') },
      };
    }
    await a.bulkDocs(docs);
    const push = await a.replicate.to(remote());
    const b = local();
    const pull = await b.replicate.from(remote());
    const info = await b.info();
    const att = await b.getAttachment('doc-000050', 'blob.bin');
    const sample = await b.get('doc-000050', { attachments: true });
    const origin = await a.get('doc-000050', { attachments: true });
    return {
      pushed: push.docs_written, pulled: pull.docs_written, doc_count: info.doc_count,
      attachment: att.toString(),
      digests_match: sample._attachments['blob.bin'].digest === origin._attachments['blob.bin'].digest,
    };
  },

  // Two clients in live sync through the server: a write on one appears on the other.
  async live() {
    const a = local();
    const b = local();
    const syncA = a.sync(remote(), { live: true, retry: true });
    const syncB = b.sync(remote(), { live: true, retry: true });
    await sleep(300);
    const latencies = [];
    for (let i = 0; i < 5; i++) {
      await a.put({ _id: `live-${i}`, i });
      latencies.push(await waitFor(async () => {
        try { await b.get(`live-${i}`); return true; } catch { return false; }
      }));
    }
    const doc = await b.get('live-0');
    await b.put({ ...doc, edited: true });
    await waitFor(async () => (await a.get('live-0')).edited === true);
    syncA.cancel();
    syncB.cancel();
    return { latencies };
  },

  // Both clients edit the same document offline; after syncing they agree on winner + conflict.
  async conflicts() {
    const a = local();
    const b = local();
    await a.put({ _id: 'c', v: 0 });
    await a.replicate.to(remote());
    await b.replicate.from(remote());
    const docA = await a.get('c');
    const docB = await b.get('c');
    await a.put({ ...docA, v: 'from-a' });
    await b.put({ ...docB, v: 'from-b' });
    await a.sync(remote());
    await b.sync(remote());
    await a.sync(remote());
    const finalA = await a.get('c', { conflicts: true });
    const finalB = await b.get('c', { conflicts: true });
    const server = await remote().get('c', { conflicts: true });
    // Resolve on a: remove the losing branch, and check it propagates.
    await a.remove('c', finalA._conflicts[0]);
    await a.sync(remote());
    await b.sync(remote());
    const resolved = await b.get('c', { conflicts: true });
    return {
      winners: [finalA._rev, finalB._rev, server._rev],
      conflicts: [finalA._conflicts, finalB._conflicts, server._conflicts],
      resolved_conflicts: resolved._conflicts || [],
    };
  },

  // Benchmark: push then pull N docs of ~1 KB; docs/s for each direction.
  async bench() {
    const a = local();
    await a.bulkDocs(makeDocs(count, 1000));
    let t = Date.now();
    const push = await a.replicate.to(remote(), { batch_size: 100 });
    const pushMs = Date.now() - t;
    const b = local();
    t = Date.now();
    const pull = await b.replicate.from(remote(), { batch_size: 100 });
    const pullMs = Date.now() - t;
    return { pushed: push.docs_written, pulled: pull.docs_written, push_ms: pushMs, pull_ms: pullMs };
  },
};

try {
  const result = await scenarios[scenario]();
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
} catch (err) {
  process.stderr.write(`${err && err.stack ? err.stack : JSON.stringify(err)}\n`);
  process.exit(1);
}
