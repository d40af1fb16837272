// A real PouchDB client under Node, driven by the Python test suite (tests/pouch.py).
//
//   node tests/js/client.mjs '{"command": "push", "remote": {...}, ...}'
//   echo '{"command": "pull", "remote": {...}}' | node tests/js/client.mjs
//
// One JSON command in (argv[2], else the first line of stdin), one JSON line out (the last on
// stdout), exit code 0 when the scenario ran to its end (what it observed is for the caller to
// judge) and 1 when it threw. Progress notes go to stderr, so a caller that times out can say how
// far the scenario got. Interactive commands (revoke-live) print {"event": "..."} lines on stdout
// and wait for one more line on stdin before going on, so the test can act in between.
//
// A remote is {"url": ".../db/<app>", "token": "..."} (Bearer), the same plus
// "scheme": "basic" (Basic with any user name and the token as password), or
// {"url": "<upstream>/<db>", "user": "...", "password": "..."} (straight to an upstream).
// Any of them with "keepalive": true reuses connections, as a browser or CouchDB's replicator
// does; without it PouchDB under Node (node-fetch 2) sends "Connection: close" on every request.
// Local databases live in memory and are fresh for every command.
//
// Every HTTP exchange is counted; responses >= 400 are recorded (method, path, status, body)
// under "http" so the caller can tell an expected 404 (auto-provisioning, a first checkpoint)
// from a gateway failure that PouchDB silently retried.

import { createHash, randomBytes } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

import PouchDB from 'pouchdb';
import memoryAdapter from 'pouchdb-adapter-memory';

import { bulkLoad, errorInfo, generateDocs, runCommand, summary } from './driver.mjs';
import { emit, nextLine } from './stdio.mjs';
import { hasRev, waitUntil } from './waiting.mjs';

PouchDB.plugin(memoryAdapter);

const http = { requests: 0, failures: [] };
let localCounter = 0;

function note(message) {
  process.stderr.write(`[client.mjs ${new Date().toISOString()}] ${message}\n`);
}

function localDb(label = 'local') {
  // memdown shares one store per name within a process, so every local db gets its own name.
  localCounter += 1;
  const name = `${label}-${localCounter}-${randomBytes(6).toString('hex')}`;
  return new PouchDB(name, { adapter: 'memory' });
}

const keepAlive = { 'http:': new HttpAgent({ keepAlive: true }),
                    'https:': new HttpsAgent({ keepAlive: true }) };

function recordingFetch(spec) {
  return async (url, opts) => {
    if (spec.token && spec.scheme !== 'basic') {
      opts.headers.set('Authorization', 'Bearer ' + spec.token);
    }
    if (spec.keepalive) {
      opts.agent = keepAlive[new URL(url).protocol];
    }
    http.requests += 1;
    const method = (opts.method || 'GET').toUpperCase();
    const response = await PouchDB.fetch(url, opts);
    if (response.status >= 400) {
      let body = null;
      try {
        body = await response.clone().text();
      } catch (err) {
        body = `<unreadable: ${err}>`;
      }
      const { pathname, search } = new URL(url);
      http.failures.push({ method, path: pathname + search, status: response.status,
                           body: body.slice(0, 500) });
    }
    return response;
  };
}

function remoteDb(spec) {
  if (!spec || !spec.url) throw new Error('a remote needs a url');
  const opts = { fetch: recordingFetch(spec) };
  if (spec.token && spec.scheme === 'basic') {
    opts.auth = { username: spec.username || 'device', password: spec.token };
  } else if (!spec.token && spec.user) {
    opts.auth = { username: spec.user, password: spec.password };
  }
  return new PouchDB(spec.url, opts);
}

async function timed(label, promise) {
  const start = performance.now();
  const value = await promise;
  const ms = performance.now() - start;
  note(`${label}: ${ms.toFixed(0)} ms`);
  return { value, ms };
}

async function replicate(label, source, target, opts = {}) {
  const { value, ms } = await timed(label, PouchDB.replicate(source, target, opts));
  return { ...summary(value), elapsed_ms: ms };
}

