/**
 * `npm run build:demo`: the demo's committed browser files in static/vendor/ (the ep1 plugin
 * with a QR encoder, bundled; PouchDB's own build, copied) and their MANIFEST.json; the steps
 * are ../vendor_build.mjs, shared with the share page.
 */

import { build } from 'esbuild';

import { buildVendor } from '../vendor_build.mjs';

await buildVendor(build, import.meta.url, {
  entry: 'vendor-entry.js',
  bundle: 'couchgate-ep1.js',
  copies: ['pouchdb/dist/pouchdb.min.js'],
  script: 'build:demo',
});
