"""Services verify auth's tokens locally: genuine ones pass, forged ones are 401.

The forgeries are signed with auth's real private key (read from the test stack's database),
so each test isolates one check: expiry, audience, issuer, algorithm, key id, integrity.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import uuid

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from flashbid_auth.keys import SigningKey, token_claims
from tests_support import problem, signing_key

pytestmark = pytest.mark.stack
DASHBOARD = "/api/catalog/admin/dashboard"  # admin only: 401 forged, 403 not admin, 200 admin


@pytest.fixture(scope="module")
def auth_key(profile) -> SigningKey:
    return asyncio.run(signing_key(profile))


@pytest.fixture(scope="module")
def root(api) -> str:
    """The test stack's first admin's id: an admin token is one only for an admin auth knows."""
    return api.get("/api/auth/me", api.admin_token()).json()["id"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def admin_token(key: SigningKey, **overrides) -> str:
    claims = token_claims(
        subject=str(uuid.uuid4()),
        role="admin",
        issuer="flashbid-auth",
        audience="flashbid",
        ttl=300,
    )
    return key.sign({**claims, **overrides})


STORM_ROUTES = {  # well-formed requests: only the token is wrong
    "order": ("/api/purchase/orders", {"offer_id": str(uuid.uuid4()), "quantity": 1}),
    "ranked bid": (f"/api/bidding/sessions/{uuid.uuid4()}/bids", {"price": "60.00"}),
}


def call(gateway, token: str):
    return gateway.get(DASHBOARD, headers={"Authorization": f"Bearer {token}"})


def test_a_genuine_admin_token_is_accepted(gateway, auth_key, root) -> None:
    assert call(gateway, admin_token(auth_key, sub=root)).status_code == 200


def test_a_service_token_from_auth_is_verified_but_is_neither_admin_nor_buyer(gateway) -> None:
    grant = gateway.post(
        "/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "catalog",
            "client_secret": "dev-catalog-secret",
        },
    )
    assert grant.status_code == 200
    token = grant.json()["access_token"]
    response = call(gateway, token)
    assert (response.status_code, problem(response)["code"]) == (403, "forbidden")
    # the storm routes check the caller in a dependency rather than a guard: the same answer
    somewhere = uuid.uuid4()
    for path, body in (
        ("/api/purchase/orders", {"offer_id": str(somewhere), "quantity": 1}),
        (f"/api/bidding/sessions/{somewhere}/bids", {"price": "60.00"}),
        (f"/api/bidding/lots/{somewhere}/bids", {"amount": "60.00"}),
    ):
        refused = gateway.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert (refused.status_code, problem(refused)["code"]) == (403, "forbidden"), path


def test_a_wrong_client_secret_gets_no_token(gateway) -> None:
    response = gateway.post(
        "/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "catalog",
            "client_secret": "guess",
        },
    )
    assert (response.status_code, problem(response)["code"]) == (401, "invalid_client")


def forgeries(key: SigningKey) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": "flashbid-auth",
        "aud": "flashbid",
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iat": now,
        "exp": now + 300,
        "jti": "j",
    }
    unsigned = (
        f"{b64(json.dumps({'alg': 'none', 'kid': key.kid}).encode())}."
        f"{b64(json.dumps(claims).encode())}."
    )
    hs_head = b64(json.dumps({"alg": "HS256", "kid": key.kid, "typ": "JWT"}).encode())
    hs_body = b64(json.dumps(claims).encode())
    public_pem = key.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )  # the classic confusion: the public key's PEM as an HMAC secret
    hs_sig = hmac.new(public_pem, f"{hs_head}.{hs_body}".encode(), hashlib.sha256)
    header, payload, signature = admin_token(key, role="customer").split(".")
    raised = json.loads(base64.urlsafe_b64decode(payload + "=="))
    raised["role"] = "admin"
    stranger = SigningKey.generate()
    return {
        "alg-none": unsigned,
        "hmac-with-public-key": f"{hs_head}.{hs_body}.{b64(hs_sig.digest())}",
        "expired": admin_token(key, exp=now - 120, iat=now - 600, nbf=now - 600),
        "wrong-audience": admin_token(key, aud="another-platform"),
        "wrong-issuer": admin_token(key, iss="https://evil.example"),
        "unknown-kid": admin_token(stranger),
        "tampered-payload": f"{header}.{b64(json.dumps(raised).encode())}.{signature}",
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize(
    "forgery",
    [
        "alg-none",
        "hmac-with-public-key",
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "unknown-kid",
        "tampered-payload",
        "garbage",
    ],
)
@pytest.mark.parametrize("route", ["dashboard", "order", "ranked bid"])
def test_forged_tokens_are_refused(gateway, auth_key, forgery, route) -> None:
    token = forgeries(auth_key)[forgery]
    if route == "dashboard":
        response = call(gateway, token)
    else:  # the storm routes check tokens in their lanes (flashbid_shared.lanes)
        path, body = STORM_ROUTES[route]
        response = gateway.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert problem(response)["code"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


def test_tokens_survive_a_key_rotation(profile, gateway, auth_key, root) -> None:
    before = admin_token(auth_key, sub=root)
    assert call(gateway, before).status_code == 200
    env = {**os.environ, **profile.service_env("auth")}
    subprocess.run(
        [".venv/bin/python", "-m", "flashbid_auth", "rotate-keys"],
        env=env,
        check=True,
        capture_output=True,
        cwd=stack_root(),
    )
    new_key = asyncio.run(signing_key(profile))
    assert new_key.kid != auth_key.kid
    jwks = gateway.get("/api/auth/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks["keys"]] == [new_key.kid, auth_key.kid]
    after = admin_token(new_key, sub=root)
    deadline = time.monotonic() + 20  # verifiers refetch unknown kids at most every 10 s
    while call(gateway, after).status_code != 200:
        assert time.monotonic() < deadline, "a token signed with the new key was never accepted"
        time.sleep(0.2)
    assert call(gateway, before).status_code == 200


def stack_root():
    import stack

    return stack.ROOT
