"""Bidding against the real PostgreSQL and Redis: concurrent bids on one lot, settlement raced
by two replicas, and live state rebuilt identically after Redis loses it."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from flashbid_bidding import domain, store
from flashbid_bidding.board import Board
from flashbid_bidding.house import AuctionHouse
from flashbid_bidding.workers import apply_event, perform_tasks, purge_tasks
from flashbid_shared.contracts import Event, Offer, Scoring, UserSummary
from flashbid_shared.database import redis_client
from flashbid_shared.redisline import RedisLine
from flashbid_shared.tokens import Principal
from tests_support import cancelled_after

pytestmark = pytest.mark.stack
SCRATCH_REDIS_DB = 10


class Users:
    """Auth's directory, as a fake: everyone active, with a weight of 1."""

    async def get(self, user_id: uuid.UUID) -> UserSummary:
        return UserSummary(
            id=user_id, display_name=f"user-{str(user_id)[:4]}", weight=1.0,
            email_verified=True, is_active=True,
        )  # fmt: skip


def bidder() -> Principal:
    return Principal(subject=str(uuid.uuid4()), role="customer", email_verified=True)


def event(kind: str, *, started: float = 1, lasts: float = 3600, status: str = "live") -> Event:
    now = datetime.now(UTC)
    starts = now - timedelta(seconds=started)
    if kind == "auction":
        offers = [Offer(id=uuid.uuid4(), item_id=uuid.uuid4(), starting_price=Decimal("100.00"),
                        increment="5.00")]  # fmt: skip
        extra = {"soft_close_seconds": 0, "extension_seconds": 0}
    else:
        offers = [Offer(id=uuid.uuid4(), item_id=uuid.uuid4(), upset_price=Decimal("10.00"),
                        inventory=3)]  # fmt: skip
        extra = {"scoring": Scoring(formula="weight", alpha=1.0, beta=0.0, gamma=1.0)}
    return Event(
        id=uuid.uuid4(), kind=kind, title=f"Test {kind}", description="", status=status,
        currency="EUR", starts_at=starts, ends_at=starts + timedelta(seconds=lasts),
        offers=offers, version=1, created_at=now, updated_at=now, **extra,
    )  # fmt: skip


@pytest.fixture
def houses(profile, scratch_database):
    """`run(scenario, replicas=1)`: `scenario(*houses)` on a new database and an empty Redis."""
    url = scratch_database("bidding")
    redis_url = f"redis://127.0.0.1:{profile.ports['redis']}/{SCRATCH_REDIS_DB}"

    def run(scenario, replicas: int = 1):
        async def main():
            engines = [create_async_engine(url, pool_size=20) for _ in range(replicas)]
            redis, line = redis_client(redis_url), RedisLine(redis_url)
            await redis.flushdb()
            board = Board(redis, line)
            made = [AuctionHouse(e, board, Users(), require_verified=True) for e in engines]
            try:
                return await scenario(*made)
            finally:
                for house in made:
                    await house.ranked.close()
                    await house.writes.close()
                await redis.flushdb()
                await line.aclose()
                await redis.aclose()
                for engine in engines:
                    await engine.dispose()

        return asyncio.run(main())

    return run


async def joined(house: AuctionHouse, auction: Event, count: int) -> list[Principal]:
    people = [bidder() for _ in range(count)]
    for person in people:
        await house.join(person, auction.id)
    return people


def test_concurrent_bids_on_one_lot_leave_one_leader_and_lose_no_bid(houses) -> None:
    async def scenario(house: AuctionHouse):
        auction = event("auction")
        await apply_event(house, auction)
        lot_id = auction.offers[0].id
        people = await joined(house, auction, 40)

        async def attempt(n: int, person: Principal):
            try:
                await house.bid_on_lot(person, lot_id, Decimal(100 + 5 * n), None)
                return Decimal(100 + 5 * n)
            except domain.BidTooLow:
                return None

        accepted = await asyncio.gather(*(attempt(n, p) for n, p in enumerate(people)))
        async with house.engine.connect() as connection:
            recorded = (await connection.execute(sa.select(store.lot_bids.c.amount))).scalars()
            row = await store.lot(connection, lot_id)
        return [a for a in accepted if a is not None], sorted(recorded), row, people

    accepted, recorded, row, people = houses(scenario)
    assert sorted(accepted) == recorded  # every accepted bid is in PostgreSQL, nothing else
    assert row.current_price == max(accepted)
    assert row.bid_count == len(accepted)
    winner = next(p for n, p in enumerate(people) if Decimal(100 + 5 * n) == max(accepted))
    assert row.leader_id == winner.user_id


