"""The flash-sale hot path against the real Redis and PostgreSQL, with real concurrency."""

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from flashbid_purchase import domain, store
from flashbid_purchase.gate import Gate
from flashbid_purchase.sales import Sales
from flashbid_shared.contracts import AwardOrder, Event, Offer, UserSummary
from flashbid_shared.database import redis_client, warm
from flashbid_shared.redisline import RedisLine
from flashbid_shared.tokens import Principal
from tests_support import cancelled_after

pytestmark = pytest.mark.stack
SCRATCH_REDIS_DB = 9


class ActiveUsers:
    """Auth's directory, as a fake: everyone is active."""

    async def get(self, user_id: uuid.UUID) -> UserSummary:
        return UserSummary(
            id=user_id, display_name="x", weight=1.0, email_verified=True, is_active=True
        )


def buyer() -> Principal:
    return Principal(subject=str(uuid.uuid4()), role="customer", email_verified=True)


def flash_sale(stock: int, limit: int = 1, timeout: int = 600) -> Event:
    now = datetime.now(UTC)
    return Event(
        id=uuid.uuid4(),
        kind="flash_sale",
        title="Test sale",
        description="",
        status="live",
        currency="EUR",
        starts_at=now - timedelta(seconds=1),
        ends_at=now + timedelta(hours=1),
        offers=[
            Offer(
                id=uuid.uuid4(),
                item_id=uuid.uuid4(),
                price=Decimal("9.99"),
                stock=stock,
                per_user_limit=limit,
            )
        ],
        version=1,
        created_at=now,
        updated_at=now,
        reservation_timeout_seconds=timeout,
    )


@pytest.fixture
def sale(profile, scratch_database):
    """`run(scenario)`: runs `scenario(sales)` against a new database and an empty Redis."""
    url = scratch_database("purchase")

    def run(scenario):
        async def main():
            engine = create_async_engine(url, pool_size=20, max_overflow=0)
            redis_url = f"redis://127.0.0.1:{profile.ports['redis']}/{SCRATCH_REDIS_DB}"
            redis, line = redis_client(redis_url), RedisLine(redis_url)
            await redis.flushdb()
            sales = Sales(engine, Gate(redis, line), ActiveUsers(), require_verified=True)
            try:
                return await scenario(sales)
            finally:
                await redis.flushdb()
                await line.aclose()
                await redis.aclose()
                await engine.dispose()

        return asyncio.run(main())

    return run


async def attempt(sales: Sales, who: Principal, offer_id, quantity=1, key=None) -> str:
    try:
        await sales.place_order(who, offer_id, quantity, key)
        return "ok"
    except (domain.SoldOut, domain.LimitReached, domain.EventNotLive) as refused:
        return type(refused).__name__


async def counts(sales: Sales, offer_id) -> tuple[int, int, int, int, int]:
    """stock, remaining, reserved, confirmed, and units in live orders, from PostgreSQL."""
    async with sales.engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(
                    store.offers.c.stock,
                    store.offers.c.remaining,
                    store.offers.c.reserved,
                    store.offers.c.confirmed,
                ).where(store.offers.c.id == offer_id)
            )
        ).one()
        units = await connection.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(store.orders.c.quantity), 0)).where(
                store.orders.c.offer_id == offer_id,
                store.orders.c.status.in_(("reserved", "confirmed")),
            )
        )
    return (*row, units)


async def redis_remaining(sales: Sales, event_id) -> int:
    [(_, _, remaining)] = await sales.gate.stock(event_id)
    return remaining


def test_200_buyers_on_10_units_make_exactly_10_orders(sale) -> None:
    async def scenario(sales: Sales):
        event = flash_sale(stock=10)
        await sales.apply_event(event)
        offer_id = event.offers[0].id
        results = await asyncio.gather(*(attempt(sales, buyer(), offer_id) for _ in range(200)))
        return results, await counts(sales, offer_id), await redis_remaining(sales, event.id)

    results, (stock, remaining, reserved, confirmed, units), in_redis = sale(scenario)
    assert results.count("ok") == 10
    assert results.count("SoldOut") == 190
    assert (stock, remaining, reserved, confirmed, units) == (10, 0, 10, 0, 10)
    assert in_redis == 0


