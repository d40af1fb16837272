/**
 * `npm run build:demo`: write the demo's committed browser files to static/vendor/, plus a
 * MANIFEST.json of the sha256 of every input and output. tests/unit/test_demo_vendor.py checks
 * the manifest against the tree, so a source change without a rebuild fails the tests; the
 * server (and the wheel) never needs Node.
 */

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
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
copyFileSync(join(here, 'node_modules', 'pouchdb', 'dist', 'pouchdb.min.js'),
  join(vendor, 'pouchdb.min.js'));
await build({
  entryPoints: [join(here, 'src', 'vendor-entry.js')],
  outfile: join(vendor, 'couchgate-ep1.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  legalComments: 'eof',
  // hash-wasm (Argon2id, passphrase wraps only) is imported lazily by the plugin and unused by
  // the demo: keep it out of the bundle.
  external: ['hash-wasm'],
  logLevel: 'warning',
});

const inputs = [
  join(here, 'build.mjs'),
  join(here, 'package-lock.json'),
  join(here, 'src', 'vendor-entry.js'),
  join(root, 'encryption_plugin', 'js', 'package-lock.json'),
  ...readdirSync(pluginSrc).filter((f) => f.endsWith('.js')).sort().map((f) => join(pluginSrc, f)),
];
const outputs = [join(vendor, 'couchgate-ep1.js'), join(vendor, 'pouchdb.min.js')];
const manifest = {
  comment: 'written by `npm run build:demo` in gateway/demo; checked by tests/unit/test_demo_vendor.py',
  inputs: Object.fromEntries(inputs.map((p) => [rel(p), sha256(p)])),
  outputs: Object.fromEntries(outputs.map((p) => [rel(p), sha256(p)])),
};
writeFileSync(join(vendor, 'MANIFEST.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log('wrote', outputs.map(rel).join(', '));
