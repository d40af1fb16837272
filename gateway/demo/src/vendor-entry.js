/**
 * The one browser module the demo imports: the ep1 plugin (with @noble) and a QR code encoder.
 * Bundled by build.mjs into static/vendor/couchgate-ep1.js; PouchDB itself is its own classic
 * script (static/vendor/pouchdb.min.js, the global `PouchDB`).
 */

import encryption, {
  fingerprintOf, generateKey, keyringFromExport, localOptions,
} from '../../../encryption_plugin/js/src/index.js';
import qrcode from 'qrcode-generator';

export { encryption, fingerprintOf, generateKey, keyringFromExport, localOptions };

/** An SVG QR code of `text`, as markup (the caller puts it in the page). */
export function qrSvg(text, cellSize = 4) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  return qr.createSvgTag({ cellSize, margin: 2, scalable: true });
}
