"""Bidding's tables and the statements over them. PostgreSQL holds every accepted bid before
its answer goes out; Redis holds a copy of the live state that can be rebuilt from here."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_bidding import domain
from flashbid_shared.contracts import Event
from flashbid_shared.database import PostgresLine, timestamp

metadata = sa.MetaData()
Money = sa.Numeric


events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    timestamp("starts_at", nullable=False),
    timestamp("ends_at", nullable=False),
    sa.Column("soft_close_seconds", sa.Integer, nullable=False, server_default="0"),
    sa.Column("extension_seconds", sa.Integer, nullable=False, server_default="0"),
    sa.Column("scoring", JSONB),
    timestamp("starting_noticed_at"),
    timestamp("ended_noticed_at"),
)

lots = sa.Table(
    "lots",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("event_id", sa.Uuid, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("item_id", sa.Uuid, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("starting_price", Money, nullable=False),
    sa.Column("increment", sa.Text, nullable=False),
    sa.Column("reserve_price", Money),
    sa.Column("buy_now_price", Money),
    sa.Column("current_price", Money),
    sa.Column("leader_id", sa.Uuid),
    sa.Column("leader_name", sa.Text),
    sa.Column("leader_max", Money),
    sa.Column("bid_count", sa.Integer, nullable=False, server_default="0"),
    timestamp("ends_at", nullable=False),
    sa.Column("extensions", sa.Integer, nullable=False, server_default="0"),
    # open -> sold | unsold | cancelled, once, by the settlement
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    timestamp("settled_at"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("event_id", sa.Uuid, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("item_id", sa.Uuid, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("upset_price", Money, nullable=False),
    sa.Column("inventory", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),  # settled, cancelled
    sa.Column("final_price", Money),
    timestamp("settled_at"),
)

participants = sa.Table(
    "participants",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, primary_key=True),
    timestamp("joined_at", nullable=False, server_default=sa.func.now()),
)

lot_bids = sa.Table(
    "lot_bids",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("lot_id", sa.Uuid, nullable=False),
    sa.Column("bidder_id", sa.Uuid, nullable=False),
    sa.Column("bidder_name", sa.Text, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("automatic", sa.Boolean, nullable=False),
    timestamp("placed_at", nullable=False, server_default=sa.func.clock_timestamp()),
)

# A customer's one bid per ranked session (raised, never lowered), and every change to it.
ranked_bids = sa.Table(
    "ranked_bids",
    metadata,
    sa.Column("offer_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, primary_key=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("price", Money, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    timestamp("placed_at", nullable=False),
)

session_bids = sa.Table(
    "session_bids",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("offer_id", sa.Uuid, nullable=False),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("price", Money, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    timestamp("placed_at", nullable=False),
)

rankings = sa.Table(
    "rankings",
    metadata,
    sa.Column("offer_id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, primary_key=True),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("price", Money, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("won", sa.Boolean, nullable=False),
)

bid_keys = sa.Table(
    "bid_keys",
    metadata,
    sa.Column("user_id", sa.Uuid, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("response", JSONB, nullable=False),
    timestamp("created_at", nullable=False, server_default=sa.func.now()),
)

# Follow-ups of settlement and bids (orders in purchase, emails through auth), retried until
# they succeed; `key` makes each one happen once (and debounces outbid emails).
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    timestamp("due_at", nullable=False, server_default=sa.func.now()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    timestamp("done_at"),
)


async def now(connection: AsyncConnection) -> datetime:
    return await connection.scalar(sa.select(sa.func.now()))


async def clock(connection: AsyncConnection) -> datetime:
    """The time as of this call (`now()` is the transaction's start, before any lock wait)."""
    return await connection.scalar(sa.select(sa.func.clock_timestamp()))


# ---------------------------------------------------------------------------- events


async def apply_event(connection: AsyncConnection, event: Event) -> tuple[bool, bool]:
    """Catalog's push, kept only if newer: whether it was, and whether the event's status
    changed. Lots and sessions are (re)defined while no bid exists. While an auction is live
    its lots' ends are ours (a late bid extends one): a close only brings them forward, a
    cancel cancels them; and an auction that ended here (its last lot closed) stays ended."""
    scoring = (
        None
        if event.scoring is None
        else {
            "formula": event.scoring.formula,
            "alpha": event.scoring.alpha,
            "beta": event.scoring.beta,
            "gamma": event.scoring.gamma,
        }
    )
    values = {
        "id": event.id,
        "kind": event.kind,
        "status": event.status,
        "version": event.version,
        "title": event.title,
        "currency": event.currency,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "soft_close_seconds": event.soft_close_seconds or 0,
        "extension_seconds": event.extension_seconds or 0,
        "scoring": scoring,
    }
    before = await connection.scalar(
        sa.select(events.c.status).where(events.c.id == event.id).with_for_update()
    )
    statement = insert(events).values(values)
    kept_ended = sa.and_(events.c.status == "ended", statement.excluded.status == "live")
    applied = await connection.scalar(
        statement.on_conflict_do_update(
            index_elements=[events.c.id],
            set_={k: statement.excluded[k] for k in values if k not in ("id", "status")}
            | {"status": sa.case((kept_ended, events.c.status), else_=statement.excluded.status)},
            where=events.c.version < statement.excluded.version,
        ).returning(events.c.status)
    )
    if applied is None:
        return False, False
    for position, offer in enumerate(event.offers):
        if event.kind == "auction":
            row = {
                "id": offer.id,
                "event_id": event.id,
                "item_id": offer.item_id,
                "position": position,
                "starting_price": offer.starting_price,
                "increment": offer.increment or "ladder",
                "reserve_price": offer.reserve_price,
                "buy_now_price": offer.buy_now_price,
                "ends_at": event.ends_at,
            }
            upsert = insert(lots).values(row)
            await connection.execute(
                upsert.on_conflict_do_update(
                    index_elements=[lots.c.id],
                    set_={k: upsert.excluded[k] for k in row if k != "id" and k != "ends_at"},
                    where=lots.c.bid_count == 0,
                )
            )
        else:
            row = {
                "id": offer.id,
                "event_id": event.id,
                "item_id": offer.item_id,
                "position": position,
                "upset_price": offer.upset_price,
                "inventory": offer.inventory,
            }
            upsert = insert(sessions).values(row)
            await connection.execute(
                upsert.on_conflict_do_update(
                    index_elements=[sessions.c.id],
                    set_={k: upsert.excluded[k] for k in row if k != "id"},
                )
            )
    kept = [offer.id for offer in event.offers]
    await connection.execute(
        lots.delete().where(lots.c.event_id == event.id, lots.c.id.not_in(kept))
    )
    await connection.execute(
        sessions.delete().where(sessions.c.event_id == event.id, sessions.c.id.not_in(kept))
    )
    if event.status == "cancelled":
        for table in (lots, sessions):
            await connection.execute(
                table.update()
                .where(table.c.event_id == event.id, table.c.status == "open")
                .values(status="cancelled", settled_at=sa.func.now())
            )
    elif event.status == "ended":  # closed: no lot ends later than the event
        await connection.execute(
            lots.update()
            .where(lots.c.event_id == event.id, lots.c.status == "open")
            .values(ends_at=sa.func.least(lots.c.ends_at, event.ends_at))
        )
    elif event.status in ("draft", "scheduled"):  # the schedule, and the extensions earned
        await connection.execute(
            lots.update()
            .where(lots.c.event_id == event.id, lots.c.status == "open")
            .values(
                ends_at=event.ends_at
                + sa.func.make_interval(
                    0, 0, 0, 0, 0, 0, lots.c.extensions * (event.extension_seconds or 0)
                )
            )
        )
    return True, applied != before


async def get_event(connection: AsyncConnection, event_id: UUID) -> Any:
    row = (await connection.execute(events.select().where(events.c.id == event_id))).one_or_none()
    if row is None:
        raise domain.NotFound("Bidding does not know this event.")
    return row


async def join(connection: AsyncConnection, event_id: UUID, user_id: UUID) -> None:
    await connection.execute(
        insert(participants).values(event_id=event_id, user_id=user_id).on_conflict_do_nothing()
    )


async def has_joined(connection: AsyncConnection, event_id: UUID, user_id: UUID) -> bool:
    return bool(
        await connection.scalar(
            sa.select(
                sa.exists().where(
                    participants.c.event_id == event_id, participants.c.user_id == user_id
                )
            )
        )
    )


async def events_of(connection: AsyncConnection, user_id: UUID) -> list[Any]:
    """The events a customer joined or bid in, newest first."""
    joined = sa.select(participants.c.event_id).where(participants.c.user_id == user_id)
    bid = (
        sa.select(sessions.c.event_id)
        .join(ranked_bids, ranked_bids.c.offer_id == sessions.c.id)
        .where(ranked_bids.c.user_id == user_id)
    )
    rows = await connection.execute(
        events.select()
        .where(events.c.id.in_(joined.union(bid)))
        .order_by(events.c.starts_at.desc(), events.c.id)
    )
    return rows.all()  # all of them: the page's total counts them


# ------------------------------------------------------------------------------ lots

LOT_WITH_EVENT = sa.select(
    lots,
    events.c.status.label("event_status"),
    events.c.starts_at,
    events.c.title,
    events.c.currency,
    events.c.soft_close_seconds,
    events.c.extension_seconds,
).join(events, events.c.id == lots.c.event_id)


async def lot(connection: AsyncConnection, lot_id: UUID, *, lock: bool = False) -> Any:
    query = LOT_WITH_EVENT.where(lots.c.id == lot_id)
    row = (
        await connection.execute(query.with_for_update(of=lots) if lock else query)
    ).one_or_none()
    if row is None:
        raise domain.NotFound("There is no such lot.")
    return row


async def lots_of(connection: AsyncConnection, event_id: UUID) -> list[Any]:
    rows = await connection.execute(
        LOT_WITH_EVENT.where(lots.c.event_id == event_id).order_by(lots.c.position)
    )
    return rows.all()


async def save_lot(
    connection: AsyncConnection, after: domain.Lot, leader_name: str | None, status: str = "open"
) -> None:
    await connection.execute(
        lots.update()
        .where(lots.c.id == after.id)
        .values(
            current_price=after.current_price,
            leader_id=after.leader_id,
            leader_name=leader_name,
            leader_max=after.leader_max,
            bid_count=after.bid_count,
            ends_at=after.ends_at,
            extensions=after.extensions,
            status=status,
            settled_at=None if status == "open" else sa.func.now(),
        )
    )


async def record_bids(
    connection: AsyncConnection, lot_id: UUID, bids: list[tuple[UUID, str, Decimal, bool]]
) -> None:
    if bids:
        await connection.execute(
            lot_bids.insert(),
            [
                {"lot_id": lot_id, "bidder_id": b, "bidder_name": n, "amount": a, "automatic": auto}
                for b, n, a, auto in bids
            ],
        )


async def bid_history(connection: AsyncConnection, lot_id: UUID, limit: int) -> list[Any]:
    rows = await connection.execute(
        lot_bids.select()
        .where(lot_bids.c.lot_id == lot_id)
        .order_by(lot_bids.c.id.desc())
        .limit(limit)
    )
    return rows.all()


async def lock_key(connection: AsyncConnection, user_id: UUID, key: str) -> None:
    """Until the transaction ends: requests with one customer's key go one at a time."""
    await connection.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"{user_id}:{key}", 0)))
    )