def test_two_replicas_settle_each_lot_and_session_exactly_once(houses) -> None:
    async def scenario(one: AuctionHouse, two: AuctionHouse):
        auctions = [event("auction", started=60, lasts=30) for _ in range(10)]  # already over
        session = event("ranked", started=60, lasts=30)
        for item in [*auctions, session]:
            await apply_event(one, item)
        async with one.engine.begin() as connection:  # bids placed while they were open
            for n, auction in enumerate(auctions):
                await connection.execute(
                    store.lots.update()
                    .where(store.lots.c.id == auction.offers[0].id)
                    .values(current_price=Decimal(150 + n), leader_id=uuid.uuid4(),
                            leader_name="x", bid_count=1)
                )  # fmt: skip
            now = datetime.now(UTC) - timedelta(seconds=40)
            await connection.execute(
                store.ranked_bids.insert(),
                [
                    {"offer_id": session.offers[0].id, "user_id": uuid.uuid4(),
                     "display_name": f"b{n}", "price": Decimal(10 + n), "score": float(10 + n),
                     "placed_at": now}
                    for n in range(5)
                ],
            )  # fmt: skip

        async def replica(house: AuctionHouse) -> int:
            return sum([await house.settle_due() for _ in range(5)])

        settled = await asyncio.gather(replica(one), replica(two))
        async with one.engine.connect() as connection:
            awards = (
                (
                    await connection.execute(
                        sa.select(store.tasks.c.key).where(store.tasks.c.kind == "award")
                    )
                )
                .scalars()
                .all()
            )
            ranks = (await connection.execute(sa.select(store.rankings))).all()
            final = await connection.scalar(sa.select(store.sessions.c.final_price))
        return settled, awards, ranks, final

    settled, awards, ranks, final = houses(scenario, replicas=2)
    assert sum(settled) == 11  # ten lots and one session, each once
    assert len(awards) == len(set(awards)) == 10 + 3  # each lot's leader, the top 3 of 5
    assert sorted(r.rank for r in ranks) == [1, 2, 3, 4, 5]
    assert sorted(r.price for r in ranks if r.won) == [Decimal(12), Decimal(13), Decimal(14)]
    assert final == Decimal(12)  # the lowest winning bid


def test_redis_flushed_mid_event_is_rebuilt_identically(houses) -> None:
    async def scenario(house: AuctionHouse):
        ranked, auction = event("ranked"), event("auction")
        await apply_event(house, ranked)
        await apply_event(house, auction)
        offer_id, lot_id = ranked.offers[0].id, auction.offers[0].id
        people = [bidder() for _ in range(12)]
        await asyncio.gather(
            *(house.bid_in_session(p, offer_id, Decimal(20 + n % 4)) for n, p in enumerate(people))
        )
        for n, person in enumerate(await joined(house, auction, 3)):
            await house.bid_on_lot(person, lot_id, Decimal(100 + 10 * n), None)
        board_before = await house.board.leaderboard(offer_id, 20)
        lot_before = await house.lot(lot_id)
        mine_before = await house.standing(offer_id, people[0].user_id)

        await house.board.redis.flushdb()
        late = bidder()  # the first bid after the flush finds an empty Redis
        standing, _ = await house.bid_in_session(late, offer_id, Decimal("19.50"))
        assert standing.rank == 13  # below all twelve bids from before the flush
        board_after = await house.board.leaderboard(offer_id, 20)
        assert board_after[12].price == "19.50"
        return (
            (board_before, board_after[:12]),
            (lot_before, await house.lot(lot_id)),
            (mine_before, await house.standing(offer_id, people[0].user_id)),
        )

    boards, lots, mine = houses(scenario)
    assert len(boards[0]) == 12
    assert boards[0] == boards[1]
    assert lots[0] == lots[1]
    assert mine[0] == mine[1]


