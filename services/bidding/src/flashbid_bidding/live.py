"""What watchers of an event see: the state on connect, then each change; and the WebSocket
route itself (bids can be placed over it, with the same rules and codes as over HTTP)."""

from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import NotAuthorizedException, WebSocketDisconnect

from flashbid_bidding import store
from flashbid_bidding.house import AuctionHouse, results
from flashbid_bidding.hub import BOARD_SIZE
from flashbid_shared.errors import DomainError, nearest
from flashbid_shared.tokens import Principal, authenticate


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

    async def state(self, event_id: UUID, user_id: UUID) -> dict:
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
                    "you": await self.house.standing(offer_id, user_id),
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


async def place(house: AuctionHouse, principal: Principal, request: dict, codes) -> dict:
    """A bid sent over the socket: answered `accepted` or `rejected` with the HTTP API's code."""
    try:
        if request.get("type") != "bid":
            raise ValueError('send {"type": "bid", ...}')
        if "lot_id" in request:
            max_amount = request.get("max_amount")
            state, _ = await house.bid_on_lot(
                principal,
                UUID(str(request["lot_id"])),
                Decimal(str(request["amount"])),
                None if max_amount is None else Decimal(str(max_amount)),
            )
            return {"type": "accepted", "lot": state}
        standing, _ = await house.bid_in_session(
            principal, UUID(str(request["offer_id"])), Decimal(str(request["price"]))
        )
        return {"type": "accepted", "session": standing}
    except DomainError as error:
        _, code = nearest(codes, error) or (500, "error")
        return {"type": "rejected", "code": code, "detail": error.detail, **error.fields}
    except (KeyError, ValueError, InvalidOperation) as error:
        return {"type": "rejected", "code": "invalid_input", "detail": str(error)}


@websocket("/ws/bidding/events/{event_id:uuid}")
async def watch_event(socket: WebSocket, event_id: UUID) -> None:
    """`?token=<access token>`. The event's state first, then every change."""
    try:
        principal = await authenticate(socket)
    except NotAuthorizedException:
        await socket.close(code=4401, reason="invalid or missing token")
        return
    state = socket.app.state
    house: AuctionHouse = state.house
    try:
        first = await Renderer(house).state(event_id, principal.user_id)
    except DomainError:
        await socket.close(code=4404, reason="no such event")
        return
    await socket.accept()
    try:
        await state.hub.serve(
            socket,
            event_id,
            principal.user_id,
            first,
            lambda request: place(house, principal, request, state.errors),
        )
    except WebSocketDisconnect:
        pass
    except TimeoutError:  # stopped reading: dropped rather than buffered for
        await socket.close(code=1008, reason="too slow")
