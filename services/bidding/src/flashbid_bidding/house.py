"""The use cases: joining, bidding on lots and in ranked sessions, settling, rebuilding."""

import asyncio
import hashlib
import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from flashbid_bidding import domain, store
from flashbid_bidding.board import Board
from flashbid_bidding.schemas import (
    BoardLine,
    Leader,
    LotResult,
    LotState,
    LotView,
    Results,
    SessionResult,
    Standing,
)
from flashbid_shared.batch import Batcher
from flashbid_shared.contracts import MINOR_UNITS, Event, UserSummary
from flashbid_shared.database import PostgresLine
from flashbid_shared.tokens import Principal
from flashbid_shared.users import UserDirectory

log = logging.getLogger(__name__)
BIDDING_STATUSES = frozenset({"live", "sold_out"})
OUTBID_EMAIL_DELAY = 60.0  # one outbid email per lot, bidder and ten minutes, a minute late
AWARD_HOLD = timedelta(hours=48)  # a winner's reserved order waits this long for payment


def lot_state(row: Any) -> LotState:
    lot = as_lot(row)
    status = row.status if row.status != "open" else ("live" if _started(row) else "upcoming")
    return LotState(
        lot_id=row.id,
        event_id=row.event_id,
        status=status,
        current_price=row.current_price,
        min_next_bid=lot.min_next_bid,
        bid_count=row.bid_count,
        leader=Leader(display_name=row.leader_name) if row.leader_id else None,
        ends_at=row.ends_at,
        reserve_met=lot.reserve_met,
        buy_now_price=row.buy_now_price if row.bid_count == 0 else None,
        leader_id=row.leader_id,
    )


def as_lot(row: Any) -> domain.Lot:
    return domain.Lot(
        id=row.id,
        starting_price=row.starting_price,
        increment=row.increment,
        places=MINOR_UNITS[row.currency],
        ends_at=row.ends_at,
        reserve_price=row.reserve_price,
        buy_now_price=row.buy_now_price,
        current_price=row.current_price,
        leader_id=row.leader_id,
        leader_max=row.leader_max,
        bid_count=row.bid_count,
        extensions=row.extensions,
    )


def _started(row: Any) -> bool:
    return row.event_status in BIDDING_STATUSES or row.event_status == "ended"


def check_open(row: Any, now: datetime) -> None:
    """Bids count between the event's start (catalog's word, or its schedule if that word is
    late) and the lot's own end; never in a cancelled event. `now` is read once the lot is
    locked: a close (which moves the lot's end under the same lock) fences every bid after it."""
    started = row.event_status in BIDDING_STATUSES or (
        row.event_status in ("scheduled", "ended") and row.starts_at <= now
    )
    if row.event_status == "cancelled" or not started:
        raise domain.EventNotLive("The event is not live.")
    if row.status != "open" or now >= row.ends_at:
        raise domain.EventNotLive("Bidding on this lot has ended.")


