"""Service-to-service calls: one token reused until near expiry, request ids passed on."""

import httpx
import pytest

from flashbid_shared.http import ServiceTokens, service_client
from flashbid_shared.observability import request_id

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeAuth:
    """Auth's token endpoint plus a protected peer route that rejects the first token."""

    def __init__(self, expires_in: int = 900, reject_first: bool = False) -> None:
        self.grants = 0
        self.expires_in = expires_in
        self.reject_first = reject_first
        self.seen: list[dict[str, str]] = []  # headers as each call arrived

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/auth/token":
            self.grants += 1
            assert b"grant_type=client_credentials" in request.content
            return httpx.Response(
                200, json={"access_token": f"t{self.grants}", "expires_in": self.expires_in}
            )
        self.seen.append(dict(request.headers))
        if self.reject_first and request.headers["authorization"] == "Bearer t1":
            return httpx.Response(401)
        return httpx.Response(200, json={"ok": True})


def peer(fake: FakeAuth) -> httpx.AsyncClient:
    transport = httpx.MockTransport(fake)
    token_http = httpx.AsyncClient(transport=transport, base_url="http://auth")
    tokens = ServiceTokens(token_http, "http://auth/api/auth/token", "catalog", "s3cret")
    return service_client("http://purchase", tokens=tokens, transport=transport)


async def test_one_token_serves_many_calls() -> None:
    fake = FakeAuth()
    async with peer(fake) as client:
        for _ in range(5):
            assert (await client.get("/internal/x")).status_code == 200
    assert fake.grants == 1
    assert {h["authorization"] for h in fake.seen} == {"Bearer t1"}


async def test_a_token_close_to_expiry_is_renewed() -> None:
    fake = FakeAuth(expires_in=0)  # already at its end: renewed on every call
    async with peer(fake) as client:
        await client.get("/internal/x")
        await client.get("/internal/x")
    assert fake.grants == 2


async def test_a_rejected_token_is_renewed_once() -> None:
    fake = FakeAuth(reject_first=True)
    async with peer(fake) as client:
        response = await client.get("/internal/x")
    assert response.status_code == 200
    assert [h["authorization"] for h in fake.seen] == ["Bearer t1", "Bearer t2"]


async def test_the_request_id_travels_onward() -> None:
    fake = FakeAuth()
    token = request_id.set("req-42")
    try:
        async with peer(fake) as client:
            await client.get("/internal/x")
    finally:
        request_id.reset(token)
    assert fake.seen[0]["x-request-id"] == "req-42"
