"""Purchase's tables and the statements over them. Every stock change is one guarded
statement, so the invariant remaining + reserved + confirmed = stock holds at every commit."""

import uuid
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_purchase import domain
from flashbid_shared.contracts import AwardOrder, Event, Order
from flashbid_shared.database import timestamp

metadata = sa.MetaData()


sale_events = sa.Table(
    "sale_events",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    timestamp("starts_at", nullable=False),
    timestamp("ends_at", nullable=False),
    sa.Column("reservation_timeout_seconds", sa.Integer, nullable=False),
    sa.Column("reported_sold_out", sa.Boolean, nullable=False, server_default=sa.false()),
)

offers = sa.Table(
    "offers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("event_id", sa.Uuid, sa.ForeignKey("sale_events.id"), nullable=False),
    sa.Column("item_id", sa.Uuid, nullable=False),
    sa.Column("unit_price", sa.Numeric, nullable=False),
    sa.Column("per_user_limit", sa.Integer, nullable=False),
    sa.Column("stock", sa.Integer, nullable=False),
    sa.Column("remaining", sa.Integer, nullable=False),
    sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
    sa.Column("confirmed", sa.Integer, nullable=False, server_default="0"),
)

# Units a customer holds (reserved or bought) per offer, capped by the offer's limit.
holdings = sa.Table(
    "holdings",
    metadata,
    sa.Column("user_id", sa.Uuid, primary_key=True),
    sa.Column("offer_id", sa.Uuid, primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("per_user_limit", sa.Integer, nullable=False),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("offer_id", sa.Uuid, nullable=False),
    sa.Column("item_id", sa.Uuid, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Numeric, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    timestamp("expires_at", nullable=False),
    timestamp("created_at", nullable=False, server_default=sa.func.now()),
    timestamp("updated_at", nullable=False, server_default=sa.func.now()),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user_id", sa.Uuid, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("order_id", sa.Uuid, nullable=False),
    timestamp("created_at", nullable=False, server_default=sa.func.now()),
)


# Cancelled events of any kind: their reserved orders are void, and no award order follows.
voided_events = sa.Table(
    "voided_events",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    timestamp("voided_at", nullable=False, server_default=sa.func.now()),
)

# Emails to send through auth, each once per key, retried until auth takes them.
notices = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("payload", JSONB, nullable=False),
    timestamp("due_at", nullable=False, server_default=sa.func.now()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    timestamp("done_at"),
)


def as_order(row: Any) -> Order:
    return Order(
        id=row.id,
        offer_id=row.offer_id,
        event_id=row.event_id,
        item_id=row.item_id,
        kind=row.kind,
        quantity=row.quantity,
        unit_price=row.unit_price,
        total=row.unit_price * row.quantity,
        currency=row.currency,
        status=row.status,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )


# ---------------------------------------------------------------------------- events


async def apply_event(connection: AsyncConnection, event: Event) -> bool:
    """Catalog's push (or our own pull): kept only if newer than what we have. Offers are
    only ever edited before the sale opens, so their counts are reset to the new stock."""
    values = {
        "id": event.id,
        "version": event.version,
        "status": event.status,
        "title": event.title,
        "currency": event.currency,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "reservation_timeout_seconds": event.reservation_timeout_seconds or 600,
    }
    statement = insert(sale_events).values(values)
    applied = await connection.scalar(
        statement.on_conflict_do_update(
            index_elements=[sale_events.c.id],
            set_={k: statement.excluded[k] for k in values if k != "id"},
            where=sale_events.c.version < statement.excluded.version,
        ).returning(sale_events.c.id)
    )
    if applied is None:
        return False
    sold = sa.select(orders.c.offer_id).where(orders.c.event_id == event.id)
    await connection.execute(
        offers.delete().where(
            offers.c.event_id == event.id,
            offers.c.id.not_in([o.id for o in event.offers]),
            offers.c.id.not_in(sold),
        )
    )
    for offer in event.offers:
        row = {
            "id": offer.id,
            "event_id": event.id,
            "item_id": offer.item_id,
            "unit_price": offer.price,
            "per_user_limit": offer.per_user_limit or 1,
            "stock": offer.stock,
            "remaining": offer.stock,
        }
        upsert = insert(offers).values(row)
        await connection.execute(
            upsert.on_conflict_do_update(
                index_elements=[offers.c.id],
                set_={k: upsert.excluded[k] for k in ("unit_price", "per_user_limit", "stock")}
                | {"remaining": upsert.excluded.stock - offers.c.reserved - offers.c.confirmed},
            )
        )
    return True


async def event_state(connection: AsyncConnection, event_id: UUID) -> Any:
    """The event row and its offers' counts, or None."""
    event = (
        await connection.execute(sale_events.select().where(sale_events.c.id == event_id))
    ).one_or_none()
    if event is None:
        return None
    rows = await connection.execute(
        offers.select().where(offers.c.event_id == event_id).order_by(offers.c.id)
    )
    return event, rows.all()


async def holdings_of(connection: AsyncConnection, event_id: UUID) -> list[tuple[UUID, UUID, int]]:
    rows = await connection.execute(
        sa.select(holdings.c.user_id, holdings.c.offer_id, holdings.c.quantity)
        .join(offers, offers.c.id == holdings.c.offer_id)
        .where(offers.c.event_id == event_id, holdings.c.quantity > 0)
    )
    return [(r.user_id, r.offer_id, r.quantity) for r in rows]


async def event_of_offer(connection: AsyncConnection, offer_id: UUID) -> UUID | None:
    return await connection.scalar(sa.select(offers.c.event_id).where(offers.c.id == offer_id))


async def open_event_ids(connection: AsyncConnection) -> list[UUID]:
    rows = await connection.scalars(
        sa.select(sale_events.c.id).where(
            sale_events.c.status.in_(domain.LIVE_STATUSES), sale_events.c.ends_at > sa.func.now()
        )
    )
    return list(rows)


async def unsettled_event_ids(connection: AsyncConnection) -> list[UUID]:
    """Events we still think are upcoming or open (catalog is asked about each)."""
    rows = await connection.scalars(
        sa.select(sale_events.c.id).where(
            sale_events.c.status.in_(("scheduled", *domain.LIVE_STATUSES))
        )
    )
    return list(rows)


# ---------------------------------------------------------------------------- orders


class Reservation(NamedTuple):
    """A winner of the gate, to be written."""

    order_id: UUID
    offer_id: UUID
    user_id: UUID
    quantity: int
    key: str | None
    fingerprint: str


# The winners' write: one statement for a batch of them (each customer once per offer), so an
# offer's row is locked once per batch and only while PostgreSQL runs it, never across a round
# trip. An offer gets no rows back when its event is not open as of now or its stock is short
# for the whole batch (the event's row is share-locked meanwhile: catalog's close or cancel,
# an update of that row, waits for the batch, and a batch after it finds the event closed);
# the holdings CHECK refuses more than the limit per customer and the idempotency key's
# primary key refuses a replay, each failing the whole statement.
RESERVE = sa.text("""
WITH wanted AS (
    SELECT * FROM unnest(CAST(:order_ids AS uuid[]), CAST(:offer_ids AS uuid[]),
                         CAST(:user_ids AS uuid[]), CAST(:quantities AS integer[]),
                         CAST(:keys AS text[]), CAST(:fingerprints AS text[]))
        AS w(order_id, offer_id, user_id, quantity, key, fingerprint)
), open AS (
    SELECT * FROM sale_events
    WHERE id IN (SELECT event_id FROM offers WHERE id IN (SELECT offer_id FROM wanted))
      AND status IN ('live', 'sold_out') AND ends_at > clock_timestamp()
    FOR SHARE
), taken AS (
    UPDATE offers SET remaining = remaining - t.quantity, reserved = reserved + t.quantity
    FROM (SELECT offer_id, sum(quantity) AS quantity FROM wanted GROUP BY offer_id) t, open e
    WHERE offers.id = t.offer_id AND offers.remaining >= t.quantity AND e.id = offers.event_id
    RETURNING offers.id, offers.event_id, offers.item_id, offers.unit_price,
              offers.per_user_limit, offers.remaining, e.currency,
              now() + make_interval(secs => e.reservation_timeout_seconds) AS expires_at
), held AS (
    INSERT INTO holdings (user_id, offer_id, quantity, per_user_limit)
    SELECT w.user_id, w.offer_id, w.quantity, taken.per_user_limit
    FROM wanted w JOIN taken ON taken.id = w.offer_id
    ON CONFLICT (user_id, offer_id) DO UPDATE SET quantity = holdings.quantity + EXCLUDED.quantity
), keyed AS (
    INSERT INTO idempotency_keys (user_id, key, fingerprint, order_id)
    SELECT w.user_id, w.key, w.fingerprint, w.order_id
    FROM wanted w JOIN taken ON taken.id = w.offer_id WHERE w.key IS NOT NULL
)
INSERT INTO orders (id, user_id, event_id, offer_id, item_id, kind, quantity, unit_price,
                    currency, status, expires_at)
SELECT w.order_id, w.user_id, taken.event_id, taken.id, taken.item_id, 'flash_sale',
       w.quantity, taken.unit_price, taken.currency, 'reserved', taken.expires_at
FROM wanted w JOIN taken ON taken.id = w.offer_id
RETURNING *, (SELECT remaining FROM taken WHERE taken.id = orders.offer_id) AS remaining_after
""")


async def reserve(
    connection: AsyncConnection, batch: list[Reservation]
) -> dict[UUID, tuple[Order, int]]:
    """The orders written, by id, with their offer's units left after the batch."""
    columns = {
        "order_ids": [r.order_id for r in batch],
        "offer_ids": [r.offer_id for r in batch],
        "user_ids": [r.user_id for r in batch],
        "quantities": [r.quantity for r in batch],
        "keys": [r.key for r in batch],
        "fingerprints": [r.fingerprint for r in batch],
    }
    rows = await connection.execute(RESERVE, columns)
    return {row.id: (as_order(row), row.remaining_after) for row in rows}


async def remembered(connection: AsyncConnection, user_id: UUID, key: str) -> Any:
    """The order an idempotency key created, with the fingerprint it was bound to."""
    return (
        await connection.execute(
            sa.select(idempotency_keys.c.fingerprint, orders)
            .join(orders, orders.c.id == idempotency_keys.c.order_id)
            .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
        )
    ).one_or_none()


async def shortage(connection: AsyncConnection, offer_id: UUID) -> str:
    """Why the winner's write found nothing: the offer's state as PostgreSQL sees it."""
    row = (
        await connection.execute(
            sa.select(offers.c.remaining, sale_events.c.status, sale_events.c.ends_at)
            .join(sale_events, sale_events.c.id == offers.c.event_id)
            .where(offers.c.id == offer_id)
        )
    ).one_or_none()
    if row is None:
        return "unknown"
    now = await connection.scalar(sa.select(sa.func.now()))
    if row.status not in domain.LIVE_STATUSES or row.ends_at <= now:
        return "event_not_live"
    return "sold_out"


# Give stock back from orders leaving `reserved` or `confirmed`: one statement for the orders,
# their offers' counts and their buyers' holdings. `due` picks the orders (and locks them).
RELEASE = """
WITH due AS ({due}), gone AS (
    UPDATE orders SET status = :new_status, updated_at = now()
    FROM due WHERE orders.id = due.id
    RETURNING orders.*, due.status AS was
), counts AS (
    UPDATE offers SET
        remaining = offers.remaining + g.units,
        reserved = offers.reserved - g.reserved,
        confirmed = offers.confirmed - g.confirmed
    FROM (
        SELECT offer_id, sum(quantity) AS units,
               coalesce(sum(quantity) FILTER (WHERE was = 'reserved'), 0) AS reserved,
               coalesce(sum(quantity) FILTER (WHERE was = 'confirmed'), 0) AS confirmed
        FROM gone WHERE kind = 'flash_sale' GROUP BY offer_id
    ) g
    WHERE offers.id = g.offer_id
), freed AS (
    UPDATE holdings SET quantity = holdings.quantity - g.units
    FROM (SELECT user_id, offer_id, sum(quantity) AS units FROM gone GROUP BY 1, 2) g
    WHERE holdings.user_id = g.user_id AND holdings.offer_id = g.offer_id
)
SELECT * FROM gone
"""
EXPIRE = sa.text(
    RELEASE.format(
        due="SELECT id, status FROM orders WHERE status = 'reserved' AND expires_at <= now() "
        "ORDER BY expires_at LIMIT 200 FOR UPDATE SKIP LOCKED"
    )
)
CANCEL = sa.text(
    RELEASE.format(
        due="SELECT id, status FROM orders WHERE id = :order_id AND user_id = :user_id "
        "AND status IN ('reserved', 'confirmed') FOR UPDATE"
    )
)


VOID = sa.text(
    RELEASE.format(
        due="SELECT id, status FROM orders WHERE event_id = :event_id AND status = 'reserved' "
        "FOR UPDATE"
    )
)


async def lock_event(connection: AsyncConnection, event_id: UUID) -> None:
    """Until the transaction ends: a cancellation and an award of one event go one at a time."""
    await connection.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(str(event_id), 1)))
    )


