"""Catalog's tables and the queries over them."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_catalog import domain
from flashbid_catalog.schemas import (
    AuctionInput,
    EventInput,
    FlashSaleInput,
    Item,
    ItemInput,
    Transition,
)
from flashbid_shared.contracts import Event, ItemRef, Offer, Scoring
from flashbid_shared.database import timestamp

metadata = sa.MetaData()


items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("image_url", sa.Text),
    timestamp("created_at", nullable=False, server_default=sa.func.now()),
    timestamp("archived_at"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    timestamp("starts_at", nullable=False),
    timestamp("ends_at", nullable=False),
    sa.Column("reservation_timeout_seconds", sa.Integer),
    sa.Column("soft_close_seconds", sa.Integer),
    sa.Column("extension_seconds", sa.Integer),
    sa.Column("scoring", JSONB),
    # Every change bumps `version`; the sync loop pushes it to purchase or bidding until
    # `synced_version` catches up (retrying after `sync_due_at` when a push fails).
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("synced_version", sa.Integer, nullable=False, server_default="0"),
    timestamp("sync_due_at", nullable=False, server_default=sa.func.now()),
    sa.Column("sync_attempts", sa.Integer, nullable=False, server_default="0"),
    timestamp("created_at", nullable=False, server_default=sa.func.now()),
    timestamp("updated_at", nullable=False, server_default=sa.func.now()),
)

offers = sa.Table(
    "offers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("event_id", sa.Uuid, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_id", sa.Uuid, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    # The headline price and units of any kind: a flash sale's price and stock, a lot's
    # starting price (one unit), a ranked session's upset price and inventory.
    sa.Column("price", sa.Numeric, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("per_user_limit", sa.Integer),
    sa.Column("increment", sa.Text),
    sa.Column("reserve_price", sa.Numeric),
    sa.Column("buy_now_price", sa.Numeric),
)

transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Uuid, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    sa.Column("from_status", sa.Text, nullable=False),
    sa.Column("to_status", sa.Text, nullable=False),
    timestamp("at", nullable=False, server_default=sa.func.clock_timestamp()),
    timestamp("due_at"),  # when the scheduler should have made it: `at - due_at` is the lag
    sa.Column("actor", sa.Text, nullable=False),
)


# ------------------------------------------------------------------------------- items


def _item(row: Any) -> Item:
    return Item(
        id=row.id,
        name=row.name,
        description=row.description,
        category=row.category,
        image_url=row.image_url,
        created_at=row.created_at,
        archived=row.archived_at is not None,
    )


async def create_item(connection: AsyncConnection, data: ItemInput) -> Item:
    row = (
        await connection.execute(
            items.insert()
            .values(id=uuid.uuid4(), **msgspec.structs.asdict(data))
            .returning(*items.c)
        )
    ).one()
    return _item(row)


async def get_item(connection: AsyncConnection, item_id: UUID) -> Item:
    row = (await connection.execute(items.select().where(items.c.id == item_id))).one_or_none()
    if row is None:
        raise domain.ItemNotFound("There is no such item.")
    return _item(row)


async def update_item(connection: AsyncConnection, item_id: UUID, changes: dict) -> Item:
    query = items.update().where(items.c.id == item_id).returning(*items.c)
    row = (await connection.execute(query.values(**changes) if changes else query)).one_or_none()
    if row is None:
        raise domain.ItemNotFound("There is no such item.")
    return _item(row)


async def delete_item(connection: AsyncConnection, item_id: UUID) -> None:
    """An item some event offers is archived (the event still shows it); others are deleted."""
    used = sa.exists().where(offers.c.item_id == item_id)
    archived = await connection.execute(
        items.update()
        .where(items.c.id == item_id, used)
        .values(archived_at=sa.func.coalesce(items.c.archived_at, sa.func.now()))
    )
    if not archived.rowcount:
        deleted = await connection.execute(items.delete().where(items.c.id == item_id))
        if not deleted.rowcount:
            raise domain.ItemNotFound("There is no such item.")


def _contains(column: Any, text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


async def list_items(
    connection: AsyncConnection, search: str | None, category: str | None, limit: int, offset: int
) -> tuple[list[Item], int]:
    where = [items.c.archived_at.is_(None)]
    if search:
        where.append(
            sa.or_(_contains(items.c.name, search), _contains(items.c.description, search))
        )
    if category:
        where.append(items.c.category == category)
    total = await connection.scalar(sa.select(sa.func.count()).select_from(items).where(*where))
    rows = await connection.execute(
        items.select().where(*where).order_by(items.c.name, items.c.id).limit(limit).offset(offset)
    )
    return [_item(row) for row in rows], total or 0


async def item_states(connection: AsyncConnection, ids: set[UUID]) -> dict[UUID, bool]:
    """Known item ids, each with whether it is archived."""
    rows = await connection.execute(
        sa.select(items.c.id, items.c.archived_at.is_not(None)).where(items.c.id.in_(ids))
    )
    return {row[0]: row[1] for row in rows}


# ------------------------------------------------------------------------------ events


def _event_columns(data: EventInput) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "title": data.title,
        "description": data.description,
        "currency": data.currency,
        "starts_at": data.starts_at,
        "ends_at": data.ends_at,
    }
    if isinstance(data, FlashSaleInput):
        columns["reservation_timeout_seconds"] = data.reservation_timeout_seconds
    elif isinstance(data, AuctionInput):
        columns["soft_close_seconds"] = data.soft_close_seconds
        columns["extension_seconds"] = data.extension_seconds
    else:
        columns["scoring"] = msgspec.to_builtins(data.scoring)
    return columns


def _offer_rows(event_id: UUID, data: EventInput) -> list[dict[str, Any]]:
    rows = []
    for position, offer in enumerate(data.offers):
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "event_id": event_id,
            "item_id": offer.item_id,
            "position": position,
            "per_user_limit": None,
            "increment": None,
            "reserve_price": None,
            "buy_now_price": None,
        }
        if isinstance(data, FlashSaleInput):
            row.update(price=domain.money(offer.price, data.currency), quantity=offer.stock)
            row["per_user_limit"] = offer.per_user_limit
        elif isinstance(data, AuctionInput):
            amounts = (offer.starting_price, offer.reserve_price, offer.buy_now_price)
            start, reserve, buy_now = (
                None if a is None else domain.money(a, data.currency) for a in amounts
            )
            increment = offer.increment
            if increment != domain.LADDER:
                increment = str(domain.money(domain.Decimal(increment), data.currency))
            row.update(price=start, quantity=1, increment=increment)
            row.update(reserve_price=reserve, buy_now_price=buy_now)
        else:
            row.update(price=domain.money(offer.upset_price, data.currency))
            row["quantity"] = offer.inventory
        rows.append(row)
    return rows


async def create_event(connection: AsyncConnection, data: EventInput) -> UUID:
    event_id = uuid.uuid4()
    await connection.execute(
        events.insert().values(
            id=event_id, kind=_kind(data), status="draft", **_event_columns(data)
        )
    )
    await connection.execute(offers.insert(), _offer_rows(event_id, data))
    return event_id


def _kind(data: EventInput) -> str:
    return msgspec.inspect.type_info(type(data)).tag  # type: ignore[attr-defined]


async def replace_event(
    connection: AsyncConnection, event_id: UUID, data: EventInput, statuses: frozenset[str]
) -> bool:
    """Overwrite an event's definition if its status is still one of `statuses`."""
    updated = await connection.execute(
        events.update()
        .where(events.c.id == event_id, events.c.status.in_(statuses))
        .values(**_event_columns(data), version=events.c.version + 1, updated_at=sa.func.now())
    )
    if not updated.rowcount:
        return False
    await connection.execute(offers.delete().where(offers.c.event_id == event_id))
    await connection.execute(offers.insert(), _offer_rows(event_id, data))
    return True


