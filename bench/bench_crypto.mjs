// Seal/open throughput of the ep1 envelope vs raw XChaCha20-Poly1305 on the same bytes (JS).
// Usage: node bench/bench_crypto.mjs [--json]   (needs `npm ci` in encryption_plugin/js)
// Bounded: ~0.4 s per measurement, well under 30 s in all.

import { xchacha20poly1305 } from '../encryption_plugin/js/node_modules/@noble/ciphers/chacha.js';
import { randomBytes } from '../encryption_plugin/js/node_modules/@noble/hashes/utils.js';
import { encodeBody } from '../encryption_plugin/js/src/envelope.js';
import { Keyring, openDoc, sealDoc } from '../encryption_plugin/js/src/index.js';

const BUDGET_MS = 400;

async function rate(fn) {
  for (let i = 0; i < 5; i++) await fn(); // warm-up
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < BUDGET_MS) {
    await fn();
    n += 1;
    elapsed = performance.now() - start;
  }
  return (n * 1000) / elapsed;
}

const keyring = Keyring.generate('bench');
const results = [];
for (const [label, size] of [['1 KB', 1024], ['64 KB', 64 * 1024]]) {
  const doc = { _id: 'bench-doc', text: 'x'.repeat(size - 20) };
  const body = encodeBody({ text: doc.text });
  const key = randomBytes(32);
  const nonce = randomBytes(24);
  const raw = xchacha20poly1305(key, nonce).encrypt(body);
  const sealed = await sealDoc(doc, keyring);
  const sealRate = await rate(() => sealDoc(doc, keyring));
  const rawSealRate = await rate(() => xchacha20poly1305(key, randomBytes(24)).encrypt(body));
  const openRate = await rate(() => openDoc(sealed, keyring));
  const rawOpenRate = await rate(() => xchacha20poly1305(key, nonce).decrypt(raw));
  results.push({ label, op: 'seal', ep1: sealRate, raw: rawSealRate });
  results.push({ label, op: 'open', ep1: openRate, raw: rawOpenRate });
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(results));
} else {
  console.log('JavaScript (@noble/ciphers)   ep1 ops/s     raw ops/s   ep1/raw');
  for (const r of results) {
    console.log(`${r.op} ${r.label.padEnd(6)} ${r.ep1.toFixed(0).padStart(22)} ` +
      `${r.raw.toFixed(0).padStart(13)} ${(r.ep1 / r.raw).toFixed(2).padStart(9)}`);
  }
}
