/**
 * The one error tree of the plugin, mirroring Python's encryption_plugin.errors.
 * Messages name what failed and never contain keys, plaintext or passphrases.
 */

export class CryptoError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** Not well-formed: wrong shape, bad base64url, bad padding, bad checksum. */
export class BadEnvelope extends CryptoError {}

/** A format version this code does not speak. */
export class UnknownSuite extends CryptoError {}

/** Sealed with a key id that is not in the keyring. */
export class UnknownKey extends CryptoError {}

/** The AEAD tag did not verify, or an unwrapped key does not match its kid. */
export class AuthenticationFailed extends CryptoError {}

/** A wrap record asks for Argon2id parameters below the ep1 minimum. */
export class WeakParameters extends CryptoError {}