class AuctionHouse:
    def __init__(
        self,
        engine: AsyncEngine,
        board: Board,
        users: UserDirectory,
        *,
        require_verified: bool,
        public_url: str = "",
    ) -> None:
        self.engine, self.board, self.users = engine, board, users
        self.require_verified, self.public_url = require_verified, public_url
        # A batch of ranked bids is one statement on a connection of its own: one round trip.
        self.writes = PostgresLine(engine.url.render_as_string(False), store.RAISE_BIDS)
        self.ranked = Batcher(self._write_ranked, key=lambda bid: (bid[0], bid[1]))
        self._sessions: dict[UUID, tuple[float, asyncio.Future[Any]]] = {}
        self._emailed: set[tuple] = set()  # outbid emails already asked for (a debounce)
        self._emails: dict[str, dict] = {}  # outbid emails not yet written

    async def bidder(self, principal: Principal) -> UserSummary:
        """The caller, if allowed to bid: verified (when required) and active."""
        if self.require_verified and not principal.email_verified:  # the token may predate it
            if not await self.users.verified(principal.user_id):
                raise domain.NotAllowed(
                    "Verify your email address before bidding.", reason="email_unverified"
                )
        user = await self.users.get(principal.user_id)
        if user is not None and not user.is_active:
            raise domain.NotAllowed("This account is deactivated.", reason="deactivated")
        return user or UserSummary(
            id=principal.user_id, display_name="Bidder", weight=1.0, email_verified=True,
            is_active=True,
        )  # fmt: skip

    async def join(self, principal: Principal, event_id: UUID) -> None:
        await self.bidder(principal)
        async with self.engine.begin() as connection:
            event = await store.get_event(connection, event_id)
            if event.kind != "auction":
                raise domain.NotFound("Only auctions are joined; ranked sessions are open to all.")
            if event.status not in ("scheduled", "live"):
                raise domain.EventNotLive("Join an auction while it is scheduled or live.")
            await store.join(connection, event_id, principal.user_id)

    # --------------------------------------------------------------------------- lots

    async def lot(self, lot_id: UUID) -> LotState:
        cached = await self.board.lot(lot_id)
        if cached is not None:
            return cached
        async with self.engine.connect() as connection:
            state = lot_state(await store.lot(connection, lot_id))
        await self.board.save_lot(state)
        return state

    async def bid_on_lot(
        self,
        principal: Principal,
        lot_id: UUID,
        amount: Decimal,
        max_amount: Decimal | None,
        key: str | None = None,
    ) -> tuple[LotView, bool]:
        user = await self.bidder(principal)
        return await asyncio.shield(self._bid_on_lot(user, lot_id, amount, max_amount, key))

    async def _bid_on_lot(
        self,
        user: UserSummary,
        lot_id: UUID,
        amount: Decimal,
        max_amount: Decimal | None,
        key: str | None,
    ) -> tuple[LotView, bool]:
        """The bid, finished even if its caller goes away (the client gone, the server
        stopping): in PostgreSQL and in the live state, or in neither. With whether it is new
        (False: a retry of `key`, answered as the first time)."""
        fingerprint = hashlib.blake2b(
            f"{lot_id}:{amount}:{max_amount}".encode(), digest_size=8
        ).hexdigest()
        async with self.engine.begin() as connection:
            if key and (first := await self._remembered(connection, user.id, key, fingerprint)):
                return msgspec.convert(first, LotState).seen_by(user.id), False
            row = await store.lot(connection, lot_id, lock=True)
            now = await store.clock(connection)
            check_open(row, now)
            if not await store.has_joined(connection, row.event_id, user.id):
                raise domain.NotJoined("Join this auction before bidding.")
            places = MINOR_UNITS[row.currency]
            amount = domain.check_amount(amount, places)
            if max_amount is not None:
                max_amount = domain.check_amount(max_amount, places)
            placed = domain.place_bid(
                as_lot(row),
                user.id,
                amount,
                max_amount,
                now,
                timedelta(seconds=row.soft_close_seconds),
                timedelta(seconds=row.extension_seconds),
            )
            names = {user.id: user.display_name, row.leader_id: row.leader_name}
            leader_name = names.get(placed.lot.leader_id)
            await store.save_lot(connection, placed.lot, leader_name)
            await store.record_bids(
                connection, lot_id, [(b, names[b], a, auto) for b, a, auto in placed.bids]
            )
            state = lot_state(await store.lot(connection, lot_id))
            if key:
                await store.remember_bid(
                    connection, user.id, key, fingerprint, msgspec.to_builtins(state)
                )
            if placed.outbid:
                self._outbid_email(str(placed.outbid), row, state.current_price)
            if placed.extended:  # catalog's end of the event follows its latest lot
                await self._report_lots_end(connection, row.event_id)
        await self._announce(state, outbid=placed.outbid, extended=placed.extended)
        return state.seen_by(user.id), True

    async def buy_now(self, principal: Principal, lot_id: UUID) -> LotView:
        user = await self.bidder(principal)
        return await asyncio.shield(self._buy_now(user, lot_id))

    async def _buy_now(self, user: UserSummary, lot_id: UUID) -> LotView:
        async with self.engine.begin() as connection:
            row = await store.lot(connection, lot_id, lock=True)
            now = await store.clock(connection)
            check_open(row, now)
            if not await store.has_joined(connection, row.event_id, user.id):
                raise domain.NotJoined("Join this auction before buying.")
            price = domain.check_buy_now(as_lot(row), now)
            won = replace(
                as_lot(row),
                current_price=price,
                leader_id=user.id,
                leader_max=price,
                bid_count=1,
                ends_at=now,
            )
            await store.save_lot(connection, won, user.display_name, status="sold")
            await store.record_bids(
                connection, lot_id, [(user.id, user.display_name, price, False)]
            )
            state = lot_state(await store.lot(connection, lot_id))
            await self._award(connection, row, user.id, price, now)
        await self._announce(state)
        await self.board.publish(row.event_id, {"type": "result", "lot_id": str(lot_id)})
        return state.seen_by(user.id)

    async def _announce(
        self, state: LotState, outbid: UUID | None = None, extended: bool = False
    ) -> None:
        await self.board.save_lot(state)
        news: dict[str, Any] = {"type": "lot", "lot_id": str(state.lot_id)}
        if outbid:
            news["outbid"] = str(outbid)
        if extended:
            news["extended"] = state.ends_at.isoformat()
        await self.board.publish(state.event_id, news)

    async def _remembered(
        self, connection: AsyncConnection, user_id: UUID, key: str, fingerprint: str
    ) -> Any:
        """The first answer to `key`, or None. Retries of one key wait for each other here
        (a lock on the key until the transaction ends), so a concurrent retry gets the first
        answer instead of racing it."""
        await store.lock_key(connection, user_id, key)
        first = await store.remembered_bid(connection, user_id, key)
        if first is not None and first.fingerprint != fingerprint:
            raise domain.IdempotencyMismatch(
                "This Idempotency-Key was used with another bid; use a new key."
            )
        return None if first is None else first.response

    async def _report_lots_end(self, connection: AsyncConnection, event_id: UUID) -> None:
        """Tell catalog (a task, retried) when the event's lots now end."""
        ends_at, closed = await store.lots_end(connection, event_id)
        report = {"event_id": str(event_id), "ends_at": ends_at.isoformat(), "closed": closed}
        await store.add_task(
            connection, f"lots-end:{event_id}:{ends_at}:{closed}", "report", report
        )

    async def _end_closed_auctions(self) -> list[UUID]:
        """Auctions whose last lot has closed end here, and catalog is told."""
        async with self.engine.begin() as connection:
            ended = await store.end_closed_auctions(connection)
            for event_id in ended:
                await self._report_lots_end(connection, event_id)
        return ended

    async def _announce_ended(self, event_ids: list[UUID]) -> None:
        for event_id in event_ids:
            await self.board.publish(event_id, {"type": "status", "status": "ended"})

    def _outbid_email(self, user_id: str, row: Any, price: Decimal | None) -> None:
        """At most one email per offer, bidder and ten minutes, sent a minute late: queued
        here and written by `flush_emails` in one statement a second (a ranked storm pushes
        someone out of the winning ranks on nearly every bid)."""
        asked = (row.id, user_id, int(time.time() // 600))
        if asked in self._emailed:
            return
        if len(self._emailed) > 100_000:
            self._emailed.clear()
        self._emailed.add(asked)
        self._emails[f"outbid:{row.id}:{user_id}:{asked[2]}"] = {
            "user_id": user_id,
            "template": "outbid",
            "data": {
                "title": row.title,
                "current_price": str(price),
                "currency": row.currency,
                "link": f"{self.public_url}/#/events/{row.event_id}",
            },
        }

    async def flush_emails(self) -> int:
        emails, self._emails = self._emails, {}
        if emails:
            async with self.engine.begin() as connection:
                await store.add_tasks(connection, "notify", emails, delay=OUTBID_EMAIL_DELAY)
        return 0

    # ----------------------------------------------------------------------- sessions

    async def _session(self, offer_id: UUID) -> Any:
        """The session with its event, cached for a second (read on every ranked bid): the
        bids that find it stale share one read."""
        cached = self._sessions.get(offer_id)
        if cached is None or cached[0] <= time.monotonic():
            cached = (time.monotonic() + 1.0, asyncio.ensure_future(self._read_session(offer_id)))
            self._sessions[offer_id] = cached
        try:
            return await asyncio.shield(cached[1])
        except Exception:
            self._sessions.pop(offer_id, None)  # not remembered: the next bid reads again
            raise

    def forget_session(self, event: Event) -> None:
        """A push changed the event: this replica reads its sessions again."""
        for offer in event.offers:
            self._sessions.pop(offer.id, None)

    async def _read_session(self, offer_id: UUID) -> Any:
        async with self.engine.connect() as connection:
            return await store.session(connection, offer_id)

    async def bid_in_session(
        self, principal: Principal, offer_id: UUID, price: Decimal, key: str | None = None
    ) -> tuple[Standing, bool]:
        """The caller's standing after the bid, and whether it is new (False: a retry of
        `key`, answered as the first time)."""
        user = await self.bidder(principal)
        row = await self._session(offer_id)
        now = datetime.now(row.starts_at.tzinfo)
        # The cached session may be a second old: it may refuse only what cannot reopen (the
        # start is checked with the bid's write, which also fences a close).
        if row.status != "open" or now >= row.ends_at:
            raise domain.EventNotLive("The ranked session is not open.")
        price = domain.check_amount(price, MINOR_UNITS[row.currency])
        domain.check_session_bid(price, row.upset_price, None)
        scoring = row.scoring
        value = domain.score(
            scoring["formula"], scoring["alpha"], scoring["beta"], scoring["gamma"],
            price, user.weight, (now - row.starts_at).total_seconds(),
        )  # fmt: skip
        bid = lambda: self._raise_bid(row, user, price, value, now)  # noqa: E731
        if key is None:
            return await asyncio.shield(bid()), True
        return await asyncio.shield(self._keyed_session_bid(user.id, key, offer_id, price, bid))

    async def _keyed_session_bid(
        self, user_id: UUID, key: str, offer_id: UUID, price: Decimal, bid: Any
    ) -> tuple[Standing, bool]:
        fingerprint = hashlib.blake2b(f"{offer_id}:{price}".encode(), digest_size=8).hexdigest()
        async with self.engine.begin() as connection:
            if first := await self._remembered(connection, user_id, key, fingerprint):
                return msgspec.convert(first, Standing), False
            standing = await bid()
            await store.remember_bid(
                connection, user_id, key, fingerprint, msgspec.to_builtins(standing)
            )
        return standing, True

    async def _raise_bid(
        self, row: Any, user: UserSummary, price: Decimal, value: float, now: datetime
    ) -> Standing:
        """The bid, finished even if its caller goes away: in PostgreSQL and on the
        leaderboard, or in neither."""
        offer_id = row.id
        is_open, raised, current = await self.ranked.submit(
            (offer_id, user.id, user.display_name, price, value, now)
        )
        if not is_open:
            raise domain.EventNotLive("The ranked session is not open.")
        if not raised:
            if current is not None and price < current:
                domain.check_session_bid(price, row.upset_price, current)
            return await self.standing(offer_id, user.id)  # the same bid again: nothing moves
        details = f"{price}|{user.display_name}"
        move = (row.event_id, offer_id, user.id, domain.tie_order(now), value, details)
        rank, pushed = await self.board.upsert(*move, row.inventory)
        if rank == 0:  # Redis lost the board: rebuilt from PostgreSQL, which has this bid
            await self.rebuild_board(offer_id)
            rank, pushed = await self.board.upsert(*move, row.inventory)
        if pushed:  # fell out of the winning ranks: told by email too
            self._outbid_email(pushed, row, price)
        return Standing(
            offer_id=offer_id, price=str(price), score=value, rank=rank,
            winning=rank <= row.inventory, inventory=row.inventory,
        )  # fmt: skip

    async def _write_ranked(self, bids: list[tuple]) -> list[tuple[bool, bool, Decimal | None]]:
        rows = await store.raise_bids(self.writes, bids)
        answers = {
            (r["offer_id"], r["user_id"]): (r["open"], r["raised"], r["current"]) for r in rows
        }
        return [answers[(bid[0], bid[1])] for bid in bids]

    async def standing(self, offer_id: UUID, user_id: UUID) -> Standing:
        row = await self._session(offer_id)
        await self.ensure_board(offer_id)
        found = await self.board.standing(offer_id, user_id)
        if found is None:
            return Standing(
                offer_id=offer_id, price=None, score=None, rank=None, winning=False,
                inventory=row.inventory,
            )  # fmt: skip
        rank, value, price = found
        return Standing(
            offer_id=offer_id, price=price, score=value, rank=rank,
            winning=rank <= row.inventory, inventory=row.inventory,
        )  # fmt: skip

    async def leaderboard(self, offer_id: UUID, limit: int) -> list[BoardLine]:
        """The top `limit`; an unknown session is NotFound, as for `standing`."""
        await self._session(offer_id)
        await self.ensure_board(offer_id)
        return await self.board.leaderboard(offer_id, limit)

    async def ensure_board(self, offer_id: UUID) -> None:
        if not await self.board.has_board(offer_id):
            await self.rebuild_board(offer_id)

    async def rebuild_board(self, offer_id: UUID) -> None:
        async with self.engine.connect() as connection:
            bids = await store.ranked_bids_of(connection, offer_id)
        await self.board.load_board(
            offer_id,
            (
                (b.user_id, domain.tie_order(b.placed_at), b.score, f"{b.price}|{b.display_name}")
                for b in bids
            ),
        )

    # --------------------------------------------------------------------- settlement

    async def settle_due(self) -> int:
        """Settle every lot and session whose end has passed (once, whatever the replicas)."""
        async with self.engine.begin() as connection:
            lots = await store.settle_lots(connection)
            sessions = await store.settle_sessions(connection)
            now = await store.now(connection)
            for lot in lots:
                if lot.status == "sold":
                    full = await store.lot(connection, lot.id)
                    await self._award(connection, full, lot.leader_id, lot.current_price, now)
            for session, ranked in sessions:
                full = await store.session(connection, session.id)
                for entry in ranked:
                    if entry.won:
                        await self._award(connection, full, entry.user_id, entry.price, now)
            states = [lot_state(await store.lot(connection, lot.id)) for lot in lots]
        ended = await self._end_closed_auctions()  # after the results, the event's end
        for state in states:
            await self.board.save_lot(state)
            await self.board.publish(
                state.event_id, {"type": "result", "lot_id": str(state.lot_id)}
            )
        for session, _ in sessions:
            await self.board.publish(
                session.event_id, {"type": "result", "offer_id": str(session.id)}
            )
        await self._announce_ended(ended)
        return len(lots) + len(sessions)

    async def _award(
        self, connection: AsyncConnection, row: Any, user_id: UUID, price: Decimal, now: datetime
    ) -> None:
        """The winner's reserved order in purchase and their email, each once, retried."""
        expires = now + AWARD_HOLD
        kind = "auction" if hasattr(row, "starting_price") else "ranked"
        order = {
            "event_id": str(row.event_id),
            "offer_id": str(row.id),
            "item_id": str(row.item_id),
            "user_id": str(user_id),
            "kind": kind,
            "quantity": 1,
            "unit_price": str(price),
            "currency": row.currency,
            "expires_at": expires.isoformat(),
        }
        await store.add_task(connection, f"award:{row.id}:{user_id}", "award", order)
        email = {
            "user_id": str(user_id),
            "template": "won",
            "data": {
                "title": row.title,
                "price": str(price),
                "currency": row.currency,
                "expires_at": expires.strftime("%Y-%m-%d %H:%M UTC"),
                "link": f"{self.public_url}/#/orders",
            },
        }
        await store.add_task(connection, f"won:{row.id}:{user_id}", "notify", email)


async def results(connection: AsyncConnection, event_id: UUID, top: int = 100) -> Results:
    """The event's outcome so far: each lot's winner and price, each session's rankings."""
    event = await store.get_event(connection, event_id)
    lots = [
        LotResult(
            lot_id=row.id,
            status=row.status,
            winner=Leader(display_name=row.leader_name)
            if row.status == "sold" and row.leader_name
            else None,
            final_price=row.current_price if row.status == "sold" else None,
            reserve_met=as_lot(row).reserve_met,
        )
        for row in await store.lots_of(connection, event_id)
    ]
    sessions = []
    for row in await store.sessions_of(connection, event_id):
        ranked = await store.rankings_of(connection, row.id, top)
        sessions.append(
            SessionResult(
                offer_id=row.id,
                status=row.status,
                inventory=row.inventory,
                final_price=row.final_price,
                rankings=[
                    BoardLine(
                        rank=r.rank, display_name=r.display_name, price=str(r.price), score=r.score
                    )
                    for r in ranked
                ],
            )
        )
    settled = all(lot.status != "open" for lot in lots) and all(
        s.status != "open" for s in sessions
    )
    cancelled = event.status == "cancelled"
    return Results(
        event_id=event_id, settled=settled, cancelled=cancelled, lots=lots, sessions=sessions
    )
