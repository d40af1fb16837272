/**
 * Key export for a second device (see encryption_plugin/export.py for the normative text):
 *
 *   chk  = BLAKE2b(digest 4, person "ep1-export", app_id ‖ 0x00 ‖ 0x01 ‖ K_root)
 *   text = "ep1k:" app_id ":" b64u(0x01 ‖ K_root ‖ chk)
 *   base32 form: upper-case RFC 4648 base32 (no padding) of app_id ‖ 0x00 ‖ 0x01 ‖ K_root ‖ chk,
 *   groups of four joined by "-"; read case-insensitively, spaces and "-" ignored.
 */

import { blake2b } from '@noble/hashes/blake2.js';

import { b32Decode, b32Encode, b64uDecode, b64uEncode, concat, equalBytes, utf8 } from './codec.js';
import { BadEnvelope, UnknownKey, UnknownSuite } from './errors.js';
import { KEY_BYTES, Keyring, checkAppId, pad16 } from './keys.js';

const PREFIX = 'ep1k:';
const VERSION = 0x01;
const CHECKSUM_BYTES = 4;
const PERSON = pad16(utf8('ep1-export'));

function checksum(appId, root) {
  return blake2b(concat(utf8(appId), Uint8Array.of(0, VERSION), root), {
    dkLen: CHECKSUM_BYTES,
    personalization: PERSON,
    salt: new Uint8Array(16),
  });
}

export function exportString(appId, root) {
  checkAppId(appId);
  return `${PREFIX}${appId}:${b64uEncode(concat(Uint8Array.of(VERSION), root, checksum(appId, root)))}`;
}

export function exportBase32(appId, root) {
  checkAppId(appId);
  const raw = concat(utf8(appId), Uint8Array.of(0, VERSION), root, checksum(appId, root));
  return b32Encode(raw).match(/.{1,4}/g).join('-');
}

function verify(appId, version, root, chk) {
  try {
    checkAppId(appId);
  } catch {
    throw new BadEnvelope('export: bad app id');
  }
  if (version !== VERSION) throw new UnknownSuite('export: unknown version');
  if (root.length !== KEY_BYTES) throw new BadEnvelope('export: wrong length');
  if (!equalBytes(chk, checksum(appId, root))) {
    throw new BadEnvelope('export: bad checksum (mistyped or damaged)');
  }
  return { appId, root };
}

/** Parse either form into {appId, root}, checking version and checksum. */
export function parseExport(text) {
  if (typeof text !== 'string') throw new BadEnvelope('export: not a string');
  text = text.trim();
  if (text.startsWith(PREFIX)) {
    const rest = text.slice(PREFIX.length);
    const colon = rest.indexOf(':');
    if (colon < 0) throw new BadEnvelope("export: missing ':'");
    const payload = b64uDecode(rest.slice(colon + 1), 'export');
    if (payload.length !== 1 + KEY_BYTES + CHECKSUM_BYTES) {
      if (payload.length && payload[0] !== VERSION) throw new UnknownSuite('export: unknown version');
      throw new BadEnvelope('export: wrong length');
    }
    return verify(rest.slice(0, colon), payload[0], payload.subarray(1, 1 + KEY_BYTES),
      payload.subarray(1 + KEY_BYTES));
  }
  if (text.slice(0, 4).toLowerCase() === 'ep1k' || text.includes(':')) {
    throw new UnknownSuite('export: unknown format');
  }
  const raw = b32Decode(text.replace(/[\s-]+/g, '').toUpperCase(), 'export');
  const zero = raw.indexOf(0);
  if (zero < 0 || raw.length - zero - 1 !== 1 + KEY_BYTES + CHECKSUM_BYTES) {
    throw new BadEnvelope('export: wrong length');
  }
  let appId;
  try {
    appId = new TextDecoder('ascii', { fatal: true }).decode(raw.subarray(0, zero));
  } catch {
    throw new BadEnvelope('export: bad app id');
  }
  const rest = raw.subarray(zero + 1);
  return verify(appId, rest[0], rest.subarray(1, 1 + KEY_BYTES), rest.subarray(1 + KEY_BYTES));
}

/** Import an export string (either form) as a Keyring; with `appId`, require that app. */
export function keyringFromExport(text, { appId } = {}) {
  const parsed = parseExport(text);
  if (appId !== undefined && parsed.appId !== appId) {
    throw new UnknownKey('the key was exported for another app');
  }
  return new Keyring(parsed.appId, parsed.root);
}

/** A new random app key as an `ep1k:` export string. */
export function generateKey(appId) {
  return exportOf(Keyring.generate(appId));
}

export function exportOf(keyring) {
  return exportString(keyring.appId, keyring.activeKeys().root);
}

export function exportBase32Of(keyring) {
  return exportBase32(keyring.appId, keyring.activeKeys().root);
}
