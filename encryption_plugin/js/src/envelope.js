/**
 * Documents and attachments in the ep1 envelope; mirrors encryption_plugin/envelope.py and
 * attachments.py byte for byte (checked by test/vectors.test.mjs against vectors/ep1.json).
 *
 *   stored: {_id, _rev, ..., _attachments?: {<random>: {content_type: octet-stream, data}},
 *            e2e: "ep1.<b64u kid>.<b64u nonce>.<b64u ct‖tag>"}
 *   body:   the doc without top-level "_" fields, plus "$att": {<random>: {name, type, length}}
 *           when it has attachments; compact JSON, UTF-8, padded (padding.js)
 *   doc AD: "ep1/doc\0" ‖ kid ‖ u32‖app_id ‖ u32‖_id
 *   att AD: "ep1/att\0" ‖ kid ‖ u32‖app_id ‖ u32‖_id ‖ u32‖stored_name
 *
 * Pass through unchanged: _local/* docs, already sealed docs, bare tombstones.
 */

import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';

import {
  b64Decode, b64Encode, b64uDecode, b64uEncode, concat, fromUtf8, toHex, u32Framed, utf8,
} from './codec.js';
import { AuthenticationFailed, BadEnvelope, UnknownSuite } from './errors.js';
import { KID_BYTES } from './keys.js';
import { pad, unpad } from './padding.js';
import { randomBytes } from './random.js';

export const SUITE = 'ep1';
export const FIELD = 'e2e';
export const ATT_FIELD = '$att';
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
export const STORED_TYPE = 'application/octet-stream';
export const MAX_ATTACHMENT_BYTES = 16 * 1024 * 1024;
const DOC_AD_PREFIX = utf8('ep1/doc\0');
const ATT_AD_PREFIX = utf8('ep1/att\0');
const LOCAL_PREFIX = '_local/';

// -- pieces -------------------------------------------------------------------------------------

export function docAd(kid, appId, docId) {
  return concat(DOC_AD_PREFIX, kid, u32Framed(utf8(appId)), u32Framed(utf8(docId)));
}

export function attachmentAd(kid, appId, docId, storedName) {
  return concat(ATT_AD_PREFIX, kid, u32Framed(utf8(appId)), u32Framed(utf8(docId)),
    u32Framed(utf8(storedName)));
}

export function encodeBody(body) {
  return utf8(JSON.stringify(body));
}

export function decodeBody(bytes) {
  let body;
  try {
    body = JSON.parse(fromUtf8(bytes, 'body'));
  } catch (err) {
    if (err instanceof BadEnvelope) throw err;
    throw new BadEnvelope('body is not UTF-8 JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadEnvelope('body is not a JSON object');
  }
  if (Object.keys(body).some((k) => k.startsWith('_'))) {
    throw new BadEnvelope('body carries a reserved _ field');
  }
  return body;
}

function decrypt(key, nonce, ad, sealed, what) {
  try {
    return xchacha20poly1305(key, nonce, ad).decrypt(sealed);
  } catch {
    throw new AuthenticationFailed(`${what}: authentication failed`);
  }
}

export function sealBody(keys, appId, docId, body, nonce) {
  const sealed = xchacha20poly1305(keys.doc, nonce, docAd(keys.kid, appId, docId)).encrypt(pad(body));
  return [SUITE, b64uEncode(keys.kid), b64uEncode(nonce), b64uEncode(sealed)].join('.');
}

export function parseEnvelope(value) {
  if (typeof value !== 'string') throw new BadEnvelope('e2e is not a string');
  const parts = value.split('.');
  if (parts[0] !== SUITE) throw new UnknownSuite('e2e: unknown suite');
  if (parts.length !== 4) throw new BadEnvelope('e2e: expected ep1.<kid>.<nonce>.<ciphertext>');
  const kid = b64uDecode(parts[1], 'e2e kid');
  const nonce = b64uDecode(parts[2], 'e2e nonce');
  const sealed = b64uDecode(parts[3], 'e2e ciphertext');
  if (kid.length !== KID_BYTES || nonce.length !== NONCE_BYTES) {
    throw new BadEnvelope('e2e: wrong kid or nonce length');
  }
  if (sealed.length < TAG_BYTES) throw new BadEnvelope('e2e: ciphertext truncated');
  return { kid, nonce, sealed };
}

export function openBody(keyring, docId, envelope) {
  const { kid, nonce, sealed } = parseEnvelope(envelope);
  const keys = keyring.keysFor(kid);
  const padded = decrypt(keys.doc, nonce, docAd(kid, keyring.appId, docId), sealed, 'document');
  return { keys, body: decodeBody(unpad(padded)) };
}

export function sealAttachmentWith(keys, appId, docId, storedName, data) {
  if (data.length > MAX_ATTACHMENT_BYTES) {
    throw new RangeError('attachment is larger than the ep1 cap of 16 MiB');
  }
  const nonce = randomBytes(NONCE_BYTES);
  const ad = attachmentAd(keys.kid, appId, docId, storedName);
  return concat(nonce, xchacha20poly1305(keys.att, nonce, ad).encrypt(data));
}

export function openAttachmentWith(keys, appId, docId, storedName, blob) {
  if (blob.length < NONCE_BYTES + TAG_BYTES) {
    throw new BadEnvelope(`attachment ${storedName}: truncated`);
  }
  if (blob.length > NONCE_BYTES + MAX_ATTACHMENT_BYTES + TAG_BYTES) {
    throw new BadEnvelope(`attachment ${storedName}: larger than the ep1 cap`);
  }
  const ad = attachmentAd(keys.kid, appId, docId, storedName);
  return decrypt(keys.att, blob.subarray(0, NONCE_BYTES), ad, blob.subarray(NONCE_BYTES),
    `attachment ${storedName}`);
}

/** Validate a decrypted $att map; returns Map(storedName → {name, type, length}). */
export function parseIndex(raw) {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new BadEnvelope('$att is not an object');
  }
  const index = new Map();
  const names = new Set();
  for (const [stored, meta] of Object.entries(raw)) {
    const keys = meta && typeof meta === 'object' ? Object.keys(meta).sort().join() : '';
    if (keys !== 'length,name,type' || typeof meta.name !== 'string' ||
        typeof meta.type !== 'string') {
      throw new BadEnvelope('$att entry has the wrong shape');
    }
    if (!Number.isInteger(meta.length) || meta.length < 0 || meta.length > MAX_ATTACHMENT_BYTES) {
      throw new BadEnvelope('$att entry has a bad length');
    }
    if (names.has(meta.name)) throw new BadEnvelope('$att names one attachment twice');
    names.add(meta.name);
    index.set(stored, { name: meta.name, type: meta.type, length: meta.length });
  }
  return index;
}