async def void_event(connection: AsyncConnection, event: Event) -> list[Any]:
    """A cancelled event: remembered (no award order after it), its reserved orders cancelled,
    and their buyers told by email."""
    await lock_event(connection, event.id)
    await connection.execute(
        insert(voided_events).values(event_id=event.id).on_conflict_do_nothing()
    )
    voided = (
        await connection.execute(VOID, {"new_status": "cancelled", "event_id": event.id})
    ).all()
    if voided:
        await connection.execute(
            insert(notices)
            .values(
                [
                    {
                        "key": f"voided:{order.id}",
                        "payload": {
                            "user_id": str(order.user_id),
                            "template": "order_cancelled",
                            "data": {
                                "title": event.title,
                                "quantity": str(order.quantity),
                                "total": str(order.unit_price * order.quantity),
                                "currency": order.currency,
                            },
                        },
                    }
                    for order in voided
                ]
            )
            .on_conflict_do_nothing()
        )
    return voided


async def is_voided(connection: AsyncConnection, event_id: UUID) -> bool:
    return bool(
        await connection.scalar(sa.select(sa.exists().where(voided_events.c.event_id == event_id)))
    )


CLAIM_NOTICES = sa.text("""
UPDATE notices SET due_at = now() + interval '30 seconds', attempts = attempts + 1
WHERE id IN (
    SELECT id FROM notices WHERE done_at IS NULL AND due_at <= now()
    ORDER BY due_at LIMIT 500 FOR UPDATE SKIP LOCKED
)
RETURNING id, payload, attempts
""")


