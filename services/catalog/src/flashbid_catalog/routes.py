import asyncio
import hashlib
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_catalog import domain, store
from flashbid_catalog.schemas import (
    AdminEvent,
    Dashboard,
    DashboardEvent,
    EventInput,
    EventPage,
    EventPatch,
    Item,
    ItemInput,
    ItemPage,
    ItemPatch,
    Sort,
)
from flashbid_shared.contracts import Event, EventStatus, LotsEnd, StockState
from flashbid_shared.inputs import LINE_PATTERN, Money
from flashbid_shared.params import Limit, Offset, Search
from flashbid_shared.tokens import admin_required, service_required

PUBLIC = {"tags": ["public"]}
ADMIN = {"tags": ["admin"], "guards": [admin_required], "security": [{"bearer": []}]}
INTERNAL = {"tags": ["internal"], "guards": [service_required], "security": [{"bearer": []}]}
PUBLIC_STATUSES = ("scheduled", "live", "sold_out", "ended", "cancelled")


def cacheable(request: Request, value: Any, max_age: int = 1) -> Response[Any]:
    """A public read with an ETag: a client that has it gets a bodiless 304, and nginx may
    keep it for `max_age` seconds so that a refresh storm reaches us a few times a second."""
    body = msgspec.json.encode(value)
    etag = f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


# ------------------------------------------------------------------------------ public


