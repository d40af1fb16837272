/**
 * Every keyed value a synced folder derives from its app key, each under a label of its own.
 * Mirrors encryption_plugin/derivations.py byte for byte (docs/encryption-format.md, "Derivations
 * for synced folders"); both pass the `derivations` vectors of vectors/ep1.json.
 *
 *   pathId(path)            idFor(NFC(path))                            no NUL, no final "/"
 *   folderId(path)          idFor(NFC(path) + "/")                      the trailing "/"
 *   versionId(ofDoc, rev)   idFor("version\0" + ofDoc + "\0" + rev)     "version\0"
 *   chunkId(piece)          idFor("chunk\0" + hex(SHA-256(piece)))      "chunk\0"
 *   cutterSeed()            BE(subkey(5, 8)) >> 1 | 1 (a BigInt)        KDF subkey id 5
 *
 * The ids keep the bytes couchgate-sync has always given them; the cutter seed is secret (it
 * shapes the chunk sizes the server sees) and is no function of any id. Every value is under the
 * active key unless `kid` names another.
 */

import { sha256 } from '@noble/hashes/sha2.js';

import { toHex } from './codec.js';
import { idFor } from './ids.js';
import { deriveSubkey } from './keys.js';

export const CUTTER_SEED_SUBKEY = 5;
export const CUTTER_SEED_BYTES = 8;

function pathKey(path, what) {
  const nfc = path.normalize('NFC');
  if (nfc.includes('\0')) throw new TypeError(`a ${what} path has no NUL`);
  if (nfc.endsWith('/')) throw new TypeError(`a ${what} path does not end with /`);
  return nfc;
}

/** The document id of the file at `path` ("/"-separated, relative to the folder). */
export function pathId(path, keyring, { kid } = {}) {
  return idFor(pathKey(path, 'file'), keyring, { kid });
}

/** The document id of the (empty) folder at `path`: never the id of a file of that name. */
export function folderId(path, keyring, { kid } = {}) {
  return idFor(pathKey(path, 'folder') + '/', keyring, { kid });
}

/** The id of the version document keeping `ofDoc` at revision `rev` (which has no NUL). */
export function versionId(ofDoc, rev, keyring, { kid } = {}) {
  if (rev.includes('\0')) throw new TypeError('a revision has no NUL');
  return idFor(`version\0${ofDoc}\0${rev}`, keyring, { kid });
}

/** The id of the chunk document holding `piece` (a Uint8Array). */
export function chunkId(piece, keyring, { kid } = {}) {
  return idFor('chunk\0' + toHex(sha256(piece)), keyring, { kid });
}

/** The chunk cutter's 63-bit gear-table seed under the active key, never 0 (a BigInt). */
export function cutterSeed(keyring) {
  const raw = deriveSubkey(keyring.activeKeys().root, CUTTER_SEED_SUBKEY, CUTTER_SEED_BYTES);
  let n = 0n;
  for (const byte of raw) n = (n << 8n) | BigInt(byte);
  return (n >> 1n) | 1n;
}
