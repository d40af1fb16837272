// One PouchDB device moved from one couchgate to another, driven by
// tests/integration/test_export_import.py:
//
//   {"command": "repoint", "old": {"url", "token"}, "docs": [...], "delete": ["id", ...]}
//
// The device writes `docs` locally, deletes the ids in `delete`, and syncs with `old` (push, then
// pull). It prints {"event": "synced", "leaves": {...}} and waits for one more stdin line,
// {"new": {"url", "token"}}: the test exports from the old server and imports into the new one
// meanwhile. Then it pulls from and pushes to `new` and reports what each wrote and every
// request it sent, as the last stdout line.

import PouchDB from 'pouchdb';
import memoryAdapter from 'pouchdb-adapter-memory';

import { nextLine } from './stdio.mjs';

PouchDB.plugin(memoryAdapter);

const sent = [];

async function nextCommand() {
  const line = await nextLine();
  if (line === null) throw new Error('stdin ended');
  return JSON.parse(line);
}

function remote(spec) {
  return new PouchDB(spec.url, {
    fetch: (url, opts) => {
      opts.headers.set('Authorization', 'Bearer ' + spec.token);
      const { pathname } = new URL(url);
      sent.push(`${(opts.method || 'GET').toUpperCase()} ${pathname}`);
      return PouchDB.fetch(url, opts);
    },
  });
}

function counts(result) {
  return { docs_read: result.docs_read, docs_written: result.docs_written,
           doc_write_failures: result.doc_write_failures };
}

async function leaves(db) {
  const res = await db.changes({ style: 'all_docs' });
  return Object.fromEntries(res.results.map((r) => [r.id, r.changes.map((c) => c.rev).sort()]));
}

async function main() {
  const cmd = await nextCommand();
  const local = new PouchDB(`device-${Date.now()}`, { adapter: 'memory' });
  await local.bulkDocs(cmd.docs);
  for (const id of cmd.delete || []) await local.remove(await local.get(id));
  const old = remote(cmd.old);
  await PouchDB.replicate(local, old);
  await PouchDB.replicate(old, local);
  process.stdout.write(JSON.stringify({ event: 'synced', leaves: await leaves(local) }) + '\n');

  const next = await nextCommand();
  const fresh = remote(next.new);
  sent.length = 0;
  const pull = counts(await PouchDB.replicate(fresh, local));
  const push = counts(await PouchDB.replicate(local, fresh));
  return { ok: true, pull, push, sent, leaves: await leaves(local) };
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0)),
  (err) => process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack) }) + '\n',
    () => process.exit(1)),
);
