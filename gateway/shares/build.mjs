/**
 * `npm run build:share`: write the share page's committed browser bundle to static/vendor/, plus
 * a MANIFEST.json of the sha256 of every input and output (tests/unit/test_share_vendor.py checks
 * it against the tree, so a source change without a rebuild fails the tests). The server never
 * needs Node.
 */

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const vendor = join(here, 'static', 'vendor');
const pluginSrc = join(root, 'encryption_plugin', 'js', 'src');

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
const rel = (path) => relative(root, path).split('\\').join('/');

mkdirSync(vendor, { recursive: true });
const out = join(vendor, 'couchgate-share.js');
await build({
  entryPoints: [join(here, 'src', 'share-entry.js')],
  outfile: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  legalComments: 'eof',
  external: ['hash-wasm'],
  logLevel: 'warning',
});

const inputs = [
  join(here, 'build.mjs'),
  join(here, 'package-lock.json'),
  join(here, 'src', 'share-entry.js'),
  join(root, 'encryption_plugin', 'js', 'package-lock.json'),
  ...readdirSync(pluginSrc).filter((f) => f.endsWith('.js')).sort().map((f) => join(pluginSrc, f)),
];
const manifest = {
  comment: 'written by `npm run build:share` in gateway/shares; checked by tests/unit/test_share_vendor.py',
  inputs: Object.fromEntries(inputs.map((p) => [rel(p), sha256(p)])),
  outputs: { [rel(out)]: sha256(out) },
};
writeFileSync(join(vendor, 'MANIFEST.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log('wrote', rel(out));