async def remembered_bid(connection: AsyncConnection, user_id: UUID, key: str) -> Any:
    return (
        await connection.execute(
            bid_keys.select().where(bid_keys.c.user_id == user_id, bid_keys.c.key == key)
        )
    ).one_or_none()


async def remember_bid(
    connection: AsyncConnection, user_id: UUID, key: str, fingerprint: str, response: dict
) -> None:
    await connection.execute(
        bid_keys.insert().values(
            user_id=user_id, key=key, fingerprint=fingerprint, response=response
        )
    )


# --------------------------------------------------------------------------- sessions

SESSION_WITH_EVENT = sa.select(
    sessions,
    events.c.status.label("event_status"),
    events.c.starts_at,
    events.c.ends_at,
    events.c.title,
    events.c.currency,
    events.c.scoring,
).join(events, events.c.id == sessions.c.event_id)


async def session(connection: AsyncConnection, offer_id: UUID) -> Any:
    row = (
        await connection.execute(SESSION_WITH_EVENT.where(sessions.c.id == offer_id))
    ).one_or_none()
    if row is None:
        raise domain.NotFound("There is no such ranked session.")
    return row


async def sessions_of(connection: AsyncConnection, event_id: UUID) -> list[Any]:
    rows = await connection.execute(
        SESSION_WITH_EVENT.where(sessions.c.event_id == event_id).order_by(sessions.c.position)
    )
    return rows.all()


