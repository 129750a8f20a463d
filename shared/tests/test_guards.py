"""The guards: admin routes and writes act on the caller as the directory has them now, not as
their token says; reads go by the token."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from litestar import Litestar, get, post
from litestar.testing import TestClient

from flashbid_shared.app import service_app
from flashbid_shared.contracts import UserSummary
from flashbid_shared.settings import ServiceSettings
from flashbid_shared.tokens import Principal, admin_required, user_required

KEY = Ed25519PrivateKey.generate()
JWK = {**OKPAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "alg": "EdDSA"}


class Directory:
    """Users as auth has them now (absent: auth does not answer); which asks were strict."""

    def __init__(self) -> None:
        self.users: dict[UUID, UserSummary] = {}
        self.strict: list[bool] = []

    async def get(self, user_id: UUID, *, strict: bool = False) -> UserSummary | None:
        self.strict.append(strict)
        return self.users.get(user_id)

    def set(self, user_id: UUID, role: str = "customer", active: bool = True) -> None:
        self.users[user_id] = UserSummary(
            id=user_id, display_name="Ada", weight=1.0, email_verified=True, is_active=active,
            role=role,
        )  # fmt: skip


@get("/admin", guards=[admin_required])
async def admin_route() -> dict[str, str]:
    return {"done": "yes"}


@post("/write", guards=[user_required], status_code=200)
async def write(principal: Principal) -> dict[str, Any]:
    return {"role": principal.role, "verified": principal.email_verified}


@get("/read", guards=[user_required])
async def read() -> str:
    return "read"


def client(directory: Directory) -> TestClient:
    async def jwks(_: Litestar) -> dict[str, Any]:
        return {"keys": [JWK]}

    @asynccontextmanager
    async def users(app: Litestar) -> AsyncIterator[None]:
        app.state.users = directory
        yield

    app = service_app(
        "demo", ServiceSettings(), routes=[admin_route, write, read], lifespan=[users], jwks=jwks
    )
    return TestClient(app)


def token(user_id: UUID, role: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": "flashbid-auth", "aud": "flashbid", "sub": str(user_id), "role": role,
              "iat": now, "exp": now + 900, "jti": "j1"}  # fmt: skip
    signed = jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": "k1"})
    return {"Authorization": f"Bearer {signed}"}


@pytest.fixture
def directory() -> Directory:
    return Directory()


def answer(response) -> tuple[int, str]:
    return response.status_code, response.json().get("code", "")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ({"role": "admin"}, (200, "")),
        ({"role": "customer"}, (403, "forbidden")),  # demoted
        ({"role": "admin", "active": False}, (403, "not_allowed")),  # deactivated
        (None, (503, "unavailable")),  # auth cannot say: admin power is refused
    ],
)
def test_an_admin_token_acts_as_auth_has_its_user_now(directory, now, expected) -> None:
    user = uuid4()
    if now is not None:
        directory.set(user, **now)
    with client(directory) as c:
        assert answer(c.get("/api/demo/admin", headers=token(user, "admin"))) == expected
    assert directory.strict == [True]


def test_a_promotion_waits_for_the_next_token(directory) -> None:
    user = uuid4()
    directory.set(user, role="admin")
    with client(directory) as c:
        refused = c.get("/api/demo/admin", headers=token(user, "customer"))
        assert answer(refused) == (403, "forbidden")
        assert c.post("/api/demo/write", headers=token(user, "customer")).json()["role"] == (
            "customer"
        )


def test_a_write_gets_the_caller_as_now_and_a_deactivated_one_only_reads(directory) -> None:
    demoted, gone, unknown = uuid4(), uuid4(), uuid4()
    directory.set(demoted, role="customer")
    directory.set(gone, active=False)
    with client(directory) as c:
        mine = c.post("/api/demo/write", headers=token(demoted, "admin")).json()
        assert mine == {"role": "customer", "verified": True}  # verified since the token
        refused = c.post("/api/demo/write", headers=token(gone, "customer"))
        assert answer(refused) == (403, "not_allowed")
        assert refused.json()["reason"] == "deactivated"
        assert c.get("/api/demo/read", headers=token(gone, "customer")).status_code == 200
        # auth cannot say: a customer's write goes on, as their orders and bids do
        assert c.post("/api/demo/write", headers=token(unknown, "customer")).status_code == 200
