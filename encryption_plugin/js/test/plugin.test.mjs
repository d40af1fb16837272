// The plugin with real PouchDB 9 replicating to a real pouchdb-server (in memory, loopback).
// pouchdb-server comes from tests/js (CI runs `npm ci` there too).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import PouchDB from 'pouchdb';
import memoryAdapter from 'pouchdb-adapter-memory';

import encryption, {
  REMOTE_ATTACHMENTS, assertRandomRevs, generateKey, localOptions,
} from '../src/index.js';

PouchDB.plugin(memoryAdapter);
PouchDB.plugin(encryption);

const SERVER_BIN = fileURLToPath(new URL(
  '../../../tests/js/node_modules/pouchdb-server/bin/pouchdb-server', import.meta.url));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(url, deadline = Date.now() + 30000) {
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`pouchdb-server at ${url} did not come up`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let server;
let serverUrl;
let workDir;
let counter = 0;

before(async () => {
  assert.ok(existsSync(SERVER_BIN), `missing ${SERVER_BIN}: run npm ci in tests/js`);
  workDir = mkdtempSync(join(tmpdir(), 'ep1-pouchdb-server-'));
  const port = await freePort();
  server = spawn(process.execPath, [SERVER_BIN, '--in-memory', '--host', '127.0.0.1',
    '--port', String(port)], { cwd: workDir, stdio: 'ignore' });
  serverUrl = `http://127.0.0.1:${port}`;
  await waitUntilUp(serverUrl);
});

after(() => {
  server?.kill();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function names() {
  counter += 1;
  return { local: `local-${process.pid}-${counter}`, remote: `${serverUrl}/db${counter}` };
}

/** What the server really holds, read without the plugin. */
async function rawDocs(remoteUrl) {
  const res = await fetch(`${remoteUrl}/_all_docs?include_docs=true&attachments=true`);
  return (await res.json()).rows.map((r) => r.doc);
}

const SECRET = 'the quick brown secret';

describe('plugin against pouchdb-server', () => {
  test('refuses to wrap a local database, and localOptions gives random revisions', async () => {
    const local = new PouchDB(`refuse-${process.pid}`, localOptions({ adapter: 'memory' }));
    await assert.rejects(local.useEncryption(generateKey('notes')), TypeError);
    assertRandomRevs(local);
    const deterministic = new PouchDB(`det-${process.pid}`, { adapter: 'memory' });
    assert.throws(() => assertRandomRevs(deterministic));
    await local.destroy();
    await deterministic.destroy();
  });

  test('push stores only ciphertext; a second device with the imported key reads everything',
    async () => {
      const key = generateKey('notes');
      const n = names();
      const local = new PouchDB(n.local, localOptions({ adapter: 'memory' }));
      const remote = new PouchDB(n.remote);
      const info = await remote.useEncryption(key);
      assert.match(info.fingerprint, /^[0-9A-F]{4}(-[0-9A-F]{4}){3}$/);

      await local.bulkDocs([
        { _id: 'n1', title: SECRET, tags: ['a'] },
        { _id: 'n2', title: 'second 😀', nested: { deep: SECRET } },
      ]);
      await local.put({
        _id: 'n3', title: 'with file',
        _attachments: { 'secret.txt': { content_type: 'text/plain', data: Buffer.from(SECRET) } },
      });
      const n2 = await local.get('n2');
      await local.remove(n2);
      await local.replicate.to(remote);

      const raw = await rawDocs(n.remote);
      const rawText = JSON.stringify(raw);
      assert.ok(!rawText.includes('quick brown'), 'plaintext reached the server');
      assert.ok(!rawText.includes('secret.txt') && !rawText.includes('text/plain'));
      for (const doc of raw) {
        assert.deepEqual(Object.keys(doc).filter((k) => !k.startsWith('_')), ['e2e']);
        assert.match(doc.e2e, /^ep1\./);
      }
      const withFile = raw.find((d) => d._id === 'n3');
      const [stored] = Object.values(withFile._attachments);
      assert.equal(stored.content_type, 'application/octet-stream');
      assert.ok(!Buffer.from(stored.data, 'base64').toString('latin1').includes('quick brown'));

      // Second device: same key, fresh local database, pulls everything back.
      const local2 = new PouchDB(`${n.local}-2`, localOptions({ adapter: 'memory' }));
      const remote2 = new PouchDB(n.remote);
      await remote2.useEncryption(key);
      await local2.replicate.from(remote2);
      assert.equal((await local2.get('n1')).title, SECRET);
      assert.equal((await local2.get('n3')).title, 'with file');
      const att = await local2.getAttachment('n3', 'secret.txt');
      assert.equal(att.toString(), SECRET);
      const n3 = await local2.get('n3');
      assert.equal(n3._attachments['secret.txt'].content_type, 'text/plain');
      await assert.rejects(local2.get('n2'), (err) => err.status === 404);

      // An update travels both ways.
      const doc = await local2.get('n1');
      await local2.put({ ...doc, title: 'edited' });
      await local2.replicate.to(remote2);
      await local.replicate.from(remote);
      assert.equal((await local.get('n1')).title, 'edited');
      await Promise.all([local.destroy(), local2.destroy()]);
    });

  test('attachments on demand: bodies replicate, each attachment is fetched when asked for',
    async () => {
      const key = generateKey('notes');
      const n = names();
      const writer = new PouchDB(n.remote);
      await writer.useEncryption(key);
      const big = Buffer.alloc(200_000, 7);
      await writer.bulkDocs([
        { _id: 'note', text: SECRET },
        { _id: 'file', path: 'a.bin', _attachments: { content: { data: big } } },
      ]);

      const asked = [];
      const local = new PouchDB(n.local, localOptions({ adapter: 'memory' }));
      const remote = new PouchDB(n.remote, {
        fetch(url, opts) {
          asked.push(new URL(url).pathname);
          return PouchDB.fetch(url, opts);
        },
      });
      await remote.useEncryption(key, { attachments: 'on-demand' });
      await local.replicate.from(remote);
      const attachmentPaths = (paths) => paths.filter((p) => /\/file\/[0-9a-f]{32}$/.test(p));
      assert.deepEqual(attachmentPaths(asked), [], 'replication fetched an attachment');

      assert.equal((await local.get('note')).text, SECRET);
      const file = await local.get('file');
      assert.equal(file._attachments, undefined);
      const where = file[REMOTE_ATTACHMENTS].content;
      assert.equal(where.length, big.length);
      assert.equal(where.content_type, 'application/octet-stream');
      assert.equal((await remote.getRemoteAttachment(file, 'content')).compare(big), 0);
      assert.equal(attachmentPaths(asked).length, 1);
      await assert.rejects(remote.getRemoteAttachment(file, 'other'), (e) => e.status === 404);

      // Written back as it is, the document would lose its attachment: refused before sending.
      await assert.rejects(remote.put({ ...file, path: 'b.bin' }), TypeError);
      // A second pull asks for nothing new, and the default mode still pulls attachments.
      await local.replicate.from(remote);
      assert.equal(attachmentPaths(asked).length, 1);
      await assert.rejects(remote.useEncryption(key), /already/);
      const everything = new PouchDB(`${n.local}-all`, localOptions({ adapter: 'memory' }));
      const plain = new PouchDB(n.remote);
      await plain.useEncryption(key);
      await everything.replicate.from(plain);
      assert.equal((await everything.getAttachment('file', 'content')).compare(big), 0);
      const invalid = new PouchDB(n.remote);
      await assert.rejects(invalid.useEncryption(key, { attachments: 'some' }), TypeError);
      await Promise.all([local.destroy(), everything.destroy()]);
    });

  test('remote reads open: get, open_revs, allDocs, changes, getAttachment, putAttachment',
    async () => {
      const n = names();
      const remote = new PouchDB(n.remote);
      await remote.useEncryption(generateKey('notes'));
      const { rev } = await remote.put({ _id: 'doc', v: 1 });
      assert.equal((await remote.get('doc')).v, 1);
      const [open] = await remote.get('doc', { open_revs: [rev] });
      assert.equal(open.ok.v, 1);
      const all = await remote.allDocs({ include_docs: true });
      assert.equal(all.rows[0].doc.v, 1);
      const changes = await remote.changes({ include_docs: true });
      assert.equal(changes.results[0].doc.v, 1);
      const { id } = await remote.post({ v: 2 });
      assert.equal((await remote.get(id)).v, 2);

      const put = await remote.putAttachment('doc', 'a.txt', rev, Buffer.from('attached'),
        'text/plain');
      const data = await remote.getAttachment('doc', 'a.txt');
      assert.equal(data.toString(), 'attached');
      const withData = await remote.get('doc', { attachments: true });
      assert.equal(Buffer.from(withData._attachments['a.txt'].data, 'base64').toString(),
        'attached');
      await remote.removeAttachment('doc', 'a.txt', put.rev);
      assert.equal((await remote.get('doc'))._attachments, undefined);
      await remote.put({ _id: '_local/x', plain: true });
      assert.equal((await remote.get('_local/x')).plain, true);
    });

  test('a document that fails to open is reported and skipped; replication goes on',
    async () => {
      const key = generateKey('notes');
      const n = names();
      const remote = new PouchDB(n.remote);
      await remote.useEncryption(key);
      await remote.bulkDocs([{ _id: 'good1', v: 1 }, { _id: 'good2', v: 2 }]);
      // A document sealed with another key, written by someone else.
      const other = new PouchDB(n.remote);
      await other.useEncryption(generateKey('notes'));
      await other.put({ _id: 'foreign', v: 3 });
      // And a tampered one: move a body to another id.
      const raw = await (await fetch(`${n.remote}/good1`)).json();
      await fetch(`${n.remote}/moved`, {
        method: 'PUT', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ e2e: raw.e2e }),
      });

      const reported = [];
      remote.on('e2e-error', (e) => reported.push(e));
      const local = new PouchDB(n.local, localOptions({ adapter: 'memory' }));
      const result = await local.replicate.from(remote);
      assert.equal(result.ok, true);
      assert.deepEqual((await local.allDocs()).rows.map((r) => r.id).sort(), ['good1', 'good2']);
      assert.deepEqual(reported.map((e) => [e.id, e.error.name]).sort(),
        [['foreign', 'UnknownKey'], ['moved', 'AuthenticationFailed']]);

      const seen = [];
      const feed = await remote.changes({ include_docs: true });
      for (const c of feed.results) seen.push(c.id);
      assert.deepEqual(seen.sort(), ['good1', 'good2']);
      await assert.rejects(remote.get('moved'), (err) => err.name === 'AuthenticationFailed');
      await local.destroy();
    });

  test('live sync in both directions', async () => {
    const key = generateKey('notes');
    const n = names();
    const a = new PouchDB(n.local, localOptions({ adapter: 'memory' }));
    const b = new PouchDB(`${n.local}-b`, localOptions({ adapter: 'memory' }));
    const ra = new PouchDB(n.remote);
    const rb = new PouchDB(n.remote);
    await ra.useEncryption(key);
    await rb.useEncryption(key);
    const syncA = a.sync(ra, { live: true, retry: true });
    const syncB = b.sync(rb, { live: true, retry: true });
    // A cancelled live sync still has requests in flight; the test ends only once both have
    // settled, so nothing of it outlives the test (or the server, killed in after()).
    const settled = [syncA, syncB].map((s) => new Promise((r) => { s.on('complete', r); }));
    try {
      await a.put({ _id: 'live', v: SECRET });
      // Generous on a loaded machine: this waits for an event, it does not time anything.
      const deadline = Date.now() + 60000;
      for (;;) {
        try {
          assert.equal((await b.get('live')).v, SECRET);
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      syncA.cancel();
      syncB.cancel();
      await Promise.all(settled);
    }
    await Promise.all([a.destroy(), b.destroy()]);
  });
});
