/**
 * Keys: K_root, the subkeys derived from it (libsodium crypto_kdf_derive_from_key, spelled out
 * with BLAKE2b), and the keyring mapping kid → K_root. Mirrors encryption_plugin/keys.py.
 *
 *   K_doc = sub(1, 32)   K_att = sub(2, 32)   K_idmac = sub(3, 32)   kid = sub(4, 16)[0:8]
 *   sub(id, len) = BLAKE2b(key = K_root, out = len, salt = LE64(id) ‖ 0^8,
 *                          personal = "ep1-keys" ‖ 0^8, message = empty)
 */

import { blake2b } from '@noble/hashes/blake2.js';

import { b64uEncode, concat, toHex, u64, utf8 } from './codec.js';
import { UnknownKey } from './errors.js';
import { randomBytes } from './random.js';

export const KEY_BYTES = 32;
export const KID_BYTES = 8;
const KDF_CONTEXT = utf8('ep1-keys');
const APP_ID_RE = /^[a-z0-9.-]{1,64}$/;

/** Zero-pad to the 16 bytes noble's BLAKE2b wants for salt and personalisation (libsodium does
 * the same padding implicitly). */
export function pad16(bytes) {
  const out = new Uint8Array(16);
  out.set(bytes);
  return out;
}

export function checkAppId(appId) {
  if (typeof appId !== 'string' || !APP_ID_RE.test(appId)) {
    throw new TypeError('appId must match [a-z0-9.-]{1,64}');
  }
  return appId;
}

export function deriveSubkey(root, id, length) {
  if (!(root instanceof Uint8Array) || root.length !== KEY_BYTES) {
    throw new TypeError('K_root must be 32 bytes');
  }
  return blake2b(new Uint8Array(0), {
    dkLen: length,
    key: root,
    salt: concat(u64(id), new Uint8Array(8)),
    personalization: pad16(KDF_CONTEXT),
  });
}

export function keySetFromRoot(root) {
  return Object.freeze({
    root: Uint8Array.from(root),
    doc: deriveSubkey(root, 1, 32),
    att: deriveSubkey(root, 2, 32),
    idmac: deriveSubkey(root, 3, 32),
    kid: deriveSubkey(root, 4, 16).slice(0, KID_BYTES),
  });
}

/** 16 upper-case hex digits of the kid in groups of four, e.g. "3F2A-91C0-5B7E-D144". */
export function fingerprintOf(kid) {
  return toHex(kid).toUpperCase().match(/.{4}/g).join('-');
}

/**
 * The keys of one app. Seal with the active key; open with whichever key an envelope names.
 * Key material stays in private fields: it is not enumerable, not in JSON.stringify output and
 * not printed by console.log.
 */
export class Keyring {
  #appId;
  #keys = new Map(); // b64u(kid) → key set
  #active;

  constructor(appId, root) {
    this.#appId = checkAppId(appId);
    this.#active = this.add(root);
  }

  static generate(appId) {
    return new Keyring(appId, randomBytes(KEY_BYTES));
  }

  get appId() {
    return this.#appId;
  }

  /** The active kid (8 bytes). */
  get kid() {
    return this.#active.slice();
  }

  get kids() {
    return [...this.#keys.values()].map((k) => k.kid.slice());
  }

  /** Add a key without activating it (rotation: older keys keep opening old data). */
  add(root) {
    const keys = keySetFromRoot(root);
    const id = b64uEncode(keys.kid);
    if (!this.#keys.has(id)) this.#keys.set(id, keys);
    return keys.kid;
  }

  activate(kid) {
    this.keysFor(kid);
    this.#active = Uint8Array.from(kid);
  }

  rotate() {
    const kid = this.add(randomBytes(KEY_BYTES));
    this.#active = kid;
    return kid.slice();
  }

  activeKeys() {
    return this.#keys.get(b64uEncode(this.#active));
  }

  keysFor(kid) {
    const keys = this.#keys.get(b64uEncode(kid));
    if (!keys) throw new UnknownKey(`no key with kid ${b64uEncode(kid)} in the keyring`);
    return keys;
  }

  fingerprint() {
    return fingerprintOf(this.#active);
  }

  toJSON() {
    return { appId: this.#appId, kid: b64uEncode(this.#active), keys: this.#keys.size };
  }
}