def test_bidders_who_go_away_mid_bid_leave_redis_and_postgresql_agreeing(houses) -> None:
    """A bid whose request is cancelled at any point (the client gone, the server stopping) is
    in both PostgreSQL and the live state, or in neither: the leaderboard and the lot shown to
    watchers are those PostgreSQL rebuilds."""

    async def scenario(house: AuctionHouse):
        ranked, auction = event("ranked"), event("auction")
        await apply_event(house, ranked)
        await apply_event(house, auction)
        offer_id, lot_id = ranked.offers[0].id, auction.offers[0].id
        people = await joined(house, auction, 60)

        await asyncio.gather(
            *(
                cancelled_after(n / 2000, house.bid_in_session(p, offer_id, Decimal(20 + n)))
                for n, p in enumerate(people)
            )
        )
        await asyncio.gather(
            *(
                cancelled_after(n / 100, house.bid_on_lot(p, lot_id, Decimal(100 + 5 * n), None))
                for n, p in enumerate(people)
            )
        )
        bids = ("AuctionHouse._bid_on_lot", "AuctionHouse._raise_bid")
        deadline = asyncio.get_running_loop().time() + 10
        while any(t.get_coro().__qualname__ in bids for t in asyncio.all_tasks()):
            assert asyncio.get_running_loop().time() < deadline, "bids still running after 10 s"
            await asyncio.sleep(0.01)  # the bids whose bidders left finish on their own
        live = (await house.board.leaderboard(offer_id, 100), await house.lot(lot_id))
        await house.board.redis.flushdb()
        await house.ensure_board(offer_id)
        return live, (await house.board.leaderboard(offer_id, 100), await house.lot(lot_id))

    live, rebuilt = houses(scenario)
    assert live == rebuilt
    assert 0 < len(live[0]) < 60  # some bidders were gone before their bid, some after


def test_participants_are_reminded_once_before_the_start_and_told_once_of_the_end(houses) -> None:
    async def scenario(house: AuctionHouse):
        soon = event("auction", started=-300, status="scheduled")  # starts in five minutes
        over = event("auction", started=120, lasts=60)  # ended a minute ago
        for item in (soon, over):
            await apply_event(house, item)
        early, late = await joined(house, soon, 2), await joined(house, over, 1)
        await house.settle_due()
        for _ in range(3):  # every replica, every round: still once each
            async with house.engine.begin() as connection:
                await store.notify_participants(connection, "http://x/#/events/")
        async with house.engine.connect() as connection:
            keys = (await connection.execute(sa.select(store.tasks.c.key))).scalars().all()
        return early, late, keys, soon, over

    early, late, keys, soon, over = houses(scenario)
    starting = sorted(k for k in keys if k.startswith("starting:"))
    assert starting == sorted(f"starting:{soon.id}:{p.user_id}" for p in early)
    assert [k for k in keys if k.startswith("ended:")] == [f"ended:{over.id}:{late[0].user_id}"]


def test_a_bidder_pushed_out_of_the_winning_ranks_is_emailed_once(houses) -> None:
    async def scenario(house: AuctionHouse):
        ranked = event("ranked")  # three units
        await apply_event(house, ranked)
        offer_id = ranked.offers[0].id
        first, *others = [bidder() for _ in range(5)]
        await house.bid_in_session(first, offer_id, Decimal("10.00"))
        for n, person in enumerate(others):  # each outbids all before: `first` falls out once
            await house.bid_in_session(person, offer_id, Decimal(11 + n))
        await house.flush_emails()
        async with house.engine.begin() as connection:
            keys = (await connection.execute(sa.select(store.tasks.c.key))).scalars().all()
            due_now = await store.claim_tasks(connection, "notify", 500)
        return first, others, offer_id, keys, due_now

    first, others, offer_id, keys, due_now = houses(scenario)
    emailed = sorted(k.split(":")[2] for k in keys if k.startswith(f"outbid:{offer_id}:"))
    assert emailed == sorted([str(first.user_id), str(others[0].user_id)])
    assert due_now == []  # sent a minute late: a bidder who raises at once is not emailed