# Many customers' bids in one statement (and one commit): a bid is kept only if its session
# is open as of now and it raises the customer's current one; every kept change also goes to
# the history. The event's row is share-locked while the statement runs: a push that closes
# the event (an update of that row) waits for it, and a bid after that push finds the event
# closed; settlement skips an event a batch holds, so it sees the batch's bids.
RAISE_BIDS = """
WITH incoming AS (
    SELECT * FROM unnest(
        $1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::float8[], $6::timestamptz[]
    ) AS t(offer_id, user_id, display_name, price, score, placed_at)
), open AS (
    SELECT s.id FROM sessions s JOIN events e ON e.id = s.event_id
    WHERE s.id IN (SELECT offer_id FROM incoming) AND s.status = 'open'
      AND (e.status IN ('live', 'sold_out')
           OR (e.status = 'scheduled' AND e.starts_at <= clock_timestamp()))
      AND clock_timestamp() < e.ends_at
    FOR SHARE OF e
), kept AS (
    INSERT INTO ranked_bids (offer_id, user_id, display_name, price, score, placed_at)
    SELECT i.* FROM incoming i JOIN open o ON o.id = i.offer_id
    ON CONFLICT (offer_id, user_id) DO UPDATE SET
        price = EXCLUDED.price, score = EXCLUDED.score,
        placed_at = EXCLUDED.placed_at, display_name = EXCLUDED.display_name
    WHERE EXCLUDED.price > ranked_bids.price
    RETURNING offer_id, user_id, price, score, placed_at
), logged AS (
    INSERT INTO session_bids (offer_id, user_id, price, score, placed_at)
    SELECT offer_id, user_id, price, score, placed_at FROM kept
)
SELECT i.offer_id, i.user_id, (o.id IS NOT NULL) AS open, (k.user_id IS NOT NULL) AS raised,
       r.price AS current
FROM incoming i
LEFT JOIN open o ON o.id = i.offer_id
LEFT JOIN kept k ON k.offer_id = i.offer_id AND k.user_id = i.user_id
LEFT JOIN ranked_bids r ON r.offer_id = i.offer_id AND r.user_id = i.user_id
"""


