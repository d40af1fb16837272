// The shared known-answer vectors (../../vectors/ep1.json), checked from JavaScript.
// Python runs the same file (tests/unit/test_encryption_vectors.py).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { b64uDecode, b64uEncode, fromHex, toHex } from '../src/codec.js';
import {
  attachmentAd, attachmentIndex, docAd, encodeBody, openAttachment, openDoc, sealDoc,
} from '../src/envelope.js';
import * as errors from '../src/errors.js';
import { keyringFromExport, parseExport, exportBase32Of, exportOf } from '../src/exportkey.js';
import * as derivations from '../src/derivations.js';
import { idFor } from '../src/ids.js';
import { Keyring, deriveSubkey, fingerprintOf, keySetFromRoot } from '../src/keys.js';
import { pad, paddedLength, unpad } from '../src/padding.js';
import { _setRandomSource } from '../src/random.js';
import { deriveKek, openRecord, parseRecord, unwrap, wrapAd } from '../src/wrap.js';

const V = JSON.parse(readFileSync(new URL('../../vectors/ep1.json', import.meta.url), 'utf8'));
const ROOTS = Object.fromEntries(V.keys.map((k) => [k.name, fromHex(k.root)]));

function ring(appId, names) {
  const keyring = new Keyring(appId, ROOTS[names[0]]);
  for (const name of names.slice(1)) keyring.add(ROOTS[name]);
  return keyring;
}

async function withReplay(draws, fn) {
  const pending = draws.map(fromHex);
  const restore = _setRandomSource((n) => {
    assert.ok(pending.length, 'more random draws than the vector recorded');
    const out = pending.shift();
    assert.equal(out.length, n, 'random draws out of order');
    return out;
  });
  try {
    return await fn();
  } finally {
    restore();
    assert.equal(pending.length, 0, 'fewer random draws than the vector recorded');
  }
}

async function rejectsWith(promiseOrFn, name) {
  await assert.rejects(async () => (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn),
    (err) => {
      assert.ok(err instanceof errors.CryptoError, `expected a CryptoError, got ${err}`);
      assert.equal(err.name, name);
      assert.ok(err instanceof errors[name]);
      return true;
    });
}

describe('padding', () => {
  test('rule text is the same as in padding.js', () => {
    const src = readFileSync(new URL('../src/padding.js', import.meta.url), 'utf8');
    const rule = V.padding.rule.split('\n').find((l) => l.includes('E = floor(log2(n))')).trim();
    assert.ok(src.includes(rule));
  });
  for (const c of V.padding.positive) {
    test(`length ${c.body_length}`, () => {
      assert.equal(paddedLength(c.body_length), c.padded_length);
      if (c.body_length < 100000) {
        const body = new Uint8Array(c.body_length).fill(0x61);
        assert.deepEqual(unpad(pad(body)), body);
      }
    });
  }
  for (const c of V.padding.negative) {
    test(`negative ${c.name}`, () => assert.throws(() => unpad(fromHex(c.padded)), errors.BadEnvelope));
  }
});

describe('b64u', () => {
  for (const c of V.b64u.positive) {
    test(`positive ${JSON.stringify(c.text)}`, () => {
      assert.equal(toHex(b64uDecode(c.text)), c.hex);
      assert.equal(b64uEncode(fromHex(c.hex)), c.text);
    });
  }
  for (const c of V.b64u.negative) {
    test(`negative ${JSON.stringify(c.text)}`, () => assert.throws(() => b64uDecode(c.text), errors.BadEnvelope));
  }
});

describe('keys', () => {
  for (const c of V.keys) {
    test(c.name, () => {
      const root = fromHex(c.root);
      const keys = keySetFromRoot(root);
      assert.equal(toHex(keys.doc), c.k_doc);
      assert.equal(toHex(keys.att), c.k_att);
      assert.equal(toHex(keys.idmac), c.k_idmac);
      assert.equal(toHex(deriveSubkey(root, 4, 16)), c.kid16);
      assert.equal(toHex(keys.kid), c.kid);
      assert.equal(b64uEncode(keys.kid), c.kid_b64u);
      assert.equal(fingerprintOf(keys.kid), c.fingerprint);
      const keyring = new Keyring(c.app_id, root);
      assert.equal(exportOf(keyring), c.export);
      assert.equal(exportBase32Of(keyring), c.export_base32);
      assert.equal(keyring.fingerprint(), c.fingerprint);
    });
  }
});