function sha256(buffer) {
  return createHash('sha256').update(buffer).digest('hex');
}

async function allDocs(db, { attachments = false } = {}) {
  // Listed from the changes feed, not allDocs(): PouchDB's memory adapter leaves ids with
  // characters from U+0800 up ('日本', emoji) out of a default allDocs() range.
  const res = await db.changes({ include_docs: true, conflicts: true, attachments });
  return res.results
    .filter((change) => !change.deleted)
    .map((change) => change.doc)
    .sort((x, y) => (x._id < y._id ? -1 : x._id > y._id ? 1 : 0));
}

async function attachmentReport(db, docId) {
  // What one side holds: per attachment its stub metadata and a hash of the bytes it returns.
  const doc = await db.get(docId, { attachments: true, binary: true });
  const report = {};
  for (const [name, att] of Object.entries(doc._attachments || {})) {
    report[name] = {
      content_type: att.content_type,
      digest: att.digest,
      length: att.data.length,
      sha256: sha256(att.data),
    };
  }
  return { rev: doc._rev, attachments: report };
}

function watchSync(name, sync, events) {
  // Count a live sync's events; keep the errors (with when they came) for the report.
  const t0 = performance.now();
  const state = { name, paused: 0, active: 0, denied: 0, errors: 0, complete: false };
  const record = (event, err) => events.push({ side: name, event, error: errorInfo(err),
                                               at_ms: performance.now() - t0 });
  sync.on('paused', (err) => {
    state.paused += 1;
    if (err) record('paused', err);
  });
  sync.on('active', () => { state.active += 1; });
  sync.on('denied', (err) => { state.denied += 1; record('denied', err); });
  sync.on('error', (err) => { state.errors += 1; record('error', err); });
  sync.on('complete', () => { state.complete = true; });
  return { sync, state };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}



async function isDeleted(db, docId) {
  try {
    await db.get(docId);
    return false;
  } catch (err) {
    return err.status === 404;
  }
}

// ---------------------------------------------------------------------------------- commands

