/**
 * What each page's `build.mjs` does (gateway/demo, gateway/shares): bundle its entry module
 * into its committed static/vendor/, copy any ready-made files there, and write a MANIFEST.json
 * of the sha256 of every input and output. tests/unit/test_vendored_bundles.py checks each
 * manifest against the tree, so a source change without a rebuild fails the tests; the server
 * (and the wheel) never needs Node.
 *
 * esbuild comes from the caller: it is installed in each page's own node_modules, not here.
 */

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pluginSrc = join(root, 'encryption_plugin', 'js', 'src');

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
const rel = (path) => relative(root, path).split('\\').join('/');

/**
 * Build the page whose build script is `scriptUrl` (its `import.meta.url`): `entry` (in its
 * src/) bundled to `bundle`, and `copies` (paths in its node_modules) copied beside it, all in
 * its static/vendor/. `script` is the npm script that runs it, named in the manifest.
 */
export async function buildVendor(build, scriptUrl, { entry, bundle, copies = [], script }) {
  const here = dirname(fileURLToPath(scriptUrl));
  const vendor = join(here, 'static', 'vendor');
  mkdirSync(vendor, { recursive: true });
  const copied = copies.map((path) => {
    const target = join(vendor, path.split('/').at(-1));
    copyFileSync(join(here, 'node_modules', path), target);
    return target;
  });
  const out = join(vendor, bundle);
  await build({
    entryPoints: [join(here, 'src', entry)],
    outfile: out,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'eof',
    // hash-wasm (Argon2id, passphrase wraps only) is imported lazily by the plugin and unused by
    // the pages: keep it out of the bundle.
    external: ['hash-wasm'],
    logLevel: 'warning',
  });

  const inputs = [
    fileURLToPath(scriptUrl),
    fileURLToPath(import.meta.url),
    join(here, 'package-lock.json'),
    join(here, 'src', entry),
    join(root, 'encryption_plugin', 'js', 'package-lock.json'),
    ...readdirSync(pluginSrc).filter((f) => f.endsWith('.js')).sort().map((f) => join(pluginSrc, f)),
  ];
  const outputs = [out, ...copied];
  const manifest = {
    comment: `written by \`npm run ${script}\` in ${rel(here)}; checked by tests/unit/test_vendored_bundles.py`,
    inputs: Object.fromEntries(inputs.map((p) => [rel(p), sha256(p)])),
    outputs: Object.fromEntries(outputs.map((p) => [rel(p), sha256(p)])),
  };
  writeFileSync(join(vendor, 'MANIFEST.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log('wrote', outputs.map(rel).join(', '));
}
