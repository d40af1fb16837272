// Bundle a browser entry of tests/js for the browser tests: node bundle.mjs <entry> <outfile>.
// esbuild resolves RxDB and Dexie from tests/js/node_modules and the plugin's @noble from
// encryption_plugin/js/node_modules.

import { build } from 'esbuild';

const [entry, outfile] = process.argv.slice(2);
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  // Argon2id (passphrase wraps) is imported lazily by the plugin and unused here.
  external: ['hash-wasm'],
  logLevel: 'warning',
});
