"""Signing keys and token claims: pure functions over bytes and dicts, no I/O."""

import hashlib
import hmac
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

# RS256: verifying (every request, in every service) costs a quarter of Ed25519's here
# (22 µs against 94 µs); signing (once per login or refresh) costs more, 0.3 ms.
ALGORITHM = "RS256"
PrivateKey = RSAPrivateKey | Ed25519PrivateKey


class SigningKey:
    """One signing key: signs access tokens, and publishes its public half as a JWK. New keys
    are RSA-2048 (RS256); Ed25519 keys (EdDSA) made before still sign and verify."""

    def __init__(self, kid: str, private_key: PrivateKey) -> None:
        self.kid = kid
        self.private_key = private_key

    @property
    def algorithm(self) -> str:
        return "EdDSA" if isinstance(self.private_key, Ed25519PrivateKey) else "RS256"

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(uuid.uuid4().hex, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def public_jwk(self) -> dict[str, Any]:
        to_jwk = OKPAlgorithm.to_jwk if self.algorithm == "EdDSA" else RSAAlgorithm.to_jwk
        jwk = to_jwk(self.private_key.public_key(), as_dict=True)  # type: ignore[arg-type]
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def private_bytes(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm=self.algorithm, headers={"kid": self.kid}
        )


def _kek(secret: str) -> AESGCM:
    key = HKDF(SHA256(), 32, salt=None, info=b"flashbid signing keys").derive(secret.encode())
    return AESGCM(key)


def encrypt(secret: str, data: bytes, context: bytes) -> bytes:
    """AES-GCM under a key derived from the settings' secret; `context` binds it to its row."""
    nonce = os.urandom(12)
    return nonce + _kek(secret).encrypt(nonce, data, context)


def decrypt(secret: str, sealed: bytes, context: bytes) -> bytes:
    return _kek(secret).decrypt(sealed[:12], sealed[12:], context)


def seal(secret: str, key: SigningKey) -> bytes:
    return encrypt(secret, key.private_bytes(), key.kid.encode())


def unseal(secret: str, kid: str, sealed: bytes) -> SigningKey:
    raw = decrypt(secret, sealed, kid.encode())
    if len(raw) == 32:  # an Ed25519 key stored raw, before keys became PKCS#8
        return SigningKey(kid, Ed25519PrivateKey.from_private_bytes(raw))
    key = serialization.load_der_private_key(raw, password=None)
    assert isinstance(key, RSAPrivateKey | Ed25519PrivateKey)
    return SigningKey(kid, key)


def token_claims(
    *,
    subject: str,
    role: str,
    issuer: str,
    audience: str,
    ttl: int,
    now: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    return {
        **extra,
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": role,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=ttl),
        "jti": uuid.uuid4().hex,
    }


def secret_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of client secrets (digests first, so lengths do not leak)."""
    given_digest = hashlib.sha256(given.encode()).digest()
    expected_digest = hashlib.sha256(expected.encode()).digest()
    return bool(expected) and hmac.compare_digest(given_digest, expected_digest)
