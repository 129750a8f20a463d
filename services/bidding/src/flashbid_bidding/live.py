"""What watchers of an event see: the state on connect, then each change; and the WebSocket
route itself. Anyone may watch. A signed-in watcher may also bid over it, with the rules, codes
and words of the HTTP routes, until their token expires or their account is deactivated: then
the socket is closed (4401, 4403) and the client reconnects, with a fresh token or without one.
The README's "Beyond API.md" lists the close codes."""

import base64
import logging
import math
import time
from typing import Any
from uuid import UUID

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import NotAuthorizedException, WebSocketDisconnect

from flashbid_bidding import store
from flashbid_bidding.house import AuctionHouse, results
from flashbid_bidding.hub import BOARD_SIZE, Leave
from flashbid_bidding.schemas import BidMessage, ClientMessage
from flashbid_shared.errors import CODES_BY_STATUS, DomainError, nearest
from flashbid_shared.inputs import decode, explain
from flashbid_shared.observability import AWAY
from flashbid_shared.tokens import ROLES_USER, Principal, authenticate, bearer_token
from flashbid_shared.users import UserDirectory

log = logging.getLogger(__name__)
BID_RATE, BID_BURST = 5.0, 10  # a user's socket bids, as the gateway lets HTTP bids through
# Why a socket is closed by the server: its close code and reason.
CLOSES = {
    "too slow": (1008, "Stopped reading."),
    "too large": (1009, "A message is at most 64 KiB."),
    "invalid token": (4401, "The token is invalid or expired."),
    "expired": (4401, "The token is invalid or expired."),
    "deactivated": (4403, "This account is deactivated."),
    "not a user": (4403, "Bids are for signed-in users."),
    "no such event": (4404, "There is no such event."),
}


class Renderer:
    def __init__(self, house: AuctionHouse) -> None:
        self.house = house

    async def render(self, event_id: UUID, news: dict) -> list[Any]:
        kind = news["type"]
        if kind == "lot":
            state = await self.house.lot(UUID(news["lot_id"]))
            messages: list[Any] = [lambda user: {"type": "bid", "lot": state.seen_by(user)}]
            if news.get("extended"):
                messages.append(
                    {"type": "extended", "lot_id": news["lot_id"], "ends_at": news["extended"]}
                )
            return messages
        if kind == "session":
            offer_id = UUID(news["offer_id"])
            board = await self.house.board.leaderboard(offer_id, BOARD_SIZE)
            return [{"type": "bid", "offer_id": str(offer_id), "leaderboard": board}]
        if kind == "status":
            return [{"type": "status", "event_id": str(event_id), "status": news["status"]}]
        if kind == "result":
            return [{"type": "result", **await self.results(event_id)}]
        return []

    async def results(self, event_id: UUID) -> dict:
        async with self.house.engine.connect() as connection:
            return msgspec.to_builtins(await results(connection, event_id))

    async def state(self, event_id: UUID, user_id: UUID | None) -> dict:
        """`you` is the watcher's own standing in each session (None when anonymous)."""
        async with self.house.engine.connect() as connection:
            event = await store.get_event(connection, event_id)
            lot_ids = [row.id for row in await store.lots_of(connection, event_id)]
            offer_ids = [row.id for row in await store.sessions_of(connection, event_id)]
        lots = [(await self.house.lot(lot_id)).seen_by(user_id) for lot_id in lot_ids]
        sessions = []
        for offer_id in offer_ids:
            await self.house.ensure_board(offer_id)
            sessions.append(
                {
                    "offer_id": str(offer_id),
                    "leaderboard": await self.house.board.leaderboard(offer_id, BOARD_SIZE),
                    "you": None
                    if user_id is None
                    else await self.house.standing(offer_id, user_id),
                }
            )
        return {
            "type": "state",
            "event": {
                "id": str(event.id),
                "kind": event.kind,
                "title": event.title,
                "status": event.status,
                "starts_at": event.starts_at.isoformat(),
                "ends_at": event.ends_at.isoformat(),
            },
            "lots": lots,
            "sessions": sessions,
        }


async def is_active(users: UserDirectory, user_id: UUID) -> bool:
    """As the bid routes see it: a user auth does not know (or cannot answer for) may bid."""
    user = await users.get(user_id)
    return user is None or user.is_active


def rejected(code: str, detail: str, **fields: Any) -> dict[str, Any]:
    return {"type": "rejected", "code": code, "detail": detail, **fields}