async def raise_bids(line: PostgresLine, bids: list[tuple]) -> list[Any]:
    """`bids`: (offer, user, name, price, score, placed_at), at most one per (offer, user), on
    the line of RAISE_BIDS. Answers, in order: (offer_id, user_id, open, raised, current price
    before the statement)."""
    columns = list(zip(*bids, strict=True)) or [()] * 6
    return await line.fetch(*(list(column) for column in columns))


async def ranked_bids_of(connection: AsyncConnection, offer_id: UUID) -> list[Any]:
    rows = await connection.execute(
        ranked_bids.select()
        .where(ranked_bids.c.offer_id == offer_id)
        .order_by(ranked_bids.c.score.desc(), ranked_bids.c.placed_at)
    )
    return rows.all()


async def open_sessions(connection: AsyncConnection) -> list[UUID]:
    return list(
        await connection.scalars(sa.select(sessions.c.id).where(sessions.c.status == "open"))
    )


async def lots_end(connection: AsyncConnection, event_id: UUID) -> tuple[datetime, bool]:
    """When the auction's lots end (the latest), and whether all of them have closed."""
    row = (
        await connection.execute(
            sa.select(sa.func.max(lots.c.ends_at), sa.func.bool_and(lots.c.status != "open")).where(
                lots.c.event_id == event_id
            )
        )
    ).one()
    return row[0], bool(row[1])