describe('documents', () => {
  for (const c of V.documents) {
    test(`${c.name}: pieces`, () => {
      const keyring = ring(c.app_id, c.keys);
      const body = Object.fromEntries(Object.entries(c.doc).filter(([k]) => !k.startsWith('_')));
      if (c.attachments) {
        body.$att = Object.fromEntries(c.attachments.map((a) => [a.stored_name, {
          name: a.name, type: c.doc._attachments[a.name].content_type, length: a.plaintext.length / 2,
        }]));
      }
      assert.equal(toHex(encodeBody(body)), c.body);
      assert.equal(toHex(pad(fromHex(c.body))), c.padded);
      assert.equal(toHex(docAd(keyring.kid, c.app_id, c.doc._id)), c.ad);
      for (const a of c.attachments ?? []) {
        assert.equal(toHex(attachmentAd(keyring.kid, c.app_id, c.doc._id, a.stored_name)), a.ad);
        const plain = openAttachment(fromHex(a.blob), keyring,
          { docId: c.doc._id, storedName: a.stored_name, kid: keyring.kid });
        assert.equal(toHex(plain), a.plaintext);
      }
    });
    test(`${c.name}: seal reproduces the stored bytes`, async () => {
      const keyring = ring(c.app_id, c.keys);
      const stored = await withReplay(c.random, () => sealDoc(c.doc, keyring));
      assert.deepEqual(stored, c.stored);
    });
    test(`${c.name}: open`, async () => {
      const keyring = ring(c.app_id, [...c.keys].sort());
      assert.deepEqual(await openDoc(c.stored, keyring), c.doc);
    });
  }
  for (const c of V.attachment_stubs) {
    test(`${c.name}: open stubs`, async () => {
      const keyring = ring(c.app_id, c.keys);
      assert.deepEqual(await openDoc(c.stored, keyring), c.opened);
      const index = attachmentIndex(c.stored, keyring);
      assert.deepEqual([...index.keys()].sort(), Object.keys(c.opened._attachments).sort());
    });
  }
  for (const c of V.passthrough) {
    test(`passthrough ${c.name}`, async () => {
      const keyring = ring('notes', ['A']);
      assert.deepEqual(await sealDoc(c.doc, keyring), c.doc);
      if (c.name !== 'already-sealed') assert.deepEqual(await openDoc(c.doc, keyring), c.doc);
    });
  }
  for (const c of V.negative_documents) {
    test(`negative ${c.name} → ${c.error}`, async () => {
      await rejectsWith(() => openDoc(c.stored, ring(c.app_id, c.keys)), c.error);
    });
  }
});

describe('ids', () => {
  for (const c of V.ids) {
    test(c.name, () => assert.equal(idFor(c.natural_key, ring(c.app_id, c.keys)), c.id));
  }
});

const CALLS = {
  path_id: (a, k) => derivations.pathId(a.path, k),
  folder_id: (a, k) => derivations.folderId(a.path, k),
  version_id: (a, k) => derivations.versionId(a.of_doc, a.rev, k),
  chunk_id: (a, k) => derivations.chunkId(fromHex(a.piece), k),
  cutter_seed: (a, k) => derivations.cutterSeed(k),
};

describe('derivations', () => {
  for (const c of V.derivations.positive) {
    test(c.name, () => {
      const keyring = ring(c.app_id, c.keys);
      const value = CALLS[c.function](c.args, keyring);
      if (c.function === 'cutter_seed') {
        assert.equal(toHex(deriveSubkey(ROOTS[c.keys[0]], 5, 8)), c.subkey);
        assert.equal(value, BigInt(c.seed));
      } else {
        assert.equal(value, c.id);
        assert.equal(idFor(c.natural_key, keyring), c.id);
      }
    });
  }
  for (const c of V.derivations.negative) {
    test(`negative ${c.name}`, () => {
      assert.throws(() => CALLS[c.function](c.args, ring('notes', ['A'])), TypeError);
    });
  }
});

describe('exports', () => {
  for (const c of V.exports.positive) {
    test(c.name, () => {
      const parsed = parseExport(c.text);
      assert.equal(parsed.appId, c.app_id);
      assert.equal(toHex(parsed.root), c.root);
      assert.equal(keyringFromExport(c.text).appId, c.app_id);
    });
  }
  for (const c of V.exports.negative) {
    test(`negative ${c.name} → ${c.error}`, () => rejectsWith(() => keyringFromExport(c.text), c.error));
  }
});

describe('wraps', () => {
  for (const c of V.wraps.positive) {
    test(c.name, async () => {
      const salt = fromHex(c.salt);
      assert.equal(toHex(await deriveKek(c.passphrase, salt, c.ops, c.mem)), c.kek);
      const keys = keySetFromRoot(fromHex(c.root));
      assert.equal(toHex(wrapAd(keys.kid, c.app_id, c.ops, c.mem, salt)), c.ad);
      const opened = await openRecord(parseRecord(c.record), c.passphrase, c.app_id);
      assert.equal(toHex(opened.kid), toHex(keys.kid));
      if (c.unwrap === 'ok') {
        const keyring = await unwrap(c.record, c.passphrase, { appId: c.app_id });
        assert.equal(exportOf(keyring), exportOf(new Keyring(c.app_id, fromHex(c.root))));
      } else {
        await rejectsWith(() => unwrap(c.record, c.passphrase, { appId: c.app_id }), c.unwrap);
      }
    });
  }
  for (const c of V.wraps.negative) {
    test(`negative ${c.name} → ${c.error}`, () =>
      rejectsWith(() => unwrap(c.record, c.passphrase, { appId: c.app_id }), c.error));
  }
});