def _offer(kind: str, row: Any, public: bool) -> Offer:
    item = ItemRef(id=row.item_id, name=row.name, category=row.category, image_url=row.image_url)
    offer = Offer(id=row.id, item_id=row.item_id, item=item)
    if kind == "flash_sale":
        offer.price, offer.stock, offer.per_user_limit = row.price, row.quantity, row.per_user_limit
    elif kind == "auction":
        offer.starting_price, offer.increment = row.price, row.increment
        offer.buy_now_price = row.buy_now_price
        offer.reserve_price = None if public else row.reserve_price  # bidders see reserve_met
    else:
        offer.upset_price, offer.inventory = row.price, row.quantity
    return offer


async def load_events(
    connection: AsyncConnection, ids: Sequence[UUID], *, public: bool = True
) -> list[Event]:
    """Whole events in the order of `ids` (absent ones are skipped)."""
    if not ids:
        return []
    rows = {r.id: r for r in await connection.execute(events.select().where(events.c.id.in_(ids)))}
    offer_rows = await connection.execute(
        sa.select(offers, items.c.name, items.c.category, items.c.image_url)
        .join(items, items.c.id == offers.c.item_id)
        .where(offers.c.event_id.in_(ids))
        .order_by(offers.c.event_id, offers.c.position)
    )
    by_event: dict[UUID, list[Offer]] = {}
    for row in offer_rows:
        by_event.setdefault(row.event_id, []).append(_offer(rows[row.event_id].kind, row, public))
    return [
        Event(
            id=row.id,
            kind=row.kind,
            title=row.title,
            description=row.description,
            status=row.status,
            currency=row.currency,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            offers=by_event.get(row.id, []),
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            reservation_timeout_seconds=row.reservation_timeout_seconds,
            soft_close_seconds=row.soft_close_seconds,
            extension_seconds=row.extension_seconds,
            scoring=None if row.scoring is None else msgspec.convert(row.scoring, Scoring),
        )
        for row in (rows.get(event_id) for event_id in ids)
        if row is not None
    ]


