/**
 * The PouchDB plugin: seals what goes to the *remote* (http) database, opens what comes back.
 *
 *   import PouchDB from 'pouchdb';
 *   import encryption, { localOptions } from '@couchgate/encryption-plugin';
 *   PouchDB.plugin(encryption);
 *   const local = new PouchDB('notes', localOptions());      // random revision ids
 *   const remote = new PouchDB('https://sync.example/db/notes', { fetch: withToken });
 *   await remote.useEncryption(exportString, { onError: ({ id, error }) => report(id, error) });
 *   local.sync(remote, { live: true, retry: true });
 *
 * How it hooks in: useEncryption() replaces, on that one handle, the instance methods PouchDB's
 * replicator and apps call — writes bulkDocs and put (post goes through bulkDocs); reads get
 * (incl. open_revs), bulkGet (the docs[].ok shapes), allDocs (include_docs), getAttachment; and
 * the adapter's _changes (so live feeds with include_docs work: the public changes() builds a
 * Changes emitter around it). putAttachment/removeAttachment re-seal the whole document.
 * revsDiff, info, id and _local/* checkpoints pass through untouched.
 *
 * A document that fails to open (tampered, unknown key, ...) never crashes a read: it is left out
 * of bulkGet/get(open_revs)/allDocs/changes results and reported as an event on the remote handle,
 *   remote.on('e2e-error', ({ id, rev, error }) => ...)   // error is a CryptoError
 * and to the optional onError callback. Replication then goes on without it. A direct
 * remote.get(id) of such a document rejects with the CryptoError instead.
 *
 * Attachments on demand (`useEncryption(key, { attachments: 'on-demand' })`): a device that
 * shows only some of the data, such as a web page listing notes, need not download every
 * attachment. The replicator then receives each document with its body only: its attachments,
 * which stay on the server, are described under REMOTE_ATTACHMENTS (real name → {content_type,
 * length, stored, kid}: what fetching and opening one needs) instead of `_attachments`, so the
 * local database stores the document without their bytes, at the server's revision. The app
 * reads one when it needs it with remote.getRemoteAttachment(localDoc, name). What the server
 * sees is then decided by what is public anyway: every document's body is read, no attachment
 * until it is opened (docs/notes-format.md, "A web device"). Such a local document cannot be
 * written back as it is (its attachments would be lost): sealing refuses it; put the fetched
 * attachments in `_attachments` and drop REMOTE_ATTACHMENTS first.
 *
 * Not supported: replication with a JavaScript *filter function* (it would run on ciphertext);
 * use doc_ids. Server-side selectors and views cannot see inside sealed documents either.
 */

import { b64uDecode, b64uEncode, toHex } from './codec.js';
import { BadEnvelope, CryptoError } from './errors.js';
import {
  FIELD, attachmentIndex, isLocalId, openAttachment, openBody, openDoc, parseIndex, sealDoc,
} from './envelope.js';
import { keyringFromExport } from './exportkey.js';
import { randomBytes } from './random.js';

const STATE = Symbol('couchgate-ep1');
const REV_CACHE_SIZE = 1000;
const ATTACHMENT_MODES = ['replicate', 'on-demand'];

/** The field of a pulled document that describes the attachments left on the server. */
export const REMOTE_ATTACHMENTS = '$remote_attachments';

/** Options for the LOCAL database: PouchDB's default revision ids are an MD5 of the plaintext,
 * and would travel to the server in clear; `deterministic_revs: false` makes them random. */
export function localOptions(options = {}) {
  return { ...options, deterministic_revs: false };
}

/** Throw unless `db` (a local database) uses random revision ids. */
export function assertRandomRevs(db) {
  if (db?.__opts?.deterministic_revs !== false) {
    throw new Error('the local database must be opened with deterministic_revs: false ' +
      '(see localOptions()): deterministic revision ids leak an MD5 of the plaintext');
  }
}

function notFound(reason) {
  const err = new Error(reason);
  err.status = 404;
  err.name = 'not_found';
  err.error = true;
  err.reason = reason;
  return err;
}

/** Replace db[name] by `impl(original, ...args)`, keeping PouchDB's optional callback style. */
function replace(db, name, impl) {
  const original = db[name].bind(db);
  db[name] = function (...args) {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    const promise = impl(original, ...args);
    if (cb) promise.then((res) => cb(null, res), (err) => cb(err));
    return promise;
  };
  return original;
}

/**
 * Turn on end-to-end encryption for this remote database handle.
 * @param {string} exportString  the app key (`ep1k:…` or its base32 form)
 * @param {object} [options]
 * @param {(e: {id: string, rev?: string, error: Error}) => void} [options.onError]
 * @param {string[]} [options.olderKeys]  exports of previous keys, still accepted for opening
 * @param {string} [options.appId]  require the key to be for this app
 * @param {'replicate'|'on-demand'} [options.attachments]  'on-demand' leaves pulled documents'
 *   attachments on the server (see the module comment); 'replicate' (the default) pulls them
 * @returns {Promise<{appId: string, kid: string, fingerprint: string}>}
 */
