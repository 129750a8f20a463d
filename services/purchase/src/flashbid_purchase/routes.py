from decimal import Decimal
from typing import Literal
from uuid import UUID

from litestar import Response, get, post, put
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_purchase import domain, store
from flashbid_purchase.schemas import OfferStats, OrderPage, OrderRequest, Stats, StockLine
from flashbid_shared.contracts import AwardOrder, Event, EventFigures, Order, Purchased
from flashbid_shared.lanes import Answer, Lane, respond
from flashbid_shared.params import IdempotencyKey, Limit, Offset
from flashbid_shared.tokens import Principal, admin_required, service_required, user_required

PUBLIC = {"tags": ["stock"]}
BUYER = {"tags": ["orders"], "guards": [user_required], "security": [{"bearer": []}]}
ADMIN = {"tags": ["admin"], "guards": [admin_required], "security": [{"bearer": []}]}
INTERNAL = {"tags": ["internal"], "guards": [service_required], "security": [{"bearer": []}]}
OrderStatus = Literal["reserved", "confirmed", "cancelled", "expired"]


@get("/events/{event_id:uuid}/stock", operation_id="event_stock", **PUBLIC)
async def event_stock(state: State, event_id: UUID) -> list[StockLine]:
    """Units per offer and how many are left, from the gate's memory."""
    sales = state.sales
    lines = await sales.gate.stock(event_id)
    if lines is None:
        async with sales.engine.connect() as connection:
            found = await store.event_state(connection, event_id)
        if found is None:
            raise domain.UnknownEvent("Purchase does not know this event (yet).")
        await sales.publish(event_id, replace=True)
        lines = [(str(o.id), o.stock, o.remaining) for o in found[1]]
    return [StockLine(offer_id=UUID(o), stock=s, remaining=r) for o, s, r in lines]


async def place_order(
    state: State, principal: Principal, data: OrderRequest, idempotency_key: str | None
) -> Answer:
    order, new = await state.sales.place_order(
        principal, data.offer_id, data.quantity, idempotency_key
    )
    return order, 201, {} if new else {"Idempotent-Replayed": "true"}


@post("/orders", operation_id="create_order", status_code=201, **BUYER)
async def create_order(
    state: State, principal: Principal, data: OrderRequest, idempotency_key: IdempotencyKey
) -> Response[Order]:
    """Reserve units of a flash-sale offer. With an `Idempotency-Key`, a retry of the same
    request answers the first result; the same key with another body is refused (422)."""
    return respond(await place_order(state, principal, data, idempotency_key))


@get("/orders", operation_id="my_orders", **BUYER)
async def my_orders(
    connection: AsyncConnection,
    principal: Principal,
    status: OrderStatus | None = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> OrderPage:
    found, total = await store.list_orders(
        connection, user_id=principal.user_id, status=status, limit=limit, offset=offset
    )
    return OrderPage(items=found, total=total, limit=limit, offset=offset)


@get("/orders/{order_id:uuid}", operation_id="my_order", **BUYER)
async def my_order(connection: AsyncConnection, principal: Principal, order_id: UUID) -> Order:
    return await store.get_order(connection, principal.user_id, order_id)


@post("/orders/{order_id:uuid}/confirm", operation_id="confirm_order", status_code=200, **BUYER)
async def confirm_order(connection: AsyncConnection, principal: Principal, order_id: UUID) -> Order:
    """Pay for a reservation (the stand-in for a payment) before it expires."""
    return await store.confirm(connection, principal.user_id, order_id)


@post("/orders/{order_id:uuid}/cancel", operation_id="cancel_order", status_code=200, **BUYER)
async def cancel_order(state: State, principal: Principal, order_id: UUID) -> Order:
    """The units go back on sale while the event is live."""
    return await state.sales.cancel(principal.user_id, order_id)


@get("/admin/orders", operation_id="admin_orders", **ADMIN)
async def admin_orders(
    connection: AsyncConnection,
    event_id: UUID | None = None,
    status: OrderStatus | None = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> OrderPage:
    found, total = await store.list_orders(
        connection, event_id=event_id, status=status, limit=limit, offset=offset
    )
    return OrderPage(items=found, total=total, limit=limit, offset=offset)


@get("/admin/stats", operation_id="admin_stats", **ADMIN)
async def admin_stats(connection: AsyncConnection, event_id: UUID) -> Stats:
    return await event_stats(connection, event_id)


async def event_stats(connection: AsyncConnection, event_id: UUID) -> Stats:
    rows = await store.offer_counts(connection, event_id)
    if not rows:
        raise domain.UnknownEvent("Purchase does not know this event (yet).")
    offers = [
        OfferStats(
            offer_id=r.id,
            stock=r.stock,
            remaining=r.remaining,
            reserved=r.reserved,
            confirmed=r.confirmed,
            orders=r.orders,
            revenue=r.revenue,
        )
        for r in rows
    ]
    orders = sum(o.orders for o in offers)
    confirmed_orders = await store.confirmed_orders(connection, event_id)
    return Stats(
        event_id=event_id,
        cancelled=await store.is_voided(connection, event_id),
        stock=sum(o.stock for o in offers),
        remaining=sum(o.remaining for o in offers),
        reserved=sum(o.reserved for o in offers),
        confirmed=sum(o.confirmed for o in offers),
        orders=orders,
        units_sold=sum(o.confirmed for o in offers),
        revenue=sum((o.revenue for o in offers), Decimal(0)),
        conversion=round(confirmed_orders / orders, 4) if orders else 0.0,
        offers=offers,
    )


# ---------------------------------------------------------------------------- internal


@put("/internal/events/{event_id:uuid}", operation_id="put_event", **INTERNAL)
async def put_event(state: State, event_id: UUID, data: Event) -> dict[str, bool]:
    """Catalog's push of a flash sale (older versions than the one held are ignored), or of
    any event's cancellation (its reserved orders are void)."""
    if data.id != event_id or (data.kind != "flash_sale" and data.status != "cancelled"):
        raise domain.UnknownEvent("Only flash sales are sold here, at their own id.")
    return {"applied": await state.sales.apply_event(data)}


@post("/internal/orders", operation_id="award_order", **INTERNAL)
async def award_order(connection: AsyncConnection, data: AwardOrder) -> Order:
    """Bidding's winner gets a reserved order at the winning price (once per offer and user)."""
    return await store.award(connection, data)


@get("/internal/purchases", operation_id="has_purchased", **INTERNAL)
async def has_purchased(connection: AsyncConnection, user_id: UUID, item_id: UUID) -> Purchased:
    return Purchased(purchased=await store.purchased(connection, user_id, item_id))


@get("/internal/events/{event_id:uuid}/figures", operation_id="event_figures", **INTERNAL)
async def event_figures(connection: AsyncConnection, event_id: UUID) -> EventFigures:
    if await store.offer_counts(connection, event_id):
        stats = await event_stats(connection, event_id)
        return EventFigures(
            orders=stats.orders,
            units_sold=stats.units_sold,
            revenue=stats.revenue,
            conversion=stats.conversion,
        )
    awarded = await store.award_counts(connection, event_id)
    return EventFigures(orders=awarded.orders, units_sold=awarded.units, revenue=awarded.revenue)


ROUTES = [
    event_stock,
    create_order,
    my_orders,
    my_order,
    confirm_order,
    cancel_order,
    admin_orders,
    admin_stats,
    put_event,
    award_order,
    has_purchased,
    event_figures,
]
# A flash sale's storm of orders, served ahead of Litestar (see flashbid_shared.lanes).
LANES = [Lane("POST", "/orders", OrderRequest, place_order, idempotent=True)]
