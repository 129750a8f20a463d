import jwt
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from flashbid_auth.keys import (
    SigningKey,
    encrypt,
    seal,
    secret_matches,
    token_claims,
    unseal,
)


def test_a_sealed_key_opens_only_with_the_same_secret_and_kid() -> None:
    key = SigningKey.generate()
    sealed = seal("s3cret", key)
    assert key.private_bytes() not in sealed
    assert unseal("s3cret", key.kid, sealed).private_bytes() == key.private_bytes()
    with pytest.raises(InvalidTag):
        unseal("another", key.kid, sealed)
    with pytest.raises(InvalidTag):
        unseal("s3cret", "another-kid", sealed)  # a sealed key cannot be moved to another row


def test_an_ed25519_key_sealed_raw_before_rs256_still_opens() -> None:
    raw = LEGACY.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    opened = unseal("s3cret", "legacy", encrypt("s3cret", raw, b"legacy"))
    assert opened.algorithm == "EdDSA" and opened.private_bytes() == LEGACY.private_bytes()


LEGACY = SigningKey("legacy", Ed25519PrivateKey.generate())  # keys made before RS256


@pytest.mark.parametrize(
    ("key", "algorithm"), [(SigningKey.generate(), "RS256"), (LEGACY, "EdDSA")]
)
def test_tokens_carry_every_claim_and_verify_with_the_published_key(key, algorithm) -> None:
    claims = token_claims(subject="catalog", role="service", issuer="i", audience="a", ttl=60)
    token = key.sign(claims)
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "kid": key.kid, "typ": "JWT"}
    public = jwt.PyJWK(key.public_jwk())
    decoded = jwt.decode(token, public.key, algorithms=[algorithm], audience="a", issuer="i")
    assert {"iss", "aud", "sub", "role", "iat", "nbf", "exp", "jti"} <= decoded.keys()
    assert decoded["exp"] - decoded["iat"] == 60


def test_client_secrets_compare_exactly() -> None:
    assert secret_matches("abc", "abc")
    assert not secret_matches("abd", "abc")
    assert not secret_matches("", "")  # an unset secret never matches