async function useEncryption(exportString, options = {}) {
  const db = this;
  if (db.adapter !== 'http' && db.adapter !== 'https') {
    throw new TypeError('useEncryption() belongs on the remote (http) database; the local ' +
      'database stays plaintext (open it with localOptions() for random revision ids)');
  }
  if (db[STATE]) throw new Error('useEncryption() was already called on this database handle');
  const attachments = options.attachments ?? 'replicate';
  if (!ATTACHMENT_MODES.includes(attachments)) {
    throw new TypeError(`attachments must be one of ${ATTACHMENT_MODES.join(', ')}`);
  }
  const keyring = keyringFromExport(exportString, { appId: options.appId });
  for (const older of options.olderKeys ?? []) {
    const other = keyringFromExport(older, { appId: keyring.appId });
    keyring.add(other.activeKeys().root);
  }
  const state = {
    keyring, onError: options.onError, revs: new Map(), onDemand: attachments === 'on-demand',
  };
  db[STATE] = state;
  install(db, state);
  return { appId: keyring.appId, kid: b64uEncode(keyring.kid), fingerprint: keyring.fingerprint() };
}

function install(db, state) {
  const { keyring } = state;
  const opened = new WeakSet(); // docs this handle produced: never opened twice
  const stubIndex = new WeakMap(); // opened doc → its attachment index, when left on the server

  function report(doc, error) {
    const event = { id: doc?._id, rev: doc?._rev, error };
    db.emit('e2e-error', event);
    if (state.onError) state.onError(event);
  }

  function remember(doc) {
    // The replicator fetches a pulled attachment with getAttachment(id, name) and no rev: keep
    // the rev we just opened so that call reads the same revision.
    if (!doc._attachments) return;
    state.revs.delete(doc._id);
    state.revs.set(doc._id, doc._rev);
    if (state.revs.size > REV_CACHE_SIZE) state.revs.delete(state.revs.keys().next().value);
  }

  /** Open, or report and return undefined when the document cannot be opened. */
  async function tryOpen(doc) {
    if (!doc || opened.has(doc)) return doc;
    try {
      const out = await openDoc(doc, keyring);
      opened.add(out);
      if (state.onDemand && onlyStubs(doc)) stubIndex.set(out, attachmentIndex(doc, keyring));
      return out;
    } catch (error) {
      if (!(error instanceof CryptoError)) throw error;
      report(doc, error);
      return undefined;
    }
  }

  /** An opened document whose attachments are stubs, as the replicator receives it in
   * on-demand mode: the body, and where each attachment is on the server. */
  function leaveOnServer(doc) {
    const index = stubIndex.get(doc);
    if (!index) return doc;
    const out = { ...doc };
    delete out._attachments;
    out[REMOTE_ATTACHMENTS] = Object.fromEntries([...index].map(([name, info]) => [name, {
      content_type: info.type, length: info.length, stored: info.storedName,
      kid: b64uEncode(info.kid),
    }]));
    opened.add(out);
    return out;
  }

  async function seal(doc) {
    if (!doc || typeof doc !== 'object' || isLocalId(doc._id)) return doc;
    if (REMOTE_ATTACHMENTS in doc) {
      throw new TypeError(`document ${JSON.stringify(doc._id)} left its attachments on the ` +
        `server (${REMOTE_ATTACHMENTS}): fetch them with getRemoteAttachment() and put them in ` +
        '_attachments before writing it');
    }
    if (doc._id === undefined) doc = { ...doc, _id: toHex(randomBytes(16)) };
    return sealDoc(doc, keyring);
  }

  // -- writes ---------------------------------------------------------------------------------

  replace(db, 'bulkDocs', async (original, req, opts = {}) => {
    const request = Array.isArray(req) ? { docs: req } : { ...req };
    if (Array.isArray(request.docs)) request.docs = await Promise.all(request.docs.map(seal));
    return original(request, opts);
  });

  replace(db, 'put', async (original, doc, opts = {}) => original(await seal(doc), opts));

  // -- reads ----------------------------------------------------------------------------------

  const rawGet = replace(db, 'get', async (original, id, opts = {}) => {
    const res = await original(id, opts);
    if (isLocalId(id)) return res;
    if (opts.open_revs) {
      const out = [];
      for (const entry of res) {
        if (!entry.ok) {
          out.push(entry);
          continue;
        }
        const doc = await tryOpen(entry.ok);
        if (doc) out.push({ ...entry, ok: leaveOnServer(doc) });
      }
      return out;
    }
    if (opened.has(res)) return res;
    try {
      const doc = await openDoc(res, keyring);
      opened.add(doc);
      return doc;
    } catch (error) {
      if (error instanceof CryptoError) report(res, error);
      throw error;
    }
  });

  replace(db, 'bulkGet', async (original, opts) => {
    const res = await original(opts);
    for (const result of res.results ?? []) {
      const docs = [];
      for (const entry of result.docs ?? []) {
        if (!entry.ok) {
          docs.push(entry);
          continue;
        }
        const doc = await tryOpen(entry.ok);
        if (doc) {
          remember(doc);
          docs.push({ ...entry, ok: leaveOnServer(doc) });
        }
      }
      result.docs = docs;
    }
    return res;
  });

  replace(db, 'allDocs', async (original, opts = {}) => {
    const res = await original(opts);
    if (!opts.include_docs) return res;
    const rows = [];
    for (const row of res.rows ?? []) {
      if (!row.doc) {
        rows.push(row);
        continue;
      }
      const doc = await tryOpen(row.doc);
      if (doc) rows.push({ ...row, doc });
    }
    res.rows = rows;
    return res;
  });

  // The adapter-level feed. PouchDB's Changes emitter calls it with onChange/complete callbacks;
  // with include_docs we open each doc in order before passing the change on, and drop (and
  // report) changes whose doc does not open, from the events and from the final results.
  const originalChanges = db._changes.bind(db);
  db._changes = function (opts) {
    if (!opts.include_docs) return originalChanges(opts);
    const onChange = opts.onChange;
    const complete = opts.complete;
    const failed = new WeakSet();
    let chain = Promise.resolve();
    return originalChanges({
      ...opts,
      onChange(change, ...rest) {
        chain = chain.then(async () => {
          if (change.doc && !isLocalId(change.id)) {
            const doc = await tryOpen(change.doc);
            if (!doc) {
              failed.add(change);
              return;
            }
            change.doc = doc;
          }
          onChange(change, ...rest);
        });
      },
      complete(err, res) {
        chain.then(() => {
          if (res?.results) res.results = res.results.filter((c) => !failed.has(c));
          complete(err, res);
        }, (chainErr) => complete(chainErr));
      },
    });
  };

  // -- attachments ----------------------------------------------------------------------------

  const rawGetAttachment = db.getAttachment.bind(db);
  replace(db, 'getAttachment', async (_original, docId, name, opts = {}) => {
    const rev = opts.rev ?? state.revs.get(docId);
    const sealed = await rawGet(docId, rev ? { rev } : {});
    if (!(FIELD in sealed)) throw notFound('missing');
    const { keys, body } = openBody(keyring, docId, sealed[FIELD]);
    for (const [storedName, info] of parseIndex(body.$att ?? {})) {
      if (info.name !== name) continue;
      const blob = await rawGetAttachment(docId, storedName, { rev: sealed._rev });
      const bytes = blob instanceof Uint8Array ? blob : new Uint8Array(await blob.arrayBuffer());
      const data = openAttachment(bytes, keyring, { docId, storedName, kid: keys.kid });
      if (typeof Buffer !== 'undefined' && Buffer.isBuffer(blob)) return Buffer.from(data);
      return new Blob([data], { type: info.type });
    }
    throw notFound('missing');
  });

  /**
   * The content of attachment `name` of `doc`, a local document pulled in on-demand mode (its
   * REMOTE_ATTACHMENTS says where the attachment is): one GET of the sealed bytes at the
   * document's revision, opened and checked against the length the sealed body gave.
   */
  db.getRemoteAttachment = async function getRemoteAttachment(doc, name) {
    const entry = doc?.[REMOTE_ATTACHMENTS]?.[name];
    if (!entry) throw notFound('missing');
    const blob = await rawGetAttachment(doc._id, entry.stored, { rev: doc._rev });
    const bytes = blob instanceof Uint8Array ? blob : new Uint8Array(await blob.arrayBuffer());
    const data = openAttachment(bytes, keyring, {
      docId: doc._id, storedName: entry.stored, kid: b64uDecode(entry.kid, 'kid'),
    });
    if (data.length !== entry.length) {
      throw new BadEnvelope(`attachment ${entry.stored}: length differs from the index`);
    }
    if (typeof Buffer !== 'undefined' && Buffer.isBuffer(blob)) return Buffer.from(data);
    return new Blob([data], { type: entry.content_type });
  };

  replace(db, 'putAttachment', async (_original, docId, name, ...rest) => {
    const [rev, data, type] = rest.length >= 3 ? rest : [undefined, ...rest];
    let doc;
    try {
      doc = await db.get(docId, { ...(rev ? { rev } : {}), attachments: true, binary: true });
    } catch (err) {
      if (err.status !== 404 || rev) throw err;
      doc = { _id: docId };
    }
    doc._attachments = { ...doc._attachments, [name]: { content_type: type, data } };
    return db.put(doc);
  });

  replace(db, 'removeAttachment', async (_original, docId, name, rev) => {
    const doc = await db.get(docId, { rev, attachments: true, binary: true });
    if (!doc._attachments?.[name]) throw notFound('missing');
    delete doc._attachments[name];
    if (!Object.keys(doc._attachments).length) delete doc._attachments;
    return db.put(doc);
  });
}

/** Whether a stored document has attachments and every one is a stub (no data asked for). */
function onlyStubs(doc) {
  const atts = Object.values(doc._attachments ?? {});
  return atts.length > 0 && atts.every((att) => att && att.stub === true);
}

export default { useEncryption };