# Auctions still open here whose every lot has closed: ended, each once. An event row another
# transaction holds (a push being applied) is left for the next round.
END_CLOSED_AUCTIONS = sa.text("""
UPDATE events SET status = 'ended'
WHERE id IN (
    SELECT e.id FROM events e
    WHERE e.kind = 'auction' AND e.status IN ('scheduled', 'live')
      AND EXISTS (SELECT 1 FROM lots WHERE event_id = e.id)
      AND NOT EXISTS (SELECT 1 FROM lots WHERE event_id = e.id AND status = 'open')
    FOR UPDATE SKIP LOCKED
)
RETURNING id
""")


async def end_closed_auctions(connection: AsyncConnection) -> list[UUID]:
    return list(await connection.scalars(END_CLOSED_AUCTIONS))


# ------------------------------------------------------------------------- settlement

SETTLE_LOTS = sa.text("""
WITH due AS (
    SELECT id FROM lots WHERE status = 'open' AND ends_at <= now()
    ORDER BY ends_at LIMIT 100 FOR UPDATE SKIP LOCKED
)
UPDATE lots SET settled_at = now(), status = CASE
    WHEN leader_id IS NOT NULL AND (reserve_price IS NULL OR current_price >= reserve_price)
    THEN 'sold' ELSE 'unsold' END
FROM due WHERE lots.id = due.id
RETURNING lots.*
""")

SETTLE_SESSIONS = sa.text("""
WITH due AS (
    SELECT s.id FROM sessions s JOIN events e ON e.id = s.event_id
    WHERE s.status = 'open' AND e.ends_at <= now() AND e.status <> 'cancelled'
    ORDER BY e.ends_at LIMIT 20 FOR UPDATE OF s, e SKIP LOCKED
)
UPDATE sessions SET status = 'settled', settled_at = now()
FROM due WHERE sessions.id = due.id
RETURNING sessions.*
""")

RANK_SESSION = sa.text("""
WITH ranked AS (
    SELECT offer_id, user_id, display_name, price, score,
           row_number() OVER (ORDER BY score DESC, placed_at, user_id) AS rank
    FROM ranked_bids WHERE offer_id = :offer_id
)
INSERT INTO rankings (offer_id, user_id, rank, display_name, price, score, won)
SELECT offer_id, user_id, rank, display_name, price, score, rank <= :inventory FROM ranked
RETURNING user_id, rank, price, won
""")


async def settle_lots(connection: AsyncConnection) -> list[Any]:
    """Lots whose (possibly extended) end has passed: each settled once, by one replica."""
    return (await connection.execute(SETTLE_LOTS)).all()


async def settle_sessions(connection: AsyncConnection) -> list[tuple[Any, list[Any]]]:
    settled = []
    for session_row in (await connection.execute(SETTLE_SESSIONS)).all():
        ranked = (
            await connection.execute(
                RANK_SESSION,
                {"offer_id": session_row.id, "inventory": session_row.inventory},
            )
        ).all()
        winners = [r.price for r in ranked if r.won]
        if winners:
            await connection.execute(
                sessions.update()
                .where(sessions.c.id == session_row.id)
                .values(final_price=min(winners))
            )
        settled.append((session_row, ranked))
    return settled


async def rankings_of(connection: AsyncConnection, offer_id: UUID, limit: int) -> list[Any]:
    rows = await connection.execute(
        rankings.select()
        .where(rankings.c.offer_id == offer_id)
        .order_by(rankings.c.rank)
        .limit(limit)
    )
    return rows.all()


