/**
 * `npm run build:share`: the share page's committed browser bundle in static/vendor/ (the ep1
 * plugin with a Markdown renderer and sanitizer) and its MANIFEST.json; the steps are
 * ../vendor_build.mjs, shared with the demo.
 */

import { build } from 'esbuild';

import { buildVendor } from '../vendor_build.mjs';

await buildVendor(build, import.meta.url, {
  entry: 'share-entry.js',
  bundle: 'couchgate-share.js',
  script: 'build:share',
});
