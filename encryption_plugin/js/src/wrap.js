/**
 * Passphrase-wrapped copy of K_root (see encryption_plugin/wrap.py for the normative text).
 *
 *   KEK = Argon2id(NFC(passphrase), salt, ops, mem, p = 1, 32 bytes)
 *   c   = XChaCha20-Poly1305(KEK, n, K_root, AD = "ep1/wrap" ‖ kid ‖ u32‖app_id ‖ u32(ops) ‖
 *                                                u64(mem) ‖ salt)
 *
 * Argon2id comes from hash-wasm (WebAssembly), imported lazily so apps that never wrap do not
 * load it. It still blocks the thread it runs on for a few hundred milliseconds at the minimum
 * parameters; browsers may prefer to call this from a Worker.
 */

import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';

import { b64uDecode, b64uEncode, concat, equalBytes, u32, u32Framed, u64, utf8 } from './codec.js';
import {
  AuthenticationFailed, BadEnvelope, UnknownSuite, WeakParameters,
} from './errors.js';
import { KEY_BYTES, KID_BYTES, Keyring } from './keys.js';
import { randomBytes } from './random.js';

const VERSION = 'ep1w';
const KDF = 'argon2id13';
export const MIN_OPS = 3;
export const MIN_MEM = 64 * 1024 * 1024;
const MAX_OPS = 16;
const MAX_MEM = 1024 * 1024 * 1024;
const SALT_BYTES = 16;
const FIELDS = 'c,kdf,kid,mem,n,ops,salt,v';

export function wrapAd(kid, appId, ops, mem, salt) {
  return concat(utf8('ep1/wrap'), kid, u32Framed(utf8(appId)), u32(ops), u64(mem), salt);
}

export async function deriveKek(passphrase, salt, ops, mem) {
  if (typeof passphrase !== 'string' || !passphrase) {
    throw new TypeError('the passphrase must be a non-empty string');
  }
  const { argon2id } = await import('hash-wasm');
  return argon2id({
    password: utf8(passphrase.normalize('NFC')),
    salt,
    parallelism: 1,
    iterations: ops,
    memorySize: mem / 1024, // KiB
    hashLength: KEY_BYTES,
    outputType: 'binary',
  });
}

function checkParams(ops, mem) {
  if (ops < MIN_OPS || mem < MIN_MEM) {
    throw new WeakParameters(`Argon2id parameters below ops=${MIN_OPS}, mem=${MIN_MEM}`);
  }
  if (ops > MAX_OPS || mem > MAX_MEM) {
    throw new BadEnvelope(`Argon2id parameters above ops=${MAX_OPS}, mem=${MAX_MEM}`);
  }
}

export function parseRecord(record) {
  if (record === null || typeof record !== 'object') throw new BadEnvelope('wrap record is not an object');
  if (record.v !== VERSION || record.kdf !== KDF) {
    throw new UnknownSuite('wrap record: unknown version or KDF');
  }
  if (Object.keys(record).sort().join() !== FIELDS) {
    throw new BadEnvelope('wrap record has missing or extra fields');
  }
  const { ops, mem } = record;
  if (!Number.isSafeInteger(ops) || !Number.isSafeInteger(mem) || ops < 0 || mem < 0 ||
      mem % 1024) {
    throw new BadEnvelope('wrap record: ops and mem must be integers (mem in whole KiB)');
  }
  const parsed = {
    ops,
    mem,
    salt: b64uDecode(record.salt, 'wrap salt'),
    kid: b64uDecode(record.kid, 'wrap kid'),
    nonce: b64uDecode(record.n, 'wrap nonce'),
    sealed: b64uDecode(record.c, 'wrap ciphertext'),
  };
  if (parsed.salt.length !== SALT_BYTES || parsed.kid.length !== KID_BYTES ||
      parsed.nonce.length !== 24 || parsed.sealed.length !== KEY_BYTES + 16) {
    throw new BadEnvelope('wrap record: wrong field length');
  }
  return parsed;
}

/** Test seam: open a parsed record without the parameter floor. */
export async function openRecord(parsed, passphrase, appId) {
  const kek = await deriveKek(passphrase, parsed.salt, parsed.ops, parsed.mem);
  const ad = wrapAd(parsed.kid, appId, parsed.ops, parsed.mem, parsed.salt);
  let root;
  try {
    root = xchacha20poly1305(kek, parsed.nonce, ad).decrypt(parsed.sealed);
  } catch {
    throw new AuthenticationFailed('wrap record: authentication failed');
  }
  const keyring = new Keyring(appId, root);
  if (!equalBytes(keyring.kid, parsed.kid)) {
    throw new AuthenticationFailed('wrap record: the unwrapped key does not match its kid');
  }
  return keyring;
}

/** Wrap the keyring's active K_root under `passphrase`; resolves to the JSON record. */
export async function wrap(keyring, passphrase, { ops = MIN_OPS, mem = MIN_MEM } = {}) {
  checkParams(ops, mem);
  const keys = keyring.activeKeys();
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(24);
  const kek = await deriveKek(passphrase, salt, ops, mem);
  const c = xchacha20poly1305(kek, nonce, wrapAd(keys.kid, keyring.appId, ops, mem, salt))
    .encrypt(keys.root);
  return {
    v: VERSION, kdf: KDF, ops, mem,
    salt: b64uEncode(salt), kid: b64uEncode(keys.kid), n: b64uEncode(nonce), c: b64uEncode(c),
  };
}

/** Recover a one-key Keyring for `appId` from a wrap record. */
export async function unwrap(record, passphrase, { appId }) {
  const parsed = parseRecord(record);
  checkParams(parsed.ops, parsed.mem);
  return openRecord(parsed, passphrase, appId);
}
