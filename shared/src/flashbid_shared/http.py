"""Clients for calls between services: timeouts, request ids and service tokens."""

import asyncio
import time
from collections.abc import AsyncGenerator

import httpx
import msgspec

from flashbid_shared.contracts import TokenGrant
from flashbid_shared.observability import request_id


class ServiceTokens:
    """OAuth2 client-credentials against auth; the token is reused until shortly before expiry."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        margin: float = 30.0,
    ) -> None:
        self._http, self._url = http, token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._margin = margin
        self._token = ""
        self._good_until = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if time.monotonic() < self._good_until:
            return self._token
        async with self._lock:
            if time.monotonic() >= self._good_until:
                response = await self._http.post(self._url, data=self._form)
                response.raise_for_status()
                grant = msgspec.json.decode(response.content, type=TokenGrant)
                self._token = grant.access_token
                lifetime = grant.expires_in - min(self._margin, grant.expires_in / 2)
                self._good_until = time.monotonic() + lifetime
        return self._token

    def forget(self) -> None:
        self._good_until = 0.0


class ServiceAuth(httpx.Auth):
    def __init__(self, tokens: ServiceTokens) -> None:
        self.tokens = tokens

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.tokens.token()}"
        response = yield request
        if response.status_code == 401:  # rotated keys or a restarted auth: one fresh try
            self.tokens.forget()
            request.headers["Authorization"] = f"Bearer {await self.tokens.token()}"
            yield request


async def _forward_request_id(request: httpx.Request) -> None:
    if rid := request_id.get():
        request.headers.setdefault("X-Request-ID", rid)


def service_client(
    base_url: str = "",
    *,
    tokens: ServiceTokens | None = None,
    timeout: float = 3.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        auth=ServiceAuth(tokens) if tokens else None,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 1.0)),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        event_hooks={"request": [_forward_request_id]},
        transport=transport,
    )