@get("/items", operation_id="list_items", **PUBLIC)
async def list_items(
    request: Request,
    connection: AsyncConnection,
    search: Search = None,
    category: Annotated[str | None, Parameter(max_length=64, pattern=LINE_PATTERN)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Response[ItemPage]:
    found, total = await store.list_items(connection, search, category, limit, offset)
    return cacheable(request, ItemPage(items=found, total=total, limit=limit, offset=offset))


@get("/items/{item_id:uuid}", operation_id="get_item", **PUBLIC)
async def get_item(request: Request, connection: AsyncConnection, item_id: UUID) -> Response[Item]:
    return cacheable(request, await store.get_item(connection, item_id))


@get("/events", operation_id="list_events", **PUBLIC)
async def list_events(
    request: Request,
    connection: AsyncConnection,
    status: Literal["scheduled", "live", "sold_out", "ended", "cancelled"] | None = None,
    kind: Literal["flash_sale", "auction", "ranked"] | None = None,
    search: Search = None,
    price_min: Money | None = None,
    price_max: Money | None = None,
    sort: Sort = "-created_at",
    limit: Limit = 20,
    offset: Offset = 0,
) -> Response[EventPage]:
    """Published events, newest first unless `sort` says otherwise; prices filter offers."""
    found, total = await store.list_events(
        connection,
        statuses=[status] if status else PUBLIC_STATUSES,
        kind=kind,
        search=search,
        price_min=price_min,
        price_max=price_max,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return cacheable(request, EventPage(items=found, total=total, limit=limit, offset=offset))


@get("/events/featured", operation_id="featured_events", **PUBLIC)
async def featured_events(request: Request, connection: AsyncConnection) -> Response[list[Event]]:
    """Up to three: live events first, then the soonest to start."""
    return cacheable(request, await store.featured(connection))


@get("/events/{event_id:uuid}", operation_id="get_event", **PUBLIC)
async def get_event(
    request: Request, connection: AsyncConnection, event_id: UUID
) -> Response[Event]:
    return cacheable(request, await store.get_event(connection, event_id))


# ------------------------------------------------------------------------------- admin


@post("/admin/items", operation_id="create_item", **ADMIN)
async def create_item(connection: AsyncConnection, data: ItemInput) -> Item:
    return await store.create_item(connection, data)


@patch("/admin/items/{item_id:uuid}", operation_id="update_item", **ADMIN)
async def update_item(connection: AsyncConnection, item_id: UUID, data: ItemPatch) -> Item:
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    return await store.update_item(connection, item_id, changes)


@delete("/admin/items/{item_id:uuid}", operation_id="delete_item", **ADMIN)
async def delete_item(connection: AsyncConnection, item_id: UUID) -> None:
    """Deleted, or archived if an event offers it (the event keeps showing it)."""
    await store.delete_item(connection, item_id)


@get("/admin/events", operation_id="admin_list_events", **ADMIN)
async def admin_list_events(
    connection: AsyncConnection,
    status: EventStatus | None = None,
    kind: Literal["flash_sale", "auction", "ranked"] | None = None,
    search: Search = None,
    sort: Sort = "-created_at",
    limit: Limit = 20,
    offset: Offset = 0,
) -> EventPage:
    """Every event, drafts included, with reserve prices."""
    found, total = await store.list_events(
        connection,
        statuses=[status] if status else ("draft", *PUBLIC_STATUSES),
        kind=kind,
        search=search,
        sort=sort,
        limit=limit,
        offset=offset,
        public=False,
    )
    return EventPage(items=found, total=total, limit=limit, offset=offset)


@post("/admin/events", operation_id="create_event", **ADMIN)
async def create_event(connection: AsyncConnection, data: EventInput) -> Event:
    """A draft event; `publish` schedules it."""
    items = await store.item_states(connection, {offer.item_id for offer in data.offers})
    domain.check_event(data, now=await store.now(connection), items=items)
    event_id = await store.create_event(connection, data)
    return await store.get_event(connection, event_id, public=False)


@get("/admin/events/{event_id:uuid}", operation_id="admin_get_event", **ADMIN)
async def admin_get_event(connection: AsyncConnection, event_id: UUID) -> AdminEvent:
    """The event with its reserve prices, every status change so far, and whether purchase or
    bidding has its latest version."""
    return AdminEvent(
        event=await store.get_event(connection, event_id, public=False),
        transitions=await store.transitions_of(connection, event_id),
        synced_version=await store.synced_version(connection, event_id),
    )


@patch("/admin/events/{event_id:uuid}", operation_id="update_event", **ADMIN)
async def update_event(
    state: State, connection: AsyncConnection, event_id: UUID, data: EventPatch
) -> Event:
    """Only before the event is live. `offers`, if given, replaces all of them."""
    current = await store.get_event(connection, event_id, public=False)
    domain.check_editable(current.status)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    merged = domain.merge(current, changes)
    items = await store.item_states(connection, {offer.item_id for offer in merged.offers})
    kept = {offer.item_id for offer in current.offers}
    items = {i: archived and i not in kept for i, archived in items.items()}
    domain.check_event(merged, now=await store.now(connection), items=items)
    if not await store.replace_event(connection, event_id, merged, domain.EDITABLE):
        domain.check_editable(await store.event_status(connection, event_id))
    state.lifecycle.poke()
    return await store.get_event(connection, event_id, public=False)


@post(
    "/admin/events/{event_id:uuid}/{action:str}",
    operation_id="change_event_status",
    status_code=200,
    **ADMIN,
)
async def change_event_status(
    state: State,
    event_id: UUID,
    action: Literal["publish", "open", "close", "cancel"],
) -> Event:
    """publish: draft to scheduled; open and close: now, whatever the schedule says; cancel.
    Answered once the services that run the event have it (503 `not_confirmed` otherwise:
    the change is kept, delivered again until it lands, and a retry waits for it)."""
    return await state.lifecycle.change(event_id, action, actor="admin")


@get("/admin/dashboard", operation_id="admin_dashboard", **ADMIN)
async def admin_dashboard(state: State, connection: AsyncConnection) -> Dashboard:
    """Events by status, and the live and latest events with figures from purchase and
    bidding (a service that does not answer in time shows as unavailable)."""
    counts = await store.count_by_status(connection)
    recent = await store.load_events(connection, await store.recent_ids(connection))
    figures = await asyncio.gather(*(state.peers.figures(event) for event in recent))
    return Dashboard(
        events_by_status=counts,
        events=[
            DashboardEvent(
                id=event.id,
                kind=event.kind,
                title=event.title,
                status=event.status,
                starts_at=event.starts_at,
                ends_at=event.ends_at,
                figures=found,
                figures_available=found is not None,
            )
            for event, found in zip(recent, figures, strict=True)
        ],
    )


# ---------------------------------------------------------------------------- internal


@get("/internal/events", operation_id="internal_list_events", **INTERNAL)
async def internal_list_events(
    connection: AsyncConnection,
    kind: Literal["flash_sale", "auction", "ranked"] | None = None,
    status: Annotated[list[EventStatus] | None, Parameter(max_items=6)] = None,
) -> list[Event]:
    """Whole events (reserve prices included) for purchase's and bidding's reconciliation."""
    found, _ = await store.list_events(
        connection,
        statuses=status or PUBLIC_STATUSES,
        kind=kind,
        sort="starts_at",
        limit=1000,
        public=False,
    )
    return found


@get("/internal/events/{event_id:uuid}", operation_id="internal_get_event", **INTERNAL)
async def internal_get_event(connection: AsyncConnection, event_id: UUID) -> Event:
    return await store.get_event(connection, event_id, public=False)


@put("/internal/events/{event_id:uuid}/stock-state", operation_id="report_stock", **INTERNAL)
async def report_stock(
    state: State, connection: AsyncConnection, event_id: UUID, data: StockState
) -> dict[str, str]:
    """Purchase: a live flash sale sold out, or has stock again. Answers the event's status."""
    status = await store.report_stock(connection, event_id, data.sold_out)
    state.lifecycle.poke()
    return {"status": status}


@put("/internal/events/{event_id:uuid}/lots-end", operation_id="report_lots_end", **INTERNAL)
async def report_lots_end(
    state: State, connection: AsyncConnection, event_id: UUID, data: LotsEnd
) -> dict[str, str]:
    """Bidding: a live auction's lots end later (a late bid), or have all closed."""
    status = await store.lots_closed(connection, event_id, data.ends_at, data.closed)
    state.lifecycle.poke()
    return {"status": status}


ROUTES = [
    list_items,
    get_item,
    list_events,
    featured_events,
    get_event,
    create_item,
    update_item,
    delete_item,
    admin_list_events,
    create_event,
    admin_get_event,
    update_event,
    change_event_status,
    admin_dashboard,
    internal_list_events,
    internal_get_event,
    report_stock,
    report_lots_end,
]