// -- binary data in the shapes PouchDB uses -----------------------------------------------------

const hasBuffer = typeof Buffer !== 'undefined';

/** Bytes of attachment data given as base64 string, Buffer/Uint8Array, ArrayBuffer or Blob. */
export async function dataBytes(data, what) {
  if (typeof data === 'string') return b64Decode(data, what);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    return new Uint8Array(await data.arrayBuffer());
  }
  throw new TypeError(`${what}: unsupported attachment data`);
}

/** Plaintext bytes back in the shape the ciphertext came in (string, Buffer or Blob). */
function likeInput(input, bytes, type) {
  if (typeof input === 'string') return b64Encode(bytes);
  if (hasBuffer && Buffer.isBuffer(input)) return Buffer.from(bytes);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return new Blob([bytes], { type });
  return bytes;
}

// -- documents ----------------------------------------------------------------------------------

function bodyFields(doc) {
  return Object.keys(doc).filter((k) => !k.startsWith('_'));
}

export function isSealed(doc) {
  const fields = bodyFields(doc);
  return fields.length === 1 && fields[0] === FIELD && typeof doc[FIELD] === 'string';
}

function isBareTombstone(doc) {
  return doc._deleted === true && bodyFields(doc).length === 0 &&
    !(doc._attachments && Object.keys(doc._attachments).length);
}

function docIdOf(doc) {
  if (typeof doc?._id !== 'string' || !doc._id) {
    throw new TypeError('a document needs a string _id before it can be sealed or opened');
  }
  return doc._id;
}

export function isLocalId(id) {
  return typeof id === 'string' && id.startsWith(LOCAL_PREFIX);
}

/**
 * The stored form of `doc`, sealed with the keyring's active key (a new object; `doc` is not
 * modified). Attachments must carry data; each gets a random stored name and its own nonce.
 * Random draws, in order (the vectors replay them): per attachment its name (16 bytes, hex)
 * then its nonce (24), finally the body nonce (24).
 */