def test_one_customer_racing_themselves_stays_within_the_limit(sale) -> None:
    async def scenario(sales: Sales):
        event = flash_sale(stock=50, limit=2)
        await sales.apply_event(event)
        offer_id = event.offers[0].id
        greedy = buyer()
        results = await asyncio.gather(*(attempt(sales, greedy, offer_id) for _ in range(30)))
        return results, await counts(sales, offer_id)

    results, (_, remaining, reserved, _, units) = sale(scenario)
    assert results.count("ok") == 2
    assert results.count("LimitReached") == 28
    assert (remaining, reserved, units) == (48, 2, 2)


def test_retries_with_one_idempotency_key_make_one_order(sale) -> None:
    async def scenario(sales: Sales):
        event = flash_sale(stock=5, limit=5)
        await sales.apply_event(event)
        offer_id = event.offers[0].id
        who, key = buyer(), str(uuid.uuid4())
        first, _ = await sales.place_order(who, offer_id, 2, key)
        retries = await asyncio.gather(
            *(sales.place_order(who, offer_id, 2, key) for _ in range(10)),
            return_exceptions=True,
        )
        with pytest.raises(domain.IdempotencyMismatch):
            await sales.place_order(who, offer_id, 1, key)
        return first, retries, await counts(sales, offer_id)

    first, retries, (_, remaining, _, _, units) = sale(scenario)
    assert all(order.id == first.id and not new for order, new in retries)
    assert (remaining, units) == (3, 2)


def test_an_expired_reservation_returns_its_stock(sale) -> None:
    async def scenario(sales: Sales):
        event = flash_sale(stock=1, timeout=60)
        await sales.apply_event(event)
        offer_id = event.offers[0].id
        order, _ = await sales.place_order(buyer(), offer_id, 1, None)
        assert await attempt(sales, buyer(), offer_id) == "SoldOut"
        async with sales.engine.begin() as connection:  # its minute is up
            await connection.execute(
                store.orders.update().values(expires_at=sa.func.now() - timedelta(seconds=1))
            )
        assert await sales.expire_due() == 1
        late = buyer()
        after = await attempt(sales, late, offer_id)
        async with sales.engine.connect() as connection:
            status = await store.get_order(connection, None, order.id)
        return after, status.status, await counts(sales, offer_id)

    after, status, (_, remaining, reserved, _, units) = sale(scenario)
    assert (status, after) == ("expired", "ok")
    assert (remaining, reserved, units) == (0, 1, 1)


def test_redis_flushed_mid_sale_is_rebuilt_without_overselling(sale) -> None:
    async def scenario(sales: Sales):
        event = flash_sale(stock=30)
        await sales.apply_event(event)
        offer_id = event.offers[0].id
        early = await asyncio.gather(*(attempt(sales, buyer(), offer_id) for _ in range(20)))
        await sales.gate.redis.flushdb()  # Redis restarts empty in the middle of the sale
        late = await asyncio.gather(*(attempt(sales, buyer(), offer_id) for _ in range(100)))
        return early, late, await counts(sales, offer_id), await redis_remaining(sales, event.id)

    early, late, (_, remaining, reserved, _, units), in_redis = sale(scenario)
    assert early.count("ok") == 20
    assert late.count("ok") == 10
    assert (remaining, reserved, units) == (0, 30, 30)
    assert in_redis == 0


async def behind_the_gates_back(sales: Sales, *statements: str, **params) -> None:
    """Change PostgreSQL without telling Redis: the two now disagree."""
    async with sales.engine.begin() as connection:
        for statement in statements:
            await connection.execute(sa.text(statement), params)


def test_winners_written_together_each_get_their_own_answer_when_stock_is_short(sale) -> None:
    async def scenario(sales: Sales):
        event = flash_sale(stock=10)
        await sales.apply_event(event)
        offer_id = event.offers[0].id
        # 7 units sold elsewhere, as far as PostgreSQL knows; Redis still admits 10 buyers
        await behind_the_gates_back(
            sales, "UPDATE offers SET remaining = 3, confirmed = 7 WHERE id = :id", id=offer_id
        )
        results = await asyncio.gather(*(attempt(sales, buyer(), offer_id) for _ in range(10)))
        return results, await counts(sales, offer_id), await redis_remaining(sales, event.id)

    results, (stock, remaining, reserved, confirmed, _), in_redis = sale(scenario)
    assert results.count("ok") == 3
    assert results.count("SoldOut") == 7
    assert (stock, remaining, reserved, confirmed) == (10, 0, 3, 7)
    assert in_redis == 0  # the gate was rebuilt from PostgreSQL


