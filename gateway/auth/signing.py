"""The keys of the handshake, all derived once from the configured secrets."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from gateway.auth import tokens
from gateway.auth.records.challenges import CHALLENGE_TTL_S
from gateway.config import Settings


@dataclass(frozen=True, slots=True)
class AuthKeys:
    pepper: bytes
    """Key of the email HMAC; must stay the same for the life of the records."""
    code_key: bytes
    challenges: URLSafeTimedSerializer

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthKeys:
        pepper = (
            settings.email_pepper.encode()
            if settings.email_pepper
            else tokens.derive_key(settings.secret_keys[-1], "email-pepper")
        )
        # itsdangerous signs with the last key and verifies with all: ours are newest first.
        signer = URLSafeTimedSerializer(
            list(reversed(settings.secret_keys)), salt="couchgate.challenge"
        )
        return cls(pepper, tokens.derive_key(pepper.hex(), "email-code"), signer)

    def email_hmac(self, email: str) -> str:
        return tokens.email_hmac(self.pepper, email)

    def sign_challenge(self, challenge_id: str) -> str:
        return str(self.challenges.dumps(challenge_id))

    def open_challenge(self, challenge: str) -> str | None:
        try:
            value = self.challenges.loads(challenge, max_age=CHALLENGE_TTL_S)
        except BadSignature:  # SignatureExpired is a subclass
            return None
        return value if isinstance(value, str) else None

    def server_uuid(self, uid: str) -> str:
        """The ``uuid`` of ``GET /db/``: PouchDB builds replication ids from it, so it must be
        the same on every replica and different for every user."""
        return tokens.email_code_hash(self.pepper, "server-uuid", uid)[:32]

    def code_hash(self, challenge_id: str, code: str) -> str:
        return tokens.email_code_hash(self.code_key, challenge_id, code)