export async function sealDoc(doc, keyring) {
  const docId = docIdOf(doc);
  if (isLocalId(docId) || isSealed(doc) || isBareTombstone(doc)) return { ...doc };
  const keys = keyring.activeKeys();
  const body = {};
  for (const k of bodyFields(doc)) body[k] = doc[k];
  if (ATT_FIELD in body) throw new TypeError(`${ATT_FIELD} is reserved for the attachment index`);

  const sealed = {};
  for (const k of Object.keys(doc)) if (k.startsWith('_')) sealed[k] = doc[k];
  const atts = doc._attachments;
  if (atts && Object.keys(atts).length) {
    const stored = {};
    const index = {};
    for (const [name, entry] of Object.entries(atts)) {
      if (entry.stub) {
        throw new TypeError(`attachment ${JSON.stringify(name)} is a stub: sealing needs its data`);
      }
      if (entry.data === undefined) throw new TypeError(`attachment ${JSON.stringify(name)} has no data`);
      const data = await dataBytes(entry.data, `attachment ${JSON.stringify(name)}`);
      const storedName = toHex(randomBytes(16));
      stored[storedName] = {
        content_type: STORED_TYPE,
        data: b64Encode(sealAttachmentWith(keys, keyring.appId, docId, storedName, data)),
      };
      index[storedName] = { name, type: entry.content_type || STORED_TYPE, length: data.length };
    }
    sealed._attachments = stored;
    body[ATT_FIELD] = index;
  }
  sealed[FIELD] = sealBody(keys, keyring.appId, docId, encodeBody(body), randomBytes(NONCE_BYTES));
  return sealed;
}

/**
 * The plaintext of a stored document, or a thrown CryptoError. Attachments come back under
 * their real names and types; inline data in the shape it arrived in (base64 string, Buffer or
 * Blob); stubs with their real length. Server digests describe ciphertext and are dropped.
 */
export async function openDoc(doc, keyring) {
  const docId = docIdOf(doc);
  if (isLocalId(docId) || isBareTombstone(doc)) return { ...doc };
  if (!(FIELD in doc)) throw new BadEnvelope('document is not sealed');
  const fields = bodyFields(doc);
  if (fields.length !== 1) throw new BadEnvelope('sealed document carries clear fields');
  const { keys, body } = openBody(keyring, docId, doc[FIELD]);
  const index = parseIndex(body[ATT_FIELD] ?? {});
  delete body[ATT_FIELD];

  const opened = {};
  for (const k of Object.keys(doc)) if (k.startsWith('_') && k !== '_attachments') opened[k] = doc[k];
  Object.assign(opened, body);
  const stored = doc._attachments ?? {};
  if (typeof stored !== 'object' || Array.isArray(stored)) {
    throw new BadEnvelope('_attachments is not an object');
  }
  const storedNames = Object.keys(stored);
  if (storedNames.length || index.size) {
    if (storedNames.length !== index.size || !storedNames.every((n) => index.has(n))) {
      throw new BadEnvelope('attachments do not match the sealed attachment index');
    }
    opened._attachments = {};
    for (const storedName of storedNames) {
      const entry = stored[storedName];
      const info = index.get(storedName);
      const out = { content_type: info.type };
      if ('revpos' in entry) out.revpos = entry.revpos;
      if (entry.data !== undefined) {
        let blob;
        try {
          blob = await dataBytes(entry.data, `attachment ${storedName}`);
        } catch (err) {
          if (err instanceof BadEnvelope) throw err;
          throw new BadEnvelope(`attachment ${storedName}: unreadable data`);
        }
        const data = openAttachmentWith(keys, keyring.appId, docId, storedName, blob);
        if (data.length !== info.length) {
          throw new BadEnvelope(`attachment ${storedName}: length differs from the index`);
        }
        out.data = likeInput(entry.data, data, info.type);
      } else {
        out.length = info.length;
        out.stub = true;
      }
      opened._attachments[info.name] = out;
    }
  }
  return opened;
}

/** For a stored document: Map(real name → {storedName, type, length, kid}). */
export function attachmentIndex(doc, keyring) {
  const { keys, body } = openBody(keyring, docIdOf(doc), doc[FIELD]);
  const out = new Map();
  for (const [storedName, info] of parseIndex(body[ATT_FIELD] ?? {})) {
    out.set(info.name, { storedName, type: info.type, length: info.length, kid: keys.kid });
  }
  return out;
}

/** Open one stored attachment blob (nonce ‖ ct ‖ tag) of `docId` under the document's kid. */
export function openAttachment(blob, keyring, { docId, storedName, kid }) {
  return openAttachmentWith(keyring.keysFor(kid), keyring.appId, docId, storedName, blob);
}

/** Seal one attachment under its stored name, with the active key unless `kid` is given. */
export function sealAttachment(data, keyring, { docId, storedName, kid }) {
  const keys = kid === undefined ? keyring.activeKeys() : keyring.keysFor(kid);
  return sealAttachmentWith(keys, keyring.appId, docId, storedName, data);
}