async def get_event(connection: AsyncConnection, event_id: UUID, *, public: bool = True) -> Event:
    found = await load_events(connection, [event_id], public=public)
    if not found or (public and found[0].status == "draft"):
        raise domain.EventNotFound("There is no such event.")
    return found[0]


SORTS = {
    "starts_at": (events.c.starts_at,),
    "-starts_at": (events.c.starts_at.desc(),),
    "ends_at": (events.c.ends_at,),
    "title": (events.c.title,),
    "-created_at": (events.c.created_at.desc(),),
}


async def list_events(
    connection: AsyncConnection,
    *,
    statuses: Sequence[str],
    kind: str | None = None,
    search: str | None = None,
    price_min: domain.Decimal | None = None,
    price_max: domain.Decimal | None = None,
    sort: str = "-created_at",
    limit: int = 20,
    offset: int = 0,
    public: bool = True,
) -> tuple[list[Event], int]:
    where = [events.c.status.in_(statuses)]
    if kind:
        where.append(events.c.kind == kind)
    if search:
        where.append(
            sa.or_(_contains(events.c.title, search), _contains(events.c.description, search))
        )
    priced = [offers.c.event_id == events.c.id]
    if price_min is not None:
        priced.append(offers.c.price >= price_min)
    if price_max is not None:
        priced.append(offers.c.price <= price_max)
    if len(priced) > 1:
        where.append(sa.exists().where(*priced))
    total = await connection.scalar(sa.select(sa.func.count()).select_from(events).where(*where))
    ids = await connection.scalars(
        sa.select(events.c.id)
        .where(*where)
        .order_by(*SORTS[sort], events.c.id)
        .limit(limit)
        .offset(offset)
    )
    return await load_events(connection, list(ids), public=public), total or 0


async def featured(connection: AsyncConnection, count: int = 3) -> list[Event]:
    """Live events first (ending soonest), then those starting soonest."""
    ids = await connection.scalars(
        sa.select(events.c.id)
        .where(events.c.status.in_(("live", "scheduled")))
        .order_by(
            (events.c.status != "live"),
            sa.case((events.c.status == "live", events.c.ends_at), else_=events.c.starts_at),
        )
        .limit(count)
    )
    return await load_events(connection, list(ids))


