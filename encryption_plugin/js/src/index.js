/**
 * @couchgate/encryption-plugin: the ep1 envelope for PouchDB (see docs/encryption-format.md).
 *
 *   PouchDB.plugin(encryption); await remote.useEncryption(exportString, { onError });
 *
 * Byte-compatible with the Python package encryption_plugin; both pass vectors/ep1.json.
 */

import plugin from './plugin.js';

export default plugin;
export { REMOTE_ATTACHMENTS, assertRandomRevs, localOptions } from './plugin.js';
export {
  attachmentIndex, isSealed, openAttachment, openDoc, sealAttachment, sealDoc,
} from './envelope.js';
export {
  exportBase32Of, exportOf, generateKey, keyringFromExport, parseExport,
} from './exportkey.js';
export { Keyring, fingerprintOf } from './keys.js';
export { idFor } from './ids.js';
export { chunkId, cutterSeed, folderId, pathId, versionId } from './derivations.js';
export { unwrap, wrap } from './wrap.js';
export {
  AuthenticationFailed, BadEnvelope, CryptoError, UnknownKey, UnknownSuite, WeakParameters,
} from './errors.js';
export { SealedFetch, sealedFetch } from './couchfetch.js';
export * from './signin.js';