async def claim_notices(connection: AsyncConnection) -> list[Any]:
    """Due emails, each leased for 30 seconds."""
    return (await connection.execute(CLAIM_NOTICES)).all()


async def finish_notices(
    connection: AsyncConnection, notice_ids: list[int], retry_in: float | None
) -> None:
    values: dict[str, Any] = (
        {"done_at": sa.func.now()}
        if retry_in is None
        else {"due_at": sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, retry_in)}
    )
    await connection.execute(notices.update().where(notices.c.id.in_(notice_ids)).values(**values))


# A refused order undone as if never made: the order, its key, its units and holding.
WITHDRAW = sa.text("""
WITH gone AS (
    DELETE FROM orders WHERE id = :order_id AND status = 'reserved' RETURNING *
), keys AS (
    DELETE FROM idempotency_keys k USING gone WHERE k.order_id = gone.id
), counts AS (
    UPDATE offers SET remaining = remaining + g.quantity, reserved = reserved - g.quantity
    FROM gone g WHERE offers.id = g.offer_id
), freed AS (
    UPDATE holdings SET quantity = holdings.quantity - g.quantity
    FROM gone g WHERE holdings.user_id = g.user_id AND holdings.offer_id = g.offer_id
)
SELECT id FROM gone
""")


async def withdraw(connection: AsyncConnection, order_id: UUID) -> None:
    await connection.execute(WITHDRAW, {"order_id": order_id})


