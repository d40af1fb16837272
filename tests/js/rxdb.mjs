// Real RxDB devices under Node, on RxDB's Dexie storage over fake-indexeddb, replicating through
// couchgate with RxDB's own replicateCouchDB and the ep1 plugin's sealedFetch. Driven by
// tests/integration/test_rxdb.py and bench/bench_rxdb.py.
//
//   echo '{"command": "devices", "devices": {"a": {"remote": {...}}}}' | node tests/js/rxdb.mjs
//
// A remote is {"url": ".../db/<app>", "token": "...", "key": "ep1k:..."}: the gateway as a
// device (Bearer token), sealed with the app key when "key" is given, plaintext otherwise.
//
// `devices` opens one RxDB database per named device, each with a live two-way replication,
// waits for their first sync, prints {"event": "ready"} and then runs one step per stdin line,
// answering each with {"event": "done", ...}:
//   {"op": "put", "device", "doc"}             upsert a document (RxDB primary key "id"; with
//                                              "natural_key", the id is sealed.idFor(it))
//   {"op": "remove", "device", "id"}           delete it
//   {"op": "wait", "device", "id", "fields"}   until the local doc has these field values
//   {"op": "wait", "device", "id", "deleted": true}   until it is gone locally
//   {"op": "wait-error", "device", "status"}   until the replication reported an HTTP status
//   {"op": "docs", "device"}                   every local document, sorted by id
//   {"op": "offline" | "online", "device"}     cancel the replication / start it again
//   {"op": "in-sync", "device"}                until the replication is idle and in sync
//   {"op": "end"}
// The last line (exit 0 when the steps ran to their end) carries every e2e error the sealed
// fetch reported ("e2e_errors": [{device, id, error}]) and every replication error
// ("replication_errors": [{device, ...}]).
//
// `pair` signs a device in and pairs a second one with the plugin's sign-in calls (see there).
//
// `bench` writes N generated docs on one device and times its first sync (a push), then a second
// device's first sync (a pull): {"push": {elapsed_ms, docs_written}, "pull": {...}}.

import { randomBytes } from 'node:crypto';

import { IDBKeyRange, indexedDB } from 'fake-indexeddb';
import { createRxDatabase } from 'rxdb';
import { replicateCouchDB } from 'rxdb/plugins/replication-couchdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';

import { errorInfo, runCommand } from './driver.mjs';
import { NOTE_SCHEMA, benchDocs, plain, writeInBatches } from './rxdb-notes.mjs';
import { emit, nextLine, readCommand } from './stdio.mjs';
import { waitUntil } from './waiting.mjs';

import {
  enroll, generateKey, linkCode, pairingLink, parsePairing, redeemLink, sealedFetch,
} from '../../encryption_plugin/js/src/index.js';

const http = { requests: 0, failures: [] };
const e2eErrors = [];
const replicationErrors = [];
const storage = getRxStorageDexie({ indexedDB, IDBKeyRange });

function note(message) {
  process.stderr.write(`[rxdb.mjs ${new Date().toISOString()}] ${message}\n`);
}

function bearerFetch(token) {
  return async (url, opts = {}) => {
    const headers = new Headers(opts.headers ?? {});
    headers.set('Authorization', `Bearer ${token}`);
    http.requests += 1;
    const response = await fetch(url, { ...opts, headers });
    if (response.status >= 400) {
      const { pathname } = new URL(url);
      http.failures.push({ method: (opts.method || 'GET').toUpperCase(), path: pathname,
                           status: response.status,
                           body: (await response.clone().text()).slice(0, 300) });
    }
    return response;
  };
}

/** One device: an RxDB database on Dexie with a live replication through the gateway. */
class Device {
  constructor(name, spec) {
    this.name = name;
    this.spec = spec;
    this.statuses = [];
    this.sent = 0;
  }

  /** The database, its collection and (unless `start` is false) the running replication. */
  async open({ start = true } = {}) {
    this.db = await createRxDatabase({
      name: `${this.name}-${randomBytes(6).toString('hex')}`,
      storage,
      multiInstance: false,
    });
    ({ notes: this.notes } = await this.db.addCollections({ notes: { schema: NOTE_SCHEMA } }));
    const direct = bearerFetch(this.spec.token);
    if (this.spec.key) {
      this.sealed = sealedFetch(this.spec.key, { fetch: direct });
      this.sealed.addEventListener('e2e-error', ({ detail }) => {
        e2eErrors.push({ device: this.name, id: detail.id,
                         error: { name: detail.error.name, message: detail.error.message } });
      });
      await this.sealed.createDatabase(this.spec.url);
      this.fetch = this.sealed.fetch;
    } else {
      const res = await direct(`${this.spec.url}/`, { method: 'PUT' });
      if (!res.ok && res.status !== 412) throw new Error(`creating the database: ${res.status}`);
      this.fetch = direct;
    }
    if (start) await this.online();
    return this;
  }

  async online() {
    const batchSize = this.spec.batch_size ?? 100;
    this.replication = replicateCouchDB({
      replicationIdentifier: `couchgate-${this.name}`,
      collection: this.notes,
      url: `${this.spec.url}/`,
      fetch: this.fetch,
      live: this.spec.live ?? true,
      retryTime: 500,
      pull: { batchSize },
      push: { batchSize },
    });
    this.replication.sent$.subscribe(() => { this.sent += 1; });
    this.replication.error$.subscribe((err) => {
      const cause = err?.parameters?.errors?.[0] ?? err?.parameters?.error ?? err;
      // RxDB keeps only name and message of a fetch error: its status leads the message.
      const status = cause?.status ?? Number(/^(\d{3}) /.exec(cause?.message ?? '')?.[1]);
      if (status) this.statuses.push(status);
      replicationErrors.push({ device: this.name, ...errorInfo(err), cause: errorInfo(cause) });
    });
    await this.replication.awaitInitialReplication();
  }

