/**
 * Byte encodings shared by every part of ep1: strict base64url, base64, base32, hex, UTF-8 and
 * little-endian length framing. Decoding is strict (no padding, canonical trailing bits) so that
 * one value has exactly one spelling, as in the Python implementation.
 */

import { BadEnvelope } from './errors.js';

const B64U = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64U_RE = /^[A-Za-z0-9_-]*$/;
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
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64U[n >> 18] + B64U[(n >> 12) & 63] + B64U[(n >> 6) & 63] + B64U[n & 63];
  }
  if (bytes.length - i === 1) {
    const n = bytes[i] << 16;
    out += B64U[n >> 18] + B64U[(n >> 12) & 63];
  } else if (bytes.length - i === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += B64U[n >> 18] + B64U[(n >> 12) & 63] + B64U[(n >> 6) & 63];
  }
  return out;
}

/** Strict base64url: alphabet, no padding, canonical trailing bits; else BadEnvelope. */
export function b64uDecode(text, what = 'field') {
  if (typeof text !== 'string' || !B64U_RE.test(text) || text.length % 4 === 1) {
    throw new BadEnvelope(`${what} is not base64url`);
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const ch of text) {
    value = ((value << 6) | B64U.indexOf(ch)) & 0xffff;
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
