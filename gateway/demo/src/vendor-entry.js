/**
 * The one browser module the demo imports: the ep1 plugin (with @noble), its sign-in and pairing
 * calls, and a QR code encoder.
 * Bundled by build.mjs into static/vendor/couchgate-ep1.js; PouchDB itself is its own classic
 * script (static/vendor/pouchdb.min.js, the global `PouchDB`).
 */

import encryption, {
  GatewayError, REMOTE_ATTACHMENTS, enroll, fingerprintOf, gatewayApi, generateKey,
  keyringFromExport, linkCode, localOptions, pairingLink, parsePairing, redeemEmailCode,
  redeemLink, requestEmailCode,
} from '../../../encryption_plugin/js/src/index.js';
import qrcode from 'qrcode-generator';

export {
  GatewayError, REMOTE_ATTACHMENTS, encryption, enroll, fingerprintOf, gatewayApi, generateKey,
  keyringFromExport, linkCode, localOptions, pairingLink, parsePairing, redeemEmailCode,
  redeemLink, requestEmailCode,
};

/** An SVG QR code of `text`, as markup (the caller puts it in the page). */
export function qrSvg(text, cellSize = 4) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  return qr.createSvgTag({ cellSize, margin: 2, scalable: true });
}