const commands = {
  // Load docs (given, or generated) into a fresh local db and push them once.
  async push(cmd) {
    const local = localDb('push');
    const docs = cmd.docs || generateDocs(cmd.generate.count, cmd.generate);
    await bulkLoad(local, docs);
    const replication = await replicate('push', local, remoteDb(cmd.remote),
                                        pick(cmd, ['batch_size', 'batches_limit']));
    return { replication, local_count: (await local.info()).doc_count };
  },

  // Several devices push at the same moment, each from its own local db (first syncs racing).
  async 'push-together'(cmd) {
    const runs = cmd.pushes.map(async (push, i) => {
      const local = localDb(`together-${i}`);
      await bulkLoad(local, push.docs);
      return replicate(`push ${i}`, local, remoteDb(push.remote));
    });
    return { replications: await Promise.all(runs) };
  },

  // Pull once into a fresh local db; return every doc (with conflicts, optionally attachments).
  async pull(cmd) {
    const local = localDb('pull');
    const replication = await replicate('pull', remoteDb(cmd.remote), local,
                                        pick(cmd, ['batch_size', 'batches_limit']));
    return { replication, docs: await allDocs(local, { attachments: !!cmd.attachments }) };
  },

  // Remote db info as PouchDB sees it (GET /db/<app>/, auto-provisioning on 404).
  async info(cmd) {
    return { info: await remoteDb(cmd.remote).info() };
  },

  // Odd doc ids: push, pull into a fresh db, then GET and PUT each one by id on the remote
  // (so the doc paths themselves carry %2F, %2B, %25, ...), then pull the updates.
  async ids(cmd) {
    const remote = remoteDb(cmd.remote);
    const local = localDb('ids-a');
    await bulkLoad(local, cmd.ids.map((id, i) => ({ _id: id, title: id, n: i })));
    const push = await replicate('push', local, remote);
    const fresh = localDb('ids-b');
    const pull = await replicate('pull', remote, fresh);
    const pulled = await allDocs(fresh);
    const remoteGet = {};
    const remotePut = {};
    for (const id of cmd.ids) {
      const doc = await remote.get(id);
      remoteGet[id] = doc;
      const res = await remote.put({ ...doc, touched: true });
      remotePut[id] = res.rev;
    }
    const pullAgain = await replicate('pull again', remote, fresh);
    return { push, pull, pulled, remote_get: remoteGet, remote_put: remotePut,
             pull_again: pullAgain, pulled_after: await allDocs(fresh) };
  },

  // Replicate, then replicate again: the second run must find everything checkpointed.
  async checkpoint(cmd) {
    const remote = remoteDb(cmd.remote);
    const a = localDb('ckpt-a');
    await bulkLoad(a, generateDocs(cmd.count));
    const b = localDb('ckpt-b');
    const out = {};
    out.push_1 = await replicate('push 1', a, remote);
    out.push_2 = await replicate('push 2', a, remote);
    out.pull_1 = await replicate('pull 1', remote, b);
    out.pull_2 = await replicate('pull 2', remote, b);
    await a.put({ _id: 'one-more', n: -1 });
    out.push_3 = await replicate('push 3', a, remote);
    out.pull_3 = await replicate('pull 3', remote, b);
    out.pull_4 = await replicate('pull 4', remote, b);
    return out;
  },

  // Two devices edit one doc offline, then both sync; report what each side ends up with,
  // then resolve the conflict on A and report again.
  async conflict(cmd) {
    const id = cmd.doc_id || 'shared';
    const remoteA = remoteDb(cmd.remote_a);
    const remoteB = remoteDb(cmd.remote_b);
    const a = localDb('conflict-a');
    const b = localDb('conflict-b');
    const steps = {};
    await a.put({ _id: id, v: 'base' });
    steps.push_base = await replicate('A push base', a, remoteA);
    steps.pull_base = await replicate('B pull base', remoteB, b);
    const docA = await a.get(id);
    const docB = await b.get(id);
    const revA = (await a.put({ ...docA, v: 'from-a' })).rev;
    const revB = (await b.put({ ...docB, v: 'from-b' })).rev;
    // "Sync" is a push then a pull, one after the other: PouchDB's sync() runs both at once,
    // and pouchdb-server's changes feed can then miss the doc being written during the read.
    steps.sync_a = await syncOnce('A sync', a, remoteA);
    steps.sync_b = await syncOnce('B sync', b, remoteB);
    steps.sync_a_again = await syncOnce('A sync again', a, remoteA);
    const get = (db) => db.get(id, { conflicts: true });
    const seen = { a: await get(a), b: await get(b), remote: await get(remoteA) };

    // Resolve on A: delete every losing leaf, then let both sides settle.
    for (const rev of seen.a._conflicts || []) await a.remove(id, rev);
    steps.resolve_a = await syncOnce('A sync resolution', a, remoteA);
    steps.resolve_b = await syncOnce('B sync resolution', b, remoteB);
    const resolved = { a: await get(a), b: await get(b), remote: await get(remoteB) };
    return { rev_a: revA, rev_b: revB, seen, resolved, steps };
  },

  // Attachments both ways: A writes a doc with attachments and pushes, B pulls and reads them,
  // B adds more and pushes, A pulls and reads everything; plus direct GETs on the remote.
  async attachments(cmd) {
    const id = cmd.doc_id || 'with-attachments';
    const remoteA = remoteDb(cmd.remote_a);
    const remoteB = remoteDb(cmd.remote_b);
    const a = localDb('att-a');
    const b = localDb('att-b');
    const out = {};
    await a.put({ _id: id, kind: 'attachments', _attachments: cmd.first });
    out.push_a = await replicate('A push', a, remoteA);
    out.pull_b = await replicate('B pull', remoteB, b);
    out.b_after_pull = await attachmentReport(b, id);
    let rev = out.b_after_pull.rev;
    for (const [name, att] of Object.entries(cmd.second)) {
      const res = await b.putAttachment(id, name, rev, Buffer.from(att.data, 'base64'),
                                        att.content_type);
      rev = res.rev;
    }
    out.push_b = await replicate('B push', b, remoteB);
    out.pull_a = await replicate('A pull', remoteA, a);
    out.a_after_pull = await attachmentReport(a, id);
    out.remote = await attachmentReport(remoteA, id);
    out.remote_get = {};
    for (const name of Object.keys(out.a_after_pull.attachments)) {
      const blob = await remoteA.getAttachment(id, name);
      out.remote_get[name] = { length: blob.length, sha256: sha256(blob) };
    }
    return out;
  },

  // Two devices, each with a live two-way sync; writes on either side must show on the other.
  async 'sync-live'(cmd) {
    const timeoutMs = cmd.timeout_ms || 15000;
    const a = localDb('live-a');
    const b = localDb('live-b');
    const events = [];
    const start = (name, local, spec) =>
      watchSync(name, local.sync(remoteDb(spec), { live: true, retry: true }), events);
    const sa = start('a', a, cmd.remote_a);
    const sb = start('b', b, cmd.remote_b);
    const steps = [];
    const step = async (name, write, until) => {
      const t0 = performance.now();
      const expected = await write();
      const res = await waitUntil(() => until(expected), timeoutMs);
      const ms = performance.now() - t0;
      note(`${name}: ${res.ok ? 'seen' : 'NOT seen'} after ${ms.toFixed(0)} ms`);
      steps.push({ name, ok: res.ok, ms });
      return res.ok;
    };
    const settled = await waitUntil(() => sa.state.paused > 0 && sb.state.paused > 0, timeoutMs);
    steps.push({ name: 'both caught up', ok: settled.ok, ms: settled.ms });
    const ok = settled.ok
      && await step('a writes, b sees',
                    async () => (await a.put({ _id: 'from-a', v: 1 })).rev,
                    (rev) => hasRev(b, 'from-a', rev))
      && await step('b writes, a sees',
                    async () => (await b.put({ _id: 'from-b', v: 1 })).rev,
                    (rev) => hasRev(a, 'from-b', rev))
      && await step('a updates b\'s doc, b sees',
                    async () => (await a.put({ ...(await a.get('from-b')), v: 2 })).rev,
                    (rev) => hasRev(b, 'from-b', rev))
      && await step('b deletes a\'s doc, a sees',
                    async () => (await b.remove(await b.get('from-a'))).rev,
                    () => isDeleted(a, 'from-a'));
    sa.sync.cancel();
    sb.sync.cancel();
    await waitUntil(() => sa.state.complete && sb.state.complete, 5000);
    return {
      all_seen: !!ok,
      steps,
      events,
      state: { a: sa.state, b: sb.state },
      docs: { a: await allDocs(a), b: await allDocs(b) },
    };
  },

  // A device with a live sync and a bare live changes feed is revoked while they are open
  // (the test does it between the "ready" event and the line it sends back); its other device
  // then writes. Reports what the revoked device still got and how its feeds ended.
  async 'revoke-live'(cmd) {
    const timeoutMs = cmd.timeout_ms || 10000;
    const settleMs = cmd.settle_ms || 2000;
    const a = localDb('revoke-a');
    const b = localDb('revoke-b');
    const remoteA = remoteDb(cmd.remote_a);
    const remoteB = remoteDb(cmd.remote_b);
    const events = [];
    const sa = watchSync('a', a.sync(remoteA, { live: true, retry: true }), events);
    const sb = watchSync('b', b.sync(remoteB, { live: true, retry: true }), events);
    const feed = { ids: [], error: null, complete: false };
    let revokedAt = null;
    const sinceRevoke = () => (revokedAt === null ? null : performance.now() - revokedAt);
    const changes = remoteB.changes({ live: true, since: 'now' });
    changes.on('change', (change) => feed.ids.push(change.id));
    changes.on('error', (err) => { feed.error = { ...errorInfo(err), at_ms: sinceRevoke() }; });
    changes.on('complete', () => { feed.complete = true; });

    const settled = await waitUntil(() => sa.state.paused > 0 && sb.state.paused > 0, timeoutMs);
    if (!settled.ok) throw new Error('the live syncs never caught up');
    await a.put({ _id: 'before', v: 1 });
    const seen = await waitUntil(async () => feed.ids.includes('before')
                                       && await hasRev(b, 'before'), timeoutMs);
    if (!seen.ok) throw new Error('B never saw the doc written before the revocation');
    const eventsBefore = events.length;
    emit('ready');
    await nextLine();

    revokedAt = performance.now();
    await a.put({ _id: 'after', v: 1 });
    const pushed = await waitUntil(() => hasRev(remoteA, 'after'), timeoutMs);
    await sleep(settleMs);
    const out = {
      pushed_by_a: pushed.ok,
      b_has_after: await hasRev(b, 'after'),
      feed: { ...feed },
      events_after: events.slice(eventsBefore),
    };
    changes.cancel();
    sa.sync.cancel();
    sb.sync.cancel();
    return out;
  },

  // A device's live two-way sync outlives its gateway: the test stops the gateway between the
  // "ready" event and the line it sends back, and starts it again on the same port first. Then
  // a write each way must still arrive. Retries are quick so the test is quick too.
  async 'sync-through-restart'(cmd) {
    const timeoutMs = cmd.timeout_ms || 30000;
    const docs = cmd.docs || [];
    const local = localDb('restart');
    await bulkLoad(local, docs);
    const events = [];
    const s = watchSync('a', local.sync(remoteDb(cmd.remote), {
      live: true,
      retry: true,
      back_off_function: (delay) => (delay === 0 ? 200 : Math.min(delay * 2, 1000)),
    }), events);
    const remote = remoteDb(cmd.remote);
    const ids = docs.map((d) => d._id);
    const pushed = await waitUntil(async () => {
      const rows = (await remote.allDocs({ keys: ids })).rows;
      return rows.every((row) => row.value && !row.value.deleted);
    }, timeoutMs);
    if (!pushed.ok) throw new Error('the first docs never reached the gateway');
    const before = events.length;
    emit('ready');
    await nextLine();

    const written = (await local.put({ _id: 'after-restart', v: 1 })).rev;
    const up = await waitUntil(() => hasRev(remote, 'after-restart', written), timeoutMs);
    const serverRev = (await remote.put({ _id: 'from-server', v: 1 })).rev;
    const down = await waitUntil(() => hasRev(local, 'from-server', serverRev), timeoutMs);
    s.sync.cancel();
    await waitUntil(() => s.state.complete, 5000);
    return { up: up.ok, down: down.ok, events_during: events.slice(before), state: s.state,
             docs: await allDocs(local) };
  },

  // Throughput: push N generated docs from a fresh local db, then pull them into another.
  async bench(cmd) {
    const remote = remoteDb(cmd.remote);
    const a = localDb('bench-a');
    await bulkLoad(a, generateDocs(cmd.count, { size: cmd.doc_size || 256 }));
    const opts = pick(cmd, ['batch_size', 'batches_limit']);
    const push = await replicate('bench push', a, remote, opts);
    const pull = await replicate('bench pull', remote, localDb('bench-b'), opts);
    return { push, pull };
  },
};

async function syncOnce(label, local, remote) {
  const push = await replicate(`${label} (push)`, local, remote);
  const pull = await replicate(`${label} (pull)`, remote, local);
  return { push, pull };
}

function pick(obj, keys) {
  const out = {};
  for (const key of keys) if (obj[key] !== undefined) out[key] = obj[key];
  return out;
}

// ------------------------------------------------------------------------------------- main

async function readCommand() {
  if (process.argv[2]) return JSON.parse(process.argv[2]);
  const line = await nextLine();
  if (line === null) throw new Error('no command on stdin');
  return JSON.parse(line);
}

function finish(output, code) {
  process.stdout.write(JSON.stringify({ ...output, http }) + '\n', () => process.exit(code));
}

runCommand(commands, { readCommand, finish, note });
