/**
 * Length hiding for document bodies. Same rule as Python's encryption_plugin/padding.py and the
 * "padding.rule" text in vectors/ep1.json:
 *
 *     n = len(body) + 1                       # the body plus the mandatory 0x80 marker
 *     if n <= 4096:  block = 256
 *     else:          E = floor(log2(n)); S = floor(log2(E)) + 1; block = 2 ** (E - S)
 *     padded = body ‖ 0x80 ‖ 0x00 * (ceil(n / block) * block - n)
 *
 * Below 4 KiB: multiples of 256 bytes. Above: Padmé lengths (at most ~12 % overhead, leaking
 * O(log log n) bits). Unpadding is strict: the result must re-pad to exactly the input.
 */

import { BadEnvelope } from './errors.js';

const BLOCK = 256;
const SMALL_LIMIT = 4096;

function floorLog2(n) {
  return Math.floor(Math.log2(n));
}

function blockFor(n) {
  if (n <= SMALL_LIMIT) return BLOCK;
  // Integer-exact: n is far below 2**53, and bit lengths are computed with clz32 when it fits.
  const e = n < 2 ** 31 ? 31 - Math.clz32(n) : floorLog2(n);
  const s = 32 - Math.clz32(e);
  return 2 ** (e - s);
}

export function paddedLength(bodyLength) {
  const n = bodyLength + 1;
  const block = blockFor(n);
  return Math.ceil(n / block) * block;
}

export function pad(body) {
  const out = new Uint8Array(paddedLength(body.length));
  out.set(body);
  out[body.length] = 0x80;
  return out;
}

export function unpad(padded) {
  if (!padded.length || padded.length % BLOCK) throw new BadEnvelope('bad padding');
  let i = padded.length - 1;
  const stop = Math.max(0, padded.length - blockFor(padded.length));
  while (i >= stop && padded[i] === 0) i--;
  if (i < stop || padded[i] !== 0x80) throw new BadEnvelope('bad padding');
  if (paddedLength(i) !== padded.length) throw new BadEnvelope('bad padding');
  return padded.subarray(0, i);
}
