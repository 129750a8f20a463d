"""Token verification: what a forger would try, refused; what auth signs, accepted."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import OKPAlgorithm

from flashbid_shared.tokens import InvalidToken, Principal, TokenVerifier

ISSUER, AUDIENCE = "flashbid-auth", "flashbid"
pytestmark = pytest.mark.anyio


class Keys:
    """A stand-in for auth's JWKS endpoint that counts how often it is asked."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.kid = "k1"
        self.published = [self.jwk()]
        self.fetches = 0
        self.down = False

    def jwk(self) -> dict[str, Any]:
        jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def rotate(self) -> None:
        """As auth does: sign with a new key, publish it beside the previous one."""
        self.private, self.kid = Ed25519PrivateKey.generate(), f"k{len(self.published) + 1}"
        self.published = [self.jwk(), self.published[0]]

    async def fetch(self) -> dict[str, Any]:
        self.fetches += 1
        if self.down:
            raise ConnectionError("auth is down")
        return {"keys": self.published}

    def sign(self, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "0b6f1f0e-3a43-4d0e-9f55-5b3d1d7c8c11",
            "role": "customer",
            "iat": now,
            "exp": now + 900,
            "jti": "j1",
            **overrides,
        }
        return jwt.encode(
            claims, self.private, algorithm="EdDSA", headers={"kid": self.kid, **(headers or {})}
        )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
def verifier(keys: Keys) -> TokenVerifier:
    return TokenVerifier(keys.fetch, issuer=ISSUER, audience=AUDIENCE, refetch_interval=60)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def refused(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_token_signed_by_auth_names_the_user_and_role(keys, verifier) -> None:
    principal = await verifier.verify(keys.sign(role="admin"))
    assert principal == Principal(subject="0b6f1f0e-3a43-4d0e-9f55-5b3d1d7c8c11", role="admin")
    assert principal.is_admin


async def test_alg_none_is_refused(keys, verifier) -> None:
    header = b64(json.dumps({"alg": "none", "kid": keys.kid, "typ": "JWT"}).encode())
    payload = b64(
        json.dumps(
            {
                "sub": "x",
                "role": "admin",
                "iss": ISSUER,
                "aud": AUDIENCE,
                "exp": int(time.time()) + 60,
            }
        ).encode()
    )
    await refused(verifier, f"{header}.{payload}.")


async def test_hmac_signed_with_the_public_key_is_refused(keys, verifier) -> None:
    public = keys.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    header = b64(json.dumps({"alg": "HS256", "kid": keys.kid}).encode())
    payload = b64(
        json.dumps(
            {
                "sub": "x",
                "role": "admin",
                "iss": ISSUER,
                "aud": AUDIENCE,
                "exp": int(time.time()) + 60,
                "iat": 0,
                "jti": "j",
            }
        ).encode()
    )
    for secret in (public, keys.jwk()["x"].encode()):
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        await refused(verifier, f"{header}.{payload}.{b64(signature)}")


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 60},
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"nbf": int(time.time()) + 3600},
        {"jti": None},
    ],
    ids=["expired", "wrong-aud", "wrong-iss", "not-yet-valid", "no-jti"],
)
async def test_claims_are_checked(keys, verifier, claims) -> None:
    overrides = {k: v for k, v in claims.items() if v is not None}
    token = keys.sign(**overrides)
    if "jti" in claims:  # remove the claim entirely
        now = int(time.time())
        token = jwt.encode(
            {
                "iss": ISSUER,
                "aud": AUDIENCE,
                "sub": "s",
                "role": "customer",
                "iat": now,
                "exp": now + 60,
            },
            keys.private,
            algorithm="EdDSA",
            headers={"kid": keys.kid},
        )
    await refused(verifier, token)


async def test_a_tampered_payload_is_refused(keys, verifier) -> None:
    header, payload, signature = keys.sign().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    await refused(verifier, f"{header}.{b64(json.dumps(claims).encode())}.{signature}")


async def test_a_key_auth_never_published_is_refused(keys, verifier) -> None:
    stranger = Keys()
    stranger.kid = keys.kid  # even under a kid we trust
    await refused(verifier, stranger.sign())
    await refused(verifier, keys.sign(headers={"kid": "unknown"}))


async def test_unknown_kids_do_not_hammer_auth(keys, verifier) -> None:
    for n in range(20):
        await refused(verifier, keys.sign(headers={"kid": f"forged-{n}"}))
    assert keys.fetches == 1


async def test_keys_stay_trusted_while_auth_is_down(keys, verifier) -> None:
    await verifier.verify(keys.sign())
    keys.down = True
    assert (await verifier.verify(keys.sign())).role == "customer"
    assert keys.fetches == 1


async def test_a_new_key_after_rotation_is_fetched(keys) -> None:
    verifier = TokenVerifier(keys.fetch, issuer=ISSUER, audience=AUDIENCE, refetch_interval=0)
    old_token = keys.sign()
    await verifier.verify(old_token)
    keys.rotate()
    await verifier.verify(keys.sign())
    await verifier.verify(old_token)


async def test_keys_loaded_as_a_replica_starts_serve_its_first_tokens(keys, verifier) -> None:
    keys.down = True
    with pytest.raises(ConnectionError):
        await verifier.load()
    keys.down = False
    await verifier.load()
    await verifier.verify(keys.sign())
    assert keys.fetches == 2  # the failed load and the good one; none for the token