async def won_by(connection: AsyncConnection, user_id: UUID) -> list[Any]:
    """What a customer won: lots (at the final price) and ranked units (at their own bid)."""
    lot_rows = await connection.execute(
        sa.select(
            lots.c.event_id,
            events.c.title,
            lots.c.id.label("offer_id"),
            lots.c.item_id,
            lots.c.current_price.label("price"),
            events.c.currency,
            lots.c.settled_at,
        )
        .join(events, events.c.id == lots.c.event_id)
        .where(lots.c.leader_id == user_id, lots.c.status == "sold")
    )
    session_rows = await connection.execute(
        sa.select(
            sessions.c.event_id,
            events.c.title,
            sessions.c.id.label("offer_id"),
            sessions.c.item_id,
            rankings.c.price,
            events.c.currency,
            sessions.c.settled_at,
        )
        .join(events, events.c.id == sessions.c.event_id)
        .join(rankings, rankings.c.offer_id == sessions.c.id)
        .where(rankings.c.user_id == user_id, rankings.c.won)
    )
    return sorted([*lot_rows, *session_rows], key=lambda r: r.settled_at, reverse=True)


# ------------------------------------------------------------------------------ tasks


async def add_task(
    connection: AsyncConnection, key: str, kind: str, payload: dict, delay: float = 0
) -> None:
    """Once per key: a second task with the same key is dropped (that is the debounce)."""
    await add_tasks(connection, kind, {key: payload}, delay)


# Many tasks in one statement of one shape: a storm queues a thousand outbid emails a second,
# and SQLAlchemy takes ~0.15 ms per row to compile a multi-row VALUES (a 220 ms stall at 1,500).
ADD_TASKS = sa.text("""
INSERT INTO tasks (key, kind, payload, due_at)
SELECT key, :kind, CAST(payload AS jsonb), now() + make_interval(secs => :delay)
FROM unnest(CAST(:keys AS text[]), CAST(:payloads AS text[])) AS t(key, payload)
ON CONFLICT (key) DO NOTHING
""")


async def add_tasks(
    connection: AsyncConnection, kind: str, payloads: dict[str, dict], delay: float = 0
) -> None:
    """Many tasks in one statement, each once per key."""
    await connection.execute(
        ADD_TASKS,
        {
            "kind": kind,
            "delay": delay,
            "keys": list(payloads),
            "payloads": [msgspec.json.encode(p).decode() for p in payloads.values()],
        },
    )


# Ordered as the pending tasks' index is (awards first, then by due time), to read it in order.
CLAIM_TASKS = sa.text("""
UPDATE tasks SET due_at = now() + interval '30 seconds', attempts = attempts + 1
WHERE id IN (
    SELECT id FROM tasks WHERE done_at IS NULL AND due_at <= now() AND kind = :kind
    ORDER BY kind <> 'award', due_at LIMIT :limit FOR UPDATE SKIP LOCKED
)
RETURNING id, kind, payload, attempts
""")


async def claim_tasks(connection: AsyncConnection, kind: str, limit: int) -> list[Any]:
    """Up to `limit` due tasks of this kind, each leased for 30 seconds."""
    return (await connection.execute(CLAIM_TASKS, {"kind": kind, "limit": limit})).all()


async def finish_tasks(
    connection: AsyncConnection, task_ids: list[int], retry_in: float | None
) -> None:
    """Done, or due again in `retry_in` seconds."""
    values: dict[str, Any] = (
        {"done_at": sa.func.now()}
        if retry_in is None
        else {"due_at": sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, retry_in)}
    )
    await connection.execute(tasks.update().where(tasks.c.id.in_(task_ids)).values(**values))


# Done tasks are kept a week (what was sent, and their keys' debounce), then deleted: every
# ranked storm leaves thousands of sent outbid emails behind.
DONE_TASKS_KEPT = timedelta(days=7)