  async offline() {
    await this.replication.cancel();
  }

  async doc(id) {
    const found = await this.notes.findOne(id).exec();
    return found ? plain(found) : null;
  }

  async docs() {
    const found = await this.notes.find({ sort: [{ id: 'asc' }] }).exec();
    return found.map(plain);
  }
}

/** A device's first sync (one-shot, both ways): its time, and how many documents it wrote to the
 * server (a push) or holds after (a pull). */
async function firstSync(label, device) {
  const start = performance.now();
  await device.online();
  const ms = performance.now() - start;
  note(`${label}: ${ms.toFixed(0)} ms`);
  const written = label.endsWith('push') ? device.sent : (await device.docs()).length;
  return { elapsed_ms: ms, docs_written: written };
}

function matches(doc, fields) {
  return doc !== null && Object.entries(fields).every(([k, v]) => JSON.stringify(doc[k]) === JSON.stringify(v));
}

const commands = {
  async devices(cmd) {
    const timeoutMs = cmd.timeout_ms ?? 20000;
    const devices = {};
    for (const [name, spec] of Object.entries(cmd.devices)) {
      devices[name] = await new Device(name, spec).open();
    }
    const steps = {
      async put(step, device) {
        // With a natural key the id is the plugin's keyed MAC of it (sealed.idFor).
        const id = step.natural_key === undefined ? {} : { id: device.sealed.idFor(step.natural_key) };
        return { doc: plain(await device.notes.upsert({ ...step.doc, ...id })) };
      },
      async remove(step, device) {
        const found = await device.notes.findOne(step.id).exec();
        if (!found) throw new Error(`no document ${step.id}`);
        await found.remove();
        return {};
      },
      async wait(step, device) {
        const res = await waitUntil(async () => {
          const doc = await device.doc(step.id);
          return step.deleted ? doc === null : matches(doc, step.fields ?? {});
        }, step.timeout_ms ?? timeoutMs);
        return { ok: res.ok, doc: await device.doc(step.id) };
      },
      async 'wait-error'(step, device) {
        const res = await waitUntil(() => device.statuses.includes(step.status),
                                    step.timeout_ms ?? timeoutMs);
        return { ok: res.ok, statuses: device.statuses,
                 errors: replicationErrors.filter((e) => e.device === device.name).slice(-3) };
      },
      async docs(_step, device) {
        return { docs: await device.docs() };
      },
      async offline(_step, device) {
        await device.offline();
        return {};
      },
      async online(_step, device) {
        await device.online();
        return {};
      },
      async 'in-sync'(_step, device) {
        await device.replication.awaitInSync();
        return {};
      },
    };
    emit('ready');
    for (let line = await nextLine(); line !== null; line = await nextLine()) {
      const step = JSON.parse(line);
      if (step.op === 'end') break;
      note(`${step.device}: ${step.op}`);
      emit('done', { op: step.op, ...(await steps[step.op](step, devices[step.device])) });
    }
    for (const device of Object.values(devices)) await device.offline();
    return {};
  },

  // Sign in and pair as an RxDB app does with the plugin's packaged calls: enroll with the
  // admin's code, make the key, show a pairing link; a second device opens the link, redeems
  // its code and takes the key from it. Then a note written on the first shows on the second.
  async pair(cmd) {
    const opts = { base: cmd.base };
    const first = await enroll(cmd.enrollment_code, 'laptop', opts);
    const key = generateKey(cmd.app);
    const a = await new Device('a', { url: `${cmd.base}/db/${cmd.app}`, token: first.token, key })
      .open();
    const link = pairingLink(`${cmd.base}/app/`, { code: (await linkCode(first.token, opts)).code,
                                                  key });
    const fromLink = parsePairing(link);
    const second = await redeemLink(fromLink.code, 'phone', opts);
    const b = await new Device('b', { url: `${cmd.base}/db/${cmd.app}`, token: second.token,
                                      key: fromLink.key }).open();
    await a.notes.insert({ id: 'paired', text: cmd.text });
    const seen = await waitUntil(async () => (await b.doc('paired'))?.text === cmd.text,
                                 cmd.timeout_ms ?? 20000);
    const reused = await redeemLink(fromLink.code, 'thief', opts).then(() => null, errorInfo);
    await a.offline();
    await b.offline();
    return {
      seen: seen.ok,
      users: [first.user, second.user],
      fingerprints: [a.sealed.fingerprint, b.sealed.fingerprint],
      link_has_key_in_fragment: new URL(link).hash.includes('key=ep1k'),
      reused,
    };
  },

  async bench(cmd) {
    const spec = { ...cmd.remote, live: false, batch_size: cmd.batch_size };
    const writer = await new Device('bench-a', spec).open({ start: false });
    await writeInBatches(writer.notes, benchDocs(cmd.count, cmd.doc_size ?? 1024), cmd.batch_size);
    const push = await firstSync('bench push', writer);
    const pull = await firstSync('bench pull', await new Device('bench-b', spec).open({ start: false }));
    return { push, pull };
  },
};

function finish(output, code) {
  process.stdout.write(JSON.stringify({ ...output, http, e2e_errors: e2eErrors,
                                        replication_errors: replicationErrors }) + '\n',
                       () => process.exit(code));
}

runCommand(commands, { readCommand, finish, note });