async def change_status(
    connection: AsyncConnection, event_id: UUID, action: str, actor: str
) -> None:
    """An admin's publish/open/close/cancel: the row is locked, the rule checked, the change
    recorded, all in the caller's transaction. Asking again for where the event is changes
    nothing."""
    row = (
        await connection.execute(
            sa.select(events.c.status, events.c.ends_at)
            .where(events.c.id == event_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise domain.EventNotFound("There is no such event.")
    now = await connection.scalar(sa.select(sa.func.now()))
    status = domain.next_status(row.status, action, ends_at=row.ends_at, now=now)
    if status is None:  # a retry: the event is there already
        return
    columns: dict[str, Any] = {}
    if action == "open":
        columns["starts_at"] = sa.func.least(events.c.starts_at, now)
    elif action == "close":
        columns["ends_at"] = sa.func.least(events.c.ends_at, now)
    await connection.execute(
        events.update()
        .where(events.c.id == event_id)
        .values(status=status, version=events.c.version + 1, updated_at=now, **columns)
    )
    await connection.execute(
        transitions.insert().values(
            event_id=event_id, from_status=row.status, to_status=status, actor=actor
        )
    )


async def report_stock(connection: AsyncConnection, event_id: UUID, sold_out: bool) -> str:
    """Purchase's word on a live flash sale: sold out, or stock again. Idempotent."""
    before, after = ("live", "sold_out") if sold_out else ("sold_out", "live")
    changed = await connection.execute(
        events.update()
        .where(
            events.c.id == event_id,
            events.c.status == before,
            events.c.ends_at > sa.func.now(),
        )
        .values(status=after, version=events.c.version + 1, updated_at=sa.func.now())
        .returning(events.c.id)
    )
    if changed.one_or_none():
        await connection.execute(
            transitions.insert().values(
                event_id=event_id, from_status=before, to_status=after, actor="purchase"
            )
        )
        return after
    status = await connection.scalar(sa.select(events.c.status).where(events.c.id == event_id))
    if status is None:
        raise domain.EventNotFound("There is no such event.")
    return status


async def lots_closed(
    connection: AsyncConnection, event_id: UUID, ends_at: datetime, closed: bool
) -> str:
    """Bidding's word on a live auction: its lots now end at `ends_at` (a late bid extended
    one), or all of them have closed (`closed`), which ends the event. Idempotent."""
    change: dict[str, Any] = {"status": "ended"} if closed else {}
    moved = await connection.execute(
        events.update()
        .where(
            events.c.id == event_id,
            events.c.kind == "auction",
            events.c.status == "live",
            sa.true() if closed else events.c.ends_at < ends_at,
        )
        .values(
            ends_at=ends_at,
            **change,
            version=events.c.version + 1,
            updated_at=sa.func.now(),
            sync_due_at=sa.func.now(),
        )
        .returning(events.c.id)
    )
    if moved.one_or_none() and closed:
        await connection.execute(
            transitions.insert().values(
                event_id=event_id,
                from_status="live",
                to_status="ended",
                actor="bidding",
                due_at=ends_at,
            )
        )
    return await event_status(connection, event_id)


# The scheduler's one statement: every due event moves once, however many replicas run it.
# An auction's end is bidding's to say (a late bid extends its lots): see `lots_closed`.
ADVANCE = sa.text("""
WITH due AS (
    SELECT id, status, starts_at, ends_at, ends_at <= now() AND kind <> 'auction' AS over
    FROM events
    WHERE (status = 'scheduled' AND starts_at <= now())
       OR (status IN ('scheduled', 'live', 'sold_out') AND ends_at <= now() AND kind <> 'auction')
    ORDER BY LEAST(starts_at, ends_at)
    LIMIT 500
    FOR UPDATE SKIP LOCKED
), changed AS (
    UPDATE events SET
        status = CASE WHEN due.over THEN 'ended' ELSE 'live' END,
        version = events.version + 1,
        updated_at = now(),
        sync_due_at = now()
    FROM due WHERE events.id = due.id
    RETURNING events.id, due.status AS from_status, events.status AS to_status,
        CASE WHEN due.over THEN due.ends_at ELSE due.starts_at END AS due_at
)
INSERT INTO transitions (event_id, from_status, to_status, due_at, actor)
SELECT id, from_status, to_status, due_at, 'scheduler' FROM changed
RETURNING event_id, to_status
""")

NEXT_DUE = sa.text("""
SELECT LEAST(
    (SELECT min(starts_at) FROM events WHERE status = 'scheduled'),
    (SELECT min(ends_at) FROM events
     WHERE status IN ('scheduled', 'live', 'sold_out') AND kind <> 'auction')
) - now()
""")


async def advance(connection: AsyncConnection) -> list[tuple[UUID, str]]:
    return [(row.event_id, row.to_status) for row in await connection.execute(ADVANCE)]


async def seconds_to_next_due(connection: AsyncConnection) -> float | None:
    wait = await connection.scalar(NEXT_DUE)
    return None if wait is None else wait.total_seconds()


# Claim events whose latest version has not reached purchase or bidding; the lease keeps
# another replica from pushing the same one meanwhile (no lock is held during the call).
CLAIM_UNSYNCED = sa.text("""
UPDATE events SET sync_due_at = now() + interval '30 seconds', sync_attempts = sync_attempts + 1
WHERE id IN (
    SELECT id FROM events
    WHERE status <> 'draft' AND synced_version < version AND sync_due_at <= now()
    ORDER BY sync_due_at LIMIT :batch
    FOR UPDATE SKIP LOCKED
)
RETURNING id, sync_attempts
""")


async def claim_unsynced(connection: AsyncConnection, batch: int = 20) -> dict[UUID, int]:
    rows = await connection.execute(CLAIM_UNSYNCED, {"batch": batch})
    return {row.id: row.sync_attempts for row in rows}


async def mark_synced(connection: AsyncConnection, event_id: UUID, version: int) -> None:
    await connection.execute(
        events.update()
        .where(events.c.id == event_id)
        .values(
            synced_version=sa.func.greatest(events.c.synced_version, version),
            sync_attempts=0,
            sync_due_at=sa.func.now(),
        )
    )


async def retry_sync_later(connection: AsyncConnection, event_id: UUID, delay: float) -> None:
    await connection.execute(
        events.update()
        .where(events.c.id == event_id)
        .values(sync_due_at=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, delay))
    )


async def count_by_status(connection: AsyncConnection) -> dict[str, int]:
    rows = await connection.execute(
        sa.select(events.c.status, sa.func.count()).group_by(events.c.status)
    )
    return {status: count for status, count in rows}


async def recent_ids(connection: AsyncConnection, limit: int = 25) -> list[UUID]:
    """The dashboard's rows: open events (the latest to start first), then the latest ended."""
    ids = await connection.scalars(
        sa.select(events.c.id)
        .where(events.c.status.in_(("live", "sold_out", "ended")))
        .order_by(
            events.c.status == "ended",
            sa.case(
                (events.c.status == "ended", events.c.ends_at), else_=events.c.starts_at
            ).desc(),
        )
        .limit(limit)
    )
    return list(ids)


async def transitions_of(connection: AsyncConnection, event_id: UUID) -> list[Transition]:
    rows = await connection.execute(
        transitions.select().where(transitions.c.event_id == event_id).order_by(transitions.c.id)
    )
    return [
        Transition(
            from_status=r.from_status,
            to_status=r.to_status,
            at=r.at,
            due_at=r.due_at,
            actor=r.actor,
        )
        for r in rows
    ]


async def synced_version(connection: AsyncConnection, event_id: UUID) -> int:
    return (
        await connection.scalar(sa.select(events.c.synced_version).where(events.c.id == event_id))
        or 0
    )


async def now(connection: AsyncConnection) -> datetime:
    """The database's clock: the one the scheduler goes by."""
    return await connection.scalar(sa.select(sa.func.now()))


async def event_status(connection: AsyncConnection, event_id: UUID) -> str:
    status = await connection.scalar(sa.select(events.c.status).where(events.c.id == event_id))
    if status is None:
        raise domain.EventNotFound("There is no such event.")
    return status
