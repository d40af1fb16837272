/**
 * Ids for natural keys: "h" + b64u(BLAKE2b-128(key = K_idmac, u32‖app_id ‖ NFC(natural_key))).
 * Depends on the key: after a rotation pass `kid` to compute old ids.
 */

import { blake2b } from '@noble/hashes/blake2.js';

import { b64uEncode, concat, u32Framed, utf8 } from './codec.js';

export function idFor(naturalKey, keyring, { kid } = {}) {
  const keys = kid === undefined ? keyring.activeKeys() : keyring.keysFor(kid);
  const message = concat(u32Framed(utf8(keyring.appId)), utf8(naturalKey.normalize('NFC')));
  return 'h' + b64uEncode(blake2b(message, { dkLen: 16, key: keys.idmac }));
}