def test_a_winner_over_the_limit_in_postgresql_does_not_fail_the_others(sale) -> None:
    async def scenario(sales: Sales):
        event = flash_sale(stock=10, limit=1)
        await sales.apply_event(event)
        offer_id = event.offers[0].id
        repeat = buyer()
        # the repeat customer already bought their one unit, and Redis does not know it
        await behind_the_gates_back(
            sales,
            "INSERT INTO holdings VALUES (:user, :id, 1, 1)",
            "UPDATE offers SET remaining = 9, confirmed = 1 WHERE id = :id",
            user=repeat.user_id,
            id=offer_id,
        )
        buyers = [buyer() for _ in range(8)] + [repeat]
        results = await asyncio.gather(*(attempt(sales, who, offer_id) for who in buyers))
        return results, await counts(sales, offer_id)

    results, (_, remaining, reserved, confirmed, units) = sale(scenario)
    assert results == ["ok"] * 8 + ["LimitReached"]
    assert (remaining, reserved, confirmed, units) == (1, 8, 1, 8)


def test_each_winner_gets_one_award_order_however_often_bidding_asks(sale) -> None:
    async def scenario(sales: Sales):
        now = datetime.now(UTC)
        winners = [
            AwardOrder(
                event_id=uuid.uuid4(), offer_id=uuid.uuid4(), item_id=uuid.uuid4(),
                user_id=uuid.uuid4(), kind="auction", unit_price=Decimal("125.00"),
                currency="EUR", expires_at=now + timedelta(hours=48),
            )
            for _ in range(4)
        ]  # fmt: skip
        # one connection, more than five times: PostgreSQL then plans the statement generically
        async with sales.engine.begin() as connection:
            made = [await store.award(connection, w) for w in winners for _ in range(3)]
            count = await connection.scalar(sa.select(sa.func.count()).select_from(store.orders))
        return made, count

    made, count = sale(scenario)
    assert count == 4
    assert len({order.id for order in made}) == 4
    assert all(order.status == "reserved" and order.total == Decimal("125.00") for order in made)


def test_buyers_who_go_away_mid_order_leave_redis_and_postgresql_agreeing(sale) -> None:
    """An order request cancelled at any point (the client gone, the server stopping) is
    finished anyway: its units are held in Redis and PostgreSQL, with its order."""

    async def scenario(sales: Sales):
        event = flash_sale(stock=100)
        await sales.apply_event(event)
        offer_id = event.offers[0].id

        await asyncio.gather(
            *(
                cancelled_after(n / 4000, sales.place_order(buyer(), offer_id, 1, None))
                for n in range(80)
            )
        )
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            (_, remaining, reserved, _, units) = await counts(sales, offer_id)
            in_redis = await redis_remaining(sales, event.id)
            agreed = in_redis == remaining and reserved == units
            if agreed or asyncio.get_running_loop().time() > deadline:
                return agreed, in_redis, remaining, reserved

    agreed, in_redis, remaining, reserved = sale(scenario)
    assert agreed, f"Redis has {in_redis} left, PostgreSQL {remaining} ({reserved} reserved)"
    assert reserved == 80


def test_a_warmed_pool_has_the_winners_statement_prepared_on_each_connection(sale) -> None:
    """A storm's first batch of winners should not wait for a connection to open and its
    statement to be prepared (several round trips on a busy loop)."""

    async def scenario(sales: Sales):
        await warm(sales.engine, 3, lambda connection: store.reserve(connection, []))
        idle = sales.engine.pool.checkedin()
        async with contextlib.AsyncExitStack() as stack:
            connections = [
                await stack.enter_async_context(sales.engine.connect()) for _ in range(3)
            ]
            prepared = [
                await connection.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_prepared_statements WHERE"
                        " statement LIKE '%INSERT INTO orders%' AND statement NOT LIKE '%pg_%'"
                    )
                )
                for connection in connections
            ]
            orders = await connections[0].scalar(
                sa.select(sa.func.count()).select_from(store.orders)
            )
        return idle, prepared, orders

    idle, prepared, orders = sale(scenario)
    assert idle == 3
    assert prepared == [1, 1, 1]
    assert orders == 0