async def expire_due(connection: AsyncConnection) -> list[Any]:
    return (await connection.execute(EXPIRE, {"new_status": "expired"})).all()


async def cancel(connection: AsyncConnection, user_id: UUID, order_id: UUID) -> Any:
    found = (
        await connection.execute(
            CANCEL, {"new_status": "cancelled", "order_id": order_id, "user_id": user_id}
        )
    ).one_or_none()
    if found is None:
        await _explain(connection, user_id, order_id, "cancel")
    return found


CONFIRM = sa.text("""
WITH done AS (
    UPDATE orders SET status = 'confirmed', updated_at = now()
    WHERE id = :order_id AND user_id = :user_id AND status = 'reserved' AND expires_at > now()
    RETURNING *
), counts AS (
    UPDATE offers SET reserved = reserved - done.quantity, confirmed = confirmed + done.quantity
    FROM done WHERE offers.id = done.offer_id AND done.kind = 'flash_sale'
)
SELECT * FROM done
""")


async def confirm(connection: AsyncConnection, user_id: UUID, order_id: UUID) -> Order:
    row = (
        await connection.execute(CONFIRM, {"order_id": order_id, "user_id": user_id})
    ).one_or_none()
    if row is None:
        await _explain(connection, user_id, order_id, "confirm")
    return as_order(row)