async def purge_done_tasks(connection: AsyncConnection) -> None:
    kept_since = sa.func.now() - DONE_TASKS_KEPT
    await connection.execute(tasks.delete().where(tasks.c.done_at < kept_since))


async def unsettled_event_ids(connection: AsyncConnection) -> list[UUID]:
    rows = await connection.scalars(
        sa.select(events.c.id).where(events.c.status.in_(("scheduled", "live", "sold_out")))
    )
    return list(rows)


async def figures(connection: AsyncConnection, event_id: UUID) -> tuple[int, int]:
    """Bids placed and distinct bidders (or joiners) of an event."""
    lot_ids = sa.select(lots.c.id).where(lots.c.event_id == event_id)
    offer_ids = sa.select(sessions.c.id).where(sessions.c.event_id == event_id)
    bids = (
        await connection.scalar(
            sa.select(sa.func.count()).where(lot_bids.c.lot_id.in_(lot_ids), ~lot_bids.c.automatic)
        )
        or 0
    ) + (
        await connection.scalar(
            sa.select(sa.func.count()).where(session_bids.c.offer_id.in_(offer_ids))
        )
        or 0
    )
    people = sa.union(
        sa.select(participants.c.user_id).where(participants.c.event_id == event_id),
        sa.select(ranked_bids.c.user_id).where(ranked_bids.c.offer_id.in_(offer_ids)),
    ).subquery()
    participants_count = await connection.scalar(sa.select(sa.func.count()).select_from(people))
    return bids, participants_count or 0


# Reminders and wrap-ups for everyone taking part (joined, or bid in a ranked session), each
# once per event and person whatever the replicas: the task key is the guard (NOT EXISTS keeps
# the rounds after the first from writing, ON CONFLICT settles a race between replicas).
PEOPLE = """
    SELECT event_id, user_id FROM participants
    UNION SELECT s.event_id, b.user_id FROM ranked_bids b JOIN sessions s ON s.id = b.offer_id
"""
# Each event's participants are emailed once before it starts and once after it has ended:
# the event is marked in the same statement, so each run looks at new events only.
NOTIFY_STARTING = sa.text(f"""
WITH due AS (
    UPDATE events SET starting_noticed_at = now()
    WHERE starting_noticed_at IS NULL AND status = 'scheduled'
      AND starts_at BETWEEN now() AND now() + interval '10 minutes'
    RETURNING id, title, starts_at
)
INSERT INTO tasks (key, kind, payload)
SELECT 'starting:' || e.id || ':' || p.user_id, 'notify', jsonb_build_object(
    'user_id', p.user_id, 'template', 'event_starting', 'data', jsonb_build_object(
        'title', e.title,
        'starts_at', to_char(e.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
        'link', :link || e.id))
FROM due e JOIN ({PEOPLE}) p ON p.event_id = e.id
ON CONFLICT (key) DO NOTHING
""")
NOTIFY_ENDED = sa.text(f"""
WITH due AS (
    UPDATE events e SET ended_noticed_at = now()
    WHERE e.ended_noticed_at IS NULL AND e.ends_at <= now() AND e.status <> 'cancelled'
      AND NOT EXISTS (SELECT 1 FROM lots WHERE event_id = e.id AND status = 'open')
      AND NOT EXISTS (SELECT 1 FROM sessions WHERE event_id = e.id AND status = 'open')
    RETURNING e.id, e.title
)
INSERT INTO tasks (key, kind, payload)
SELECT 'ended:' || e.id || ':' || p.user_id, 'notify', jsonb_build_object(
    'user_id', p.user_id, 'template', 'event_ended', 'data', jsonb_build_object(
        'title', e.title, 'link', :link || e.id))
FROM due e JOIN ({PEOPLE}) p ON p.event_id = e.id
ON CONFLICT (key) DO NOTHING
""")


async def notify_participants(connection: AsyncConnection, link: str) -> int:
    starting = await connection.execute(NOTIFY_STARTING, {"link": link})
    ended = await connection.execute(NOTIFY_ENDED, {"link": link})
    return starting.rowcount + ended.rowcount
