from uuid import UUID

from litestar import Response, get, post, put
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_bidding import house as auction_house
from flashbid_bidding import store
from flashbid_bidding.schemas import (
    BidLine,
    BoardLine,
    EventRef,
    EventRefPage,
    Leader,
    LotBid,
    LotView,
    Results,
    SessionBid,
    Standing,
    Won,
    WonPage,
)
from flashbid_bidding.workers import apply_event
from flashbid_shared.contracts import Event, EventFigures
from flashbid_shared.lanes import Answer, Lane, respond
from flashbid_shared.params import IdempotencyKey, Limit, Offset
from flashbid_shared.tokens import Principal, service_required, user_required

PUBLIC = {"tags": ["public"]}
BIDDER = {"tags": ["bidding"], "guards": [user_required], "security": [{"bearer": []}]}
INTERNAL = {"tags": ["internal"], "guards": [service_required], "security": [{"bearer": []}]}


def replayed(new: bool) -> dict[str, str]:
    return {} if new else {"Idempotent-Replayed": "true"}


@post("/events/{event_id:uuid}/join", operation_id="join_event", status_code=204, **BIDDER)
async def join_event(state: State, principal: Principal, event_id: UUID) -> None:
    """Join an auction (while it is scheduled or live) to bid on its lots."""
    await state.house.join(principal, event_id)


@get("/me/events", operation_id="my_events", **BIDDER)
async def my_events(
    connection: AsyncConnection, principal: Principal, limit: Limit = 20, offset: Offset = 0
) -> EventRefPage:
    """The events the caller joined or bid in, the latest to start first."""
    rows = await store.events_of(connection, principal.user_id)
    return EventRefPage(
        items=[EventRef(id=r.id, kind=r.kind, title=r.title, status=r.status,
                        starts_at=r.starts_at, ends_at=r.ends_at)
               for r in rows[offset : offset + limit]],
        total=len(rows), limit=limit, offset=offset,
    )  # fmt: skip


@get("/me/won", operation_id="my_wins", **BIDDER)
async def my_wins(
    connection: AsyncConnection, principal: Principal, limit: Limit = 20, offset: Offset = 0
) -> WonPage:
    """What the caller won, the latest settled first."""
    rows = await store.won_by(connection, principal.user_id)
    return WonPage(
        items=[Won(event_id=r.event_id, title=r.title, offer_id=r.offer_id, item_id=r.item_id,
                   price=r.price, currency=r.currency)
               for r in rows[offset : offset + limit]],
        total=len(rows), limit=limit, offset=offset,
    )  # fmt: skip


@get("/lots/{lot_id:uuid}", operation_id="get_lot", **PUBLIC)
async def get_lot(state: State, viewer: Principal | None, lot_id: UUID) -> LotView:
    """The lot now; `you_lead` when the caller (if signed in) leads."""
    lot = await state.house.lot(lot_id)
    return lot.seen_by(viewer.user_id if viewer else None)


@get("/lots/{lot_id:uuid}/bids", operation_id="lot_bids", **PUBLIC)
async def lot_bids(connection: AsyncConnection, lot_id: UUID, limit: Limit = 50) -> list[BidLine]:
    """Bid history, newest first, bidders by display name."""
    await store.lot(connection, lot_id)
    return [
        BidLine(bidder=Leader(display_name=r.bidder_name), amount=r.amount,
                automatic=r.automatic, placed_at=r.placed_at)
        for r in await store.bid_history(connection, lot_id, limit)
    ]  # fmt: skip


async def place_lot_bid(
    state: State, principal: Principal, data: LotBid, lot_id: UUID, idempotency_key: str | None
) -> Answer:
    lot, new = await state.house.bid_on_lot(
        principal, lot_id, data.amount, data.max_amount, idempotency_key
    )
    return lot, 201, replayed(new)


@post("/lots/{lot_id:uuid}/bids", operation_id="bid_on_lot", status_code=201, **BIDDER)
async def bid_on_lot(
    state: State,
    principal: Principal,
    lot_id: UUID,
    data: LotBid,
    idempotency_key: IdempotencyKey,
) -> Response[LotView]:
    """Bid `amount`; with `max_amount`, the system bids for you up to it (a proxy bid)."""
    return respond(await place_lot_bid(state, principal, data, lot_id, idempotency_key))


@post("/lots/{lot_id:uuid}/buy-now", operation_id="buy_now", **BIDDER)
async def buy_now(state: State, principal: Principal, lot_id: UUID) -> LotView:
    """Before the first bid: the lot ends at once, yours at its buy-now price."""
    return await state.house.buy_now(principal, lot_id)


async def place_session_bid(
    state: State,
    principal: Principal,
    data: SessionBid,
    offer_id: UUID,
    idempotency_key: str | None,
) -> Answer:
    standing, new = await state.house.bid_in_session(
        principal, offer_id, data.price, idempotency_key
    )
    return standing, 201, replayed(new)


@post("/sessions/{offer_id:uuid}/bids", operation_id="bid_in_session", status_code=201, **BIDDER)
async def bid_in_session(
    state: State,
    principal: Principal,
    offer_id: UUID,
    data: SessionBid,
    idempotency_key: IdempotencyKey,
) -> Response[Standing]:
    """Place or raise (never lower) your one bid in a ranked session. With an
    `Idempotency-Key`, a retry answers the first result; the key with another price is 422."""
    return respond(await place_session_bid(state, principal, data, offer_id, idempotency_key))


@get("/sessions/{offer_id:uuid}/leaderboard", operation_id="leaderboard", **PUBLIC)
async def leaderboard(state: State, offer_id: UUID, limit: Limit = 20) -> list[BoardLine]:
    return await state.house.leaderboard(offer_id, limit)


@get("/sessions/{offer_id:uuid}/me", operation_id="my_standing", **BIDDER)
async def my_standing(state: State, principal: Principal, offer_id: UUID) -> Standing:
    return await state.house.standing(offer_id, principal.user_id)


@get("/events/{event_id:uuid}/results", operation_id="event_results", **PUBLIC)
async def event_results(connection: AsyncConnection, event_id: UUID) -> Results:
    """Winners, final prices and rankings (complete once `settled`)."""
    return await auction_house.results(connection, event_id)


@put("/internal/events/{event_id:uuid}", operation_id="put_event", **INTERNAL)
async def put_event(state: State, event_id: UUID, data: Event) -> dict[str, bool]:
    """Catalog's push of an auction or ranked event; older versions are ignored."""
    if data.id != event_id or data.kind == "flash_sale":
        raise auction_house.domain.NotFound("Only auctions and ranked sessions are run here.")
    return {"applied": await apply_event(state.house, data)}


@get("/internal/events/{event_id:uuid}/figures", operation_id="event_figures", **INTERNAL)
async def event_figures(connection: AsyncConnection, event_id: UUID) -> EventFigures:
    bids, participants = await store.figures(connection, event_id)
    return EventFigures(bids=bids, participants=participants)


ROUTES = [
    join_event,
    my_events,
    my_wins,
    get_lot,
    lot_bids,
    bid_on_lot,
    buy_now,
    bid_in_session,
    leaderboard,
    my_standing,
    event_results,
    put_event,
    event_figures,
]
# The storms of bids, served ahead of Litestar (see flashbid_shared.lanes).
LANES = [
    Lane("POST", "/lots/{lot_id:uuid}/bids", LotBid, place_lot_bid, idempotent=True),
    Lane("POST", "/sessions/{offer_id:uuid}/bids", SessionBid, place_session_bid, idempotent=True),
]