async def _explain(connection: AsyncConnection, user_id: UUID, order_id: UUID, action: str):
    order = await get_order(connection, user_id, order_id)
    if order.status == "cancelled" and await is_voided(connection, order.event_id):
        raise domain.EventCancelled("The event was cancelled; this order is void.")
    status = "expired" if order.status == "reserved" else order.status
    raise domain.cannot(action, status)


async def get_order(connection: AsyncConnection, user_id: UUID | None, order_id: UUID) -> Order:
    query = orders.select().where(orders.c.id == order_id)
    if user_id is not None:  # another customer's order is as absent as a made-up id
        query = query.where(orders.c.user_id == user_id)
    row = (await connection.execute(query)).one_or_none()
    if row is None:
        raise domain.OrderNotFound("There is no such order.")
    return as_order(row)


async def list_orders(
    connection: AsyncConnection,
    *,
    user_id: UUID | None = None,
    event_id: UUID | None = None,
    status: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[Order], int]:
    where = []
    if user_id is not None:
        where.append(orders.c.user_id == user_id)
    if event_id is not None:
        where.append(orders.c.event_id == event_id)
    if status is not None:
        where.append(orders.c.status == status)
    total = await connection.scalar(sa.select(sa.func.count()).select_from(orders).where(*where))
    rows = await connection.execute(
        orders.select()
        .where(*where)
        .order_by(orders.c.created_at.desc(), orders.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [as_order(row) for row in rows], total or 0


async def award(connection: AsyncConnection, data: AwardOrder) -> Order:
    """Bidding's winner: one reserved order per (offer, user), however often it is asked;
    none for a cancelled event."""
    await lock_event(connection, data.event_id)
    if await is_voided(connection, data.event_id):
        raise domain.EventCancelled("The event was cancelled; no order is made for it.")
    statement = insert(orders).values(
        id=uuid.uuid4(),
        user_id=data.user_id,
        event_id=data.event_id,
        offer_id=data.offer_id,
        item_id=data.item_id,
        kind=data.kind,
        quantity=data.quantity,
        unit_price=data.unit_price,
        currency=data.currency,
        status="reserved",
        expires_at=data.expires_at,
    )
    await connection.execute(
        statement.on_conflict_do_nothing(
            index_elements=[orders.c.offer_id, orders.c.user_id],
            # a literal, as in the partial index: a bound value stops matching it once
            # PostgreSQL switches the prepared statement to a generic plan
            index_where=sa.text("kind <> 'flash_sale'"),
        )
    )
    row = (
        await connection.execute(
            orders.select().where(
                orders.c.offer_id == data.offer_id,
                orders.c.user_id == data.user_id,
                orders.c.kind != "flash_sale",
            )
        )
    ).one()
    return as_order(row)


async def purchased(connection: AsyncConnection, user_id: UUID, item_id: UUID) -> bool:
    return bool(
        await connection.scalar(
            sa.select(
                sa.exists().where(
                    orders.c.user_id == user_id,
                    orders.c.item_id == item_id,
                    orders.c.status == "confirmed",
                )
            )
        )
    )


# ---------------------------------------------------------------------------- figures


async def offer_counts(connection: AsyncConnection, event_id: UUID) -> list[Any]:
    """Per offer: stock, remaining, reserved, confirmed, orders (all ever made), revenue."""
    made = (
        sa.select(
            orders.c.offer_id,
            sa.func.count().label("orders"),
            sa.func.coalesce(
                sa.func.sum(orders.c.quantity * orders.c.unit_price).filter(
                    orders.c.status == "confirmed"
                ),
                0,
            ).label("revenue"),
        )
        .where(orders.c.event_id == event_id)
        .group_by(orders.c.offer_id)
        .subquery()
    )
    rows = await connection.execute(
        sa.select(
            offers.c.id,
            offers.c.stock,
            offers.c.remaining,
            offers.c.reserved,
            offers.c.confirmed,
            sa.func.coalesce(made.c.orders, 0).label("orders"),
            sa.func.coalesce(made.c.revenue, 0).label("revenue"),
        )
        .outerjoin(made, made.c.offer_id == offers.c.id)
        .where(offers.c.event_id == event_id)
        .order_by(offers.c.id)
    )
    return rows.all()


async def award_counts(connection: AsyncConnection, event_id: UUID) -> Any:
    """Orders of an auction or ranked event (no stock here): count, units, confirmed revenue."""
    return (
        await connection.execute(
            sa.select(
                sa.func.count().label("orders"),
                sa.func.coalesce(sa.func.sum(orders.c.quantity), 0).label("units"),
                sa.func.coalesce(
                    sa.func.sum(orders.c.quantity * orders.c.unit_price).filter(
                        orders.c.status == "confirmed"
                    ),
                    Decimal(0),
                ).label("revenue"),
            ).where(orders.c.event_id == event_id)
        )
    ).one()


# ---------------------------------------------------------------------------- sold out

STOCK_NEWS = sa.text("""
SELECT e.id, bool_and(o.remaining = 0) AS sold_out
FROM sale_events e JOIN offers o ON o.event_id = e.id
WHERE e.status IN ('live', 'sold_out') AND e.ends_at > now()
GROUP BY e.id
HAVING bool_and(o.remaining = 0) <> bool_or(e.reported_sold_out)
""")


async def stock_news(connection: AsyncConnection) -> list[tuple[UUID, bool]]:
    """Open events whose sold-out state differs from what catalog was last told."""
    return [(row.id, row.sold_out) for row in await connection.execute(STOCK_NEWS)]


async def reported(connection: AsyncConnection, event_id: UUID, sold_out: bool) -> None:
    await connection.execute(
        sale_events.update().where(sale_events.c.id == event_id).values(reported_sold_out=sold_out)
    )


async def forget_old_keys(connection: AsyncConnection) -> None:
    await connection.execute(
        idempotency_keys.delete().where(
            idempotency_keys.c.created_at
            < sa.func.now() - sa.text(f"interval '{domain.IDEMPOTENCY_TTL} seconds'")
        )
    )


async def confirmed_orders(connection: AsyncConnection, event_id: UUID) -> int:
    return (
        await connection.scalar(
            sa.select(sa.func.count()).where(
                orders.c.event_id == event_id, orders.c.status == "confirmed"
            )
        )
        or 0
    )
