"""Signatures on gate reports, for teams that must prove who approved what.

Two schemes, both over the exact bytes of ``report.json``:

* ``hmac-sha256`` — a shared secret (``LOOPWATCH_GATE_SIGNING_KEY``); whoever can verify can
  also sign, so it proves the report was not altered by anyone without the secret.
* ``ed25519`` — a private key in a PEM file (``LOOPWATCH_GATE_SIGNING_KEY_FILE``) signs, and the
  public key (``LOOPWATCH_GATE_VERIFY_KEY_FILE``, or derived from the private key) verifies, so
  auditors can check reports without being able to make them (RFC 8032, via ``cryptography``).

The signature lives next to the report in ``signature.json`` with the scheme and a key id (the
first 16 hex digits of the sha256 of the secret or of the raw public key), so ``report.json``
stays byte-identical whether or not it was signed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

if TYPE_CHECKING:
    from monitor.settings import Settings

Scheme = Literal["hmac-sha256", "ed25519"]


@dataclass(frozen=True)
class Signature:
    scheme: Scheme
    key_id: str
    signature: str  # hex

    def to_dict(self) -> dict[str, str]:
        return {"scheme": self.scheme, "key_id": self.key_id, "signature": self.signature}


@dataclass(frozen=True)
class SigningKeys:
    """What this installation can sign and verify with (any may be absent)."""

    secret: bytes | None = None
    private_key_file: Path | None = None
    public_key_file: Path | None = None

    def _private(self) -> Ed25519PrivateKey | None:
        if self.private_key_file is None:
            return None
        key = serialization.load_pem_private_key(self.private_key_file.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{self.private_key_file} is not an Ed25519 private key")
        return key

    def _public(self) -> Ed25519PublicKey | None:
        if self.public_key_file is not None:
            key = serialization.load_pem_public_key(self.public_key_file.read_bytes())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"{self.public_key_file} is not an Ed25519 public key")
            return key
        private = self._private()
        return private.public_key() if private else None

    @property
    def can_sign(self) -> bool:
        return self.secret is not None or self.private_key_file is not None

    def sign(self, payload: bytes) -> Signature | None:
        """Ed25519 when a private key is configured, else HMAC with the secret, else ``None``."""
        private = self._private()
        if private is not None:
            raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return Signature("ed25519", _key_id(raw), private.sign(payload).hex())
        if self.secret is not None:
            digest = hmac.new(self.secret, payload, hashlib.sha256).hexdigest()
            return Signature("hmac-sha256", _key_id(self.secret), digest)
        return None

    def verify(self, payload: bytes, signature: Signature) -> str | None:
        """``None`` if the signature is good, else why not (including "no key to check it")."""
        if signature.scheme == "hmac-sha256":
            if self.secret is None:
                return "signed with a shared secret, but LOOPWATCH_GATE_SIGNING_KEY is not set here"
            if signature.key_id != _key_id(self.secret):
                return f"signed with another key (key id {signature.key_id})"
            expected = hmac.new(self.secret, payload, hashlib.sha256).hexdigest()
            return None if hmac.compare_digest(expected, signature.signature) else "the signature does not match"
        if signature.scheme == "ed25519":
            public = self._public()
            if public is None:
                return "signed with Ed25519, but no LOOPWATCH_GATE_VERIFY_KEY_FILE (or signing key) is set here"
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            if signature.key_id != _key_id(raw):
                return f"signed with another key (key id {signature.key_id})"
            try:
                public.verify(bytes.fromhex(signature.signature), payload)
            except (InvalidSignature, ValueError):
                return "the signature does not match"
            return None
        return f"unknown signature scheme {signature.scheme!r}"


def keys_from_settings(settings: Settings) -> SigningKeys:
    """The keys configured for this installation (an empty secret means none)."""
    secret = settings.gate_signing_key.get_secret_value() if settings.gate_signing_key else ""
    return SigningKeys(secret.encode() or None, settings.gate_signing_key_file, settings.gate_verify_key_file)


def _key_id(material: bytes) -> str:
    return hashlib.sha256(material).hexdigest()[:16]
