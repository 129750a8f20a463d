"""Lanes: the routes a storm hammers (a flash sale's order, a bid) served straight from ASGI.

In a storm nearly every request is plain: a signed-in user's token, a well-formed body, and an
answer, most often a refusal, that one function of the service gives. What Litestar does around
such a request (routing, middleware, the request object, parameters, dependencies, the response
object) was a third of purchase's CPU per order: in one flash-sale storm (`just bench`, two
purchase replicas side by side, one of them with a lane) an order request took 170 us of CPU in
the lane and 258 us through Litestar.

A lane takes a request only when all of it is valid as its route would see it: the method and
path, a signed-in user's verified bearer token, a body that decodes strictly to the route's
struct, a well-formed `Idempotency-Key` if the route takes one. Anything else goes on to
Litestar, where the route is declared as usual (and described in the OpenAPI document) and calls
the same function, so its answers, validation errors included, are the route's own. That
function is `serve(state, principal, data, **params) -> (content, status, headers)`; a
`DomainError` it raises is answered from the error table, anything else by the app's handlers.
"""

import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from litestar import Litestar, Request, Response
from litestar.connection import ASGIConnection
from litestar.serialization import encode_json
from litestar.types import Message, Receive, Scope, Send

from flashbid_shared import inputs
from flashbid_shared.errors import (
    PROBLEM_JSON,
    DomainError,
    ErrorTable,
    nearest,
    problem_parts,
)
from flashbid_shared.observability import bind_request_id, request_id
from flashbid_shared.params import IDEMPOTENCY_KEY
from flashbid_shared.tokens import ROLES_USER, Principal, bearer

Answer = tuple[Any, int, Mapping[str, str]]  # content, status, headers
MAX_BODY = 64 * 1024  # a larger body goes to Litestar (an order or a bid is under 200 bytes)
SERVER_SEND = "flashbid.server_send"  # in a WebSocket's scope: the server's own `send`


class Lane(NamedTuple):
    method: str
    path: str  # as the route declares it, under the service's prefix: "/lots/{lot_id:uuid}/bids"
    body: type[msgspec.Struct]
    serve: Callable[..., Awaitable[Answer]]
    idempotent: bool = False  # takes an `Idempotency-Key`, passed as `idempotency_key`


def server_send(connection: ASGIConnection) -> Send:
    """The server's own `send` of a WebSocket (kept by `Lanes`, in front of an app with lanes),
    else the connection's: Litestar's middleware wraps it in a coroutine per message, which a
    push to thousands of watchers pays for every frame."""
    return connection.scope.get(SERVER_SEND, connection.send)  # type: ignore[return-value]


def respond(answer: Answer) -> Response[Any]:
    """A lane's answer as its Litestar route returns it."""
    content, status, headers = answer
    return Response(content, status_code=status, headers=dict(headers))


class Lanes:
    """An app's ASGI handler with its lanes in front of it (and the server's own `send` kept in
    each WebSocket's scope, see `server_send`)."""

    def __init__(self, app: Litestar, prefix: str, lanes: Sequence[Lane], errors: ErrorTable):
        self.app, self.litestar, self.errors = app, app.asgi_handler, errors
        self.lanes = [(lane, _pattern(prefix + lane.path)) for lane in lanes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for lane, pattern in self.lanes:
                if scope["method"] == lane.method and (match := pattern.fullmatch(scope["path"])):
                    await self._take(lane, match.groupdict(), scope, receive, send)
                    return
        elif scope["type"] == "websocket":
            scope[SERVER_SEND] = send  # type: ignore[literal-required]
        await self.litestar(scope, receive, send)

    async def _take(
        self, lane: Lane, path: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        messages = await _read(receive)
        plain = await self._plain(lane, path, scope, messages)
        if plain is None:
            await self.litestar(scope, _replay(messages, receive), send)
            return
        principal, data, params = plain
        rid = bind_request_id(scope)
        try:
            content, status, headers = await lane.serve(self.app.state, principal, data, **params)
        except DomainError as exc:
            if (found := nearest(self.errors, exc)) is None:
                await self._fail(scope, receive, send, exc)
                return
            body, headers = problem_parts(*found, exc.detail, **exc.fields)
            await _answer(send, found[0], PROBLEM_JSON, body, headers)
        except Exception as exc:
            await self._fail(scope, receive, send, exc)
        else:
            await _answer(send, status, "application/json", encode_json(content), headers)
        finally:
            request_id.reset(rid)

    async def _plain(
        self, lane: Lane, path: dict[str, str], scope: Scope, messages: list[Message]
    ) -> tuple[Principal, Any, dict[str, Any]] | None:
        """The request's principal, body and parameters if the lane can take it, else None."""
        last = messages[-1]
        if last["type"] != "http.request" or last.get("more_body", False):
            return None  # gone, or too large
        authorization = key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return None
                authorization = value.decode("latin-1")
            elif name == b"idempotency-key" and lane.idempotent:
                if key is not None:
                    return None
                key = value.decode("latin-1")
        token = bearer(authorization or "")
        if not token or (key is not None and not IDEMPOTENCY_KEY.match(key)):
            return None
        try:
            params: dict[str, Any] = {name: UUID(value) for name, value in path.items()}
            body = b"".join(message.get("body", b"") for message in messages)
            data = inputs.decode(body, lane.body)
            principal = await self.app.state.verifier.verify(token)
        except Exception:  # a bad parameter, body or token: the route answers it
            return None
        if principal.role not in ROLES_USER:
            return None
        if lane.idempotent:
            params["idempotency_key"] = key
        return principal, data, params

    async def _fail(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """Answer as Litestar would: the app's handler for the nearest class of `exc`."""
        request: Request[Any, Any, Any] = Request(scope, receive)
        response = nearest(self.app.exception_handlers, exc)(request, exc)  # type: ignore[misc]
        await response.to_asgi_response(app=None, request=request)(scope, receive, send)


def _pattern(path: str) -> re.Pattern[str]:
    """`/sessions/{offer_id:uuid}/bids` as a regular expression with one group per parameter."""
    parts = re.split(r"\{(\w+):uuid\}", path)  # text, name, text, name, ..., text
    return re.compile(
        "".join(f"(?P<{p}>[^/]+)" if n % 2 else re.escape(p) for n, p in enumerate(parts))
    )


async def _read(receive: Receive) -> list[Message]:
    """The request's messages up to its whole body, or up to MAX_BODY, or a disconnect."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if not message.get("more_body", False) or size > MAX_BODY:
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = deque(messages)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return replay  # type: ignore[return-value]


async def _answer(
    send: Send, status: int, media_type: str, body: bytes, headers: Mapping[str, str]
) -> None:
    raw = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