def test_done_tasks_are_deleted_after_a_week_and_pending_ones_never(houses) -> None:
    async def scenario(house: AuctionHouse):
        keys = {age: f"purge-{age}-{uuid.uuid4()}" for age in ("8 days", "6 days", "pending")}
        async with house.engine.begin() as connection:
            await store.add_tasks(connection, "notify", {k: {} for k in keys.values()})
            for age in ("8 days", "6 days"):
                await connection.execute(
                    store.tasks.update()
                    .where(store.tasks.c.key == keys[age])
                    .values(done_at=sa.func.now() - sa.text(f"interval '{age}'"))
                )
        await purge_tasks(house)
        async with house.engine.connect() as connection:
            left = set(
                await connection.scalars(
                    sa.select(store.tasks.c.key).where(store.tasks.c.key.in_(keys.values()))
                )
            )
        return {age for age, key in keys.items() if key in left}

    assert houses(scenario) == {"6 days", "pending"}


def test_due_emails_go_to_auth_in_batches_beside_orders_and_failures_are_tried_again(
    houses,
) -> None:
    class Peers:
        """Purchase and auth, as a fake: one winner's order fails, and auth goes away."""

        def __init__(self) -> None:
            self.orders: list[str] = []
            self.batches: list[int] = []
            self.auth_down = False

        async def award(self, order: dict) -> None:
            self.orders.append(order["user_id"])
            if order["user_id"] == "unreachable":
                raise httpx.ConnectError("refused")

        async def notify(self, notifications: list[dict]) -> None:
            if self.auth_down:
                raise httpx.ConnectError("refused")
            self.batches.append(len(notifications))

    async def scenario(house: AuctionHouse):
        peers = Peers()
        async with house.engine.begin() as connection:
            emails = {f"email:{n}": {"user_id": str(uuid.uuid4())} for n in range(600)}
            await store.add_tasks(connection, "notify", emails)
            winners = ["unreachable", "winner-1", "winner-2"]
            await store.add_tasks(connection, "award", {w: {"user_id": w} for w in winners})
        first = await perform_tasks(house, peers)  # the orders, and 500 emails in one call
        peers.auth_down = True
        second = await perform_tasks(house, peers)  # the other 100 emails: refused
        third = await perform_tasks(house, peers)  # the failed ones are not due yet
        async with house.engine.connect() as connection:
            pending = (
                await connection.execute(
                    sa.select(store.tasks.c.kind, store.tasks.c.attempts).where(
                        store.tasks.c.done_at.is_(None)
                    )
                )
            ).all()
        return (first, second, third), peers, sorted(pending)

    performed, peers, pending = houses(scenario)
    assert performed == (503, 100, 0)
    assert sorted(peers.orders) == ["unreachable", "winner-1", "winner-2"]
    assert peers.batches == [500]
    assert pending == [("award", 1)] + [("notify", 1)] * 100


def test_a_transition_applied_by_one_replica_binds_the_other_at_once(houses) -> None:
    """Catalog's push reaches one replica; the other, which has the events in its caches,
    refuses the next bid after a close and takes the next bid after an open."""

    async def scenario(one: AuctionHouse, two: AuctionHouse):
        ranked, auction = event("ranked"), event("auction")
        later = event("ranked", started=-3600, status="scheduled")
        for item in (ranked, auction, later):
            await apply_event(one, item)
        people = await joined(two, auction, 2)
        await two.bid_in_session(bidder(), ranked.offers[0].id, Decimal(20))
        await two.bid_on_lot(people[0], auction.offers[0].id, Decimal(100), None)
        with pytest.raises(domain.EventNotLive):  # before the open: two caches the session
            await two.bid_in_session(bidder(), later.offers[0].id, Decimal(20))

        now = datetime.now(UTC)
        for item in (ranked, auction):
            await apply_event(one, msgspec.structs.replace(item, status="ended", ends_at=now,
                                                           version=2))  # fmt: skip
        opened = msgspec.structs.replace(later, status="live", starts_at=now, version=2)
        await apply_event(one, opened)

        refused = []
        for attempt in (
            two.bid_in_session(bidder(), ranked.offers[0].id, Decimal(30)),
            two.bid_on_lot(people[1], auction.offers[0].id, Decimal(105), None),
        ):
            with pytest.raises(domain.EventNotLive):
                await attempt
            refused.append(True)
        standing, _ = await two.bid_in_session(bidder(), later.offers[0].id, Decimal(20))
        return refused, standing

    refused, standing = houses(scenario, replicas=2)
    assert refused == [True, True]
    assert (standing.rank, standing.winning) == (1, True)
