/**
 * Byte encodings shared by every part of ep1: strict base64url, base64, base32, hex, UTF-8 and
 * little-endian length framing. Decoding is strict (no padding, canonical trailing bits) so that
 * one value has exactly one spelling, as in the Python implementation.
 */

import { BadEnvelope } from './errors.js';

const B64U = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64U_RE = /^[A-Za-z0-9_-]*$/;
// Lookup tables, made once: every sealed document's ciphertext goes through these, and a search
// of the alphabet per character was most of what opening a pulled document cost.
// B64U_VALUE[charCode] is the character's 6 bits (only read after B64U_RE has passed).
const B64U_VALUE = new Uint8Array(128);
for (let i = 0; i < B64U.length; i++) B64U_VALUE[B64U.charCodeAt(i)] = i;
// B64U_CODE[6 bits] is the character's code; an encoding is written as codes and decoded once.
const B64U_CODE = Uint8Array.from(B64U, (ch) => ch.charCodeAt(0));
const asciiDecoder = new TextDecoder('latin1');
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8(text) {
  return utf8Encoder.encode(text);
}

/** Strict UTF-8 decoding; throws BadEnvelope on malformed input. */
export function fromUtf8(bytes, what = 'text') {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new BadEnvelope(`${what} is not UTF-8`);
  }
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function u32(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

export function u64(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

/** u32(len(bytes)) ‖ bytes */
export function u32Framed(bytes) {
  return concat(u32(bytes.length), bytes);
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function fromHex(hex) {
  if (hex.length % 2 || !/^[0-9a-f]*$/i.test(hex)) throw new TypeError('not hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function b64uEncode(bytes) {
  const out = new Uint8Array(Math.ceil((bytes.length * 4) / 3));
  let at = 0;
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[at++] = B64U_CODE[n >> 18];
    out[at++] = B64U_CODE[(n >> 12) & 63];
    out[at++] = B64U_CODE[(n >> 6) & 63];
    out[at++] = B64U_CODE[n & 63];
  }
  if (bytes.length - i === 1) {
    out[at++] = B64U_CODE[bytes[i] >> 2];
    out[at++] = B64U_CODE[(bytes[i] & 3) << 4];
  } else if (bytes.length - i === 2) {
    const n = (bytes[i] << 8) | bytes[i + 1];
    out[at++] = B64U_CODE[n >> 10];
    out[at++] = B64U_CODE[(n >> 4) & 63];
    out[at++] = B64U_CODE[(n & 15) << 2];
  }
  return asciiDecoder.decode(out);
}

/** Strict base64url: alphabet, no padding, canonical trailing bits; else BadEnvelope. */
export function b64uDecode(text, what = 'field') {
  if (typeof text !== 'string' || !B64U_RE.test(text) || text.length % 4 === 1) {
    throw new BadEnvelope(`${what} is not base64url`);
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  const whole = text.length - (text.length % 4);
  let at = 0;
  let i = 0;
  for (; i < whole; i += 4) {
    const n = (B64U_VALUE[text.charCodeAt(i)] << 18) | (B64U_VALUE[text.charCodeAt(i + 1)] << 12) |
      (B64U_VALUE[text.charCodeAt(i + 2)] << 6) | B64U_VALUE[text.charCodeAt(i + 3)];
    out[at++] = n >> 16;
    out[at++] = (n >> 8) & 0xff;
    out[at++] = n & 0xff;
  }
  // The last 2 or 3 characters carry 1 or 2 bytes; the bits left over must be zero.
  let value = 0;
  let bits = 0;
  for (; i < text.length; i++) {
    value = (value << 6) | B64U_VALUE[text.charCodeAt(i)];
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  if (value & ((1 << bits) - 1)) throw new BadEnvelope(`${what} is not canonical base64url`);
  return out;
}

/** Standard base64 (CouchDB's attachment encoding), strict. */
export function b64Encode(bytes) {
  return b64uEncode(bytes).replaceAll('-', '+').replaceAll('_', '/') +
    '='.repeat((3 - (bytes.length % 3)) % 3);
}

export function b64Decode(text, what = 'data') {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    throw new BadEnvelope(`${what} is not base64`);
  }
  const bare = text.replace(/=+$/, '');
  return b64uDecode(bare.replaceAll('+', '-').replaceAll('/', '_'), what);
}

/** RFC 4648 base32, upper case, no padding. */
export function b32Encode(bytes) {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += B32[(value >> bits) & 31];
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/** Strict base32 (upper case, no padding, canonical trailing bits); else BadEnvelope. */
export function b32Decode(text, what = 'base32') {
  if (!/^[A-Z2-7]*$/.test(text) || [1, 3, 6].includes(text.length % 8)) {
    throw new BadEnvelope(`${what}: not base32`);
  }
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const ch of text) {
    value = ((value << 5) | B32.indexOf(ch)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  if (value & ((1 << bits) - 1)) throw new BadEnvelope(`${what}: not canonical base32`);
  return out;
}