def invalid(error: msgspec.ValidationError) -> dict[str, Any]:
    """As the HTTP routes word a body that does not fit: msgspec's words, and where (`data`:
    the message as a whole)."""
    message, _, where = explain(str(error)).partition(" - at `$")
    failure = {"message": message, "key": where.rstrip("`").lstrip(".") or "data"}
    return rejected(
        CODES_BY_STATUS[422],
        "Validation failed for the message.",
        errors=[failure | {"source": "body"}],
    )


class Bidder:
    """The answers to one socket's messages: `principal` is None for an anonymous watcher,
    whose bids are refused as the HTTP routes refuse a request without a token."""

    def __init__(
        self, house: AuctionHouse, principal: Principal | None, expires: float, errors: Any
    ) -> None:
        self.house, self.principal, self.expires, self.errors = house, principal, expires, errors

    async def answer(self, data: bytes) -> dict[str, Any]:
        principal = self.principal
        if principal is not None and time.time() >= self.expires:
            raise Leave("expired")  # in case the expiry's timer is late
        try:
            message = decode(data, ClientMessage)
        except msgspec.ValidationError as error:
            return invalid(error)
        except msgspec.DecodeError as error:  # msgspec's words, as the HTTP routes answer
            return rejected(CODES_BY_STATUS[400], str(error))
        if not isinstance(message, BidMessage):
            return {"type": "pong"}
        if principal is None:
            return rejected(CODES_BY_STATUS[401], "A bearer token is required.")
        try:
            return await self.place(principal, message)
        except DomainError as error:
            _, code = nearest(self.errors, error) or (500, "internal_error")
            return rejected(code, error.detail, **error.fields)
        except Leave:
            raise
        except AWAY as error:  # as the HTTP routes answer: Redis or PostgreSQL away a moment
            log.warning("a socket bid: %r", error)
            return rejected("unavailable", "Try again shortly.", retry_after=1)
        except Exception:
            log.exception("a socket bid failed")
            return rejected("internal_error", "Something went wrong on our side.")

    async def place(self, principal: Principal, bid: BidMessage) -> dict[str, Any]:
        if not await is_active(self.house.users, principal.user_id):
            raise Leave("deactivated")
        if wait := await self.house.board.take(principal.user_id, BID_RATE, BID_BURST):
            detail = "Too many bids from your account; slow down."
            return rejected(CODES_BY_STATUS[429], detail, retry_after=math.ceil(wait))
        if bid.lot_id is not None and bid.amount is not None:
            lot, _ = await self.house.bid_on_lot(principal, bid.lot_id, bid.amount, bid.max_amount)
            return {"type": "accepted", "lot": lot}
        assert bid.offer_id is not None and bid.price is not None  # see BidMessage
        standing, _ = await self.house.bid_in_session(principal, bid.offer_id, bid.price)
        return {"type": "accepted", "session": standing}


def expiry(token: str) -> float:
    """The `exp` of a token already verified."""
    claims = token.split(".")[1]
    padded = claims + "=" * (-len(claims) % 4)
    return float(msgspec.json.decode(base64.urlsafe_b64decode(padded))["exp"])


async def signed_in(socket: WebSocket) -> tuple[Principal | None, float, str | None]:
    """The watcher, its token's expiry, and why it may not watch (a close reason) if so."""
    token = bearer_token(socket)
    if token is None:
        return None, math.inf, None
    try:
        principal = await authenticate(socket)
    except NotAuthorizedException:
        return None, 0.0, "invalid token"
    if principal.role not in ROLES_USER:
        return None, 0.0, "not a user"
    if not await is_active(socket.app.state.house.users, principal.user_id):
        return None, 0.0, "deactivated"
    return principal, expiry(token), None


@websocket("/ws/bidding/events/{event_id:uuid}")
async def watch_event(socket: WebSocket, event_id: UUID) -> None:
    """`?token=<access token>` to bid, none to watch. The event's state first, then every
    change. A close is sent once the socket is accepted, so that a browser sees its code."""
    state = socket.app.state
    principal, expires, ended = await signed_in(socket)
    user_id = None if principal is None else principal.user_id
    first = None
    if ended is None:
        try:
            first = await Renderer(state.house).state(event_id, user_id)
        except DomainError:
            ended = "no such event"
    try:
        await socket.accept()
        if ended is None:
            bidder = Bidder(state.house, principal, expires, state.errors)
            timer = None if principal is None else expires
            ended = await state.hub.serve(socket, event_id, user_id, first, bidder.answer, timer)
        if ended in CLOSES:
            await socket.close(*CLOSES[ended])
    except WebSocketDisconnect:  # the client went first
        pass
