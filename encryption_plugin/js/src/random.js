/**
 * The single source of randomness (crypto.getRandomValues through @noble/hashes), with a
 * test-only seam so the vector tests can replay the draws recorded in ep1.json.
 */

import { randomBytes as cryptoRandomBytes } from '@noble/hashes/utils.js';

let source = cryptoRandomBytes;

export function randomBytes(n) {
  return source(n);
}

/** Test-only: draw from `replacement` until the returned function is called. */
export function _setRandomSource(replacement) {
  const saved = source;
  source = replacement;
  return () => {
    source = saved;
  };
}
