"""The use cases: the gate in Redis first, then PostgreSQL for the winners."""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from flashbid_purchase import domain, store
from flashbid_purchase.gate import Gate
from flashbid_shared.batch import Batcher
from flashbid_shared.contracts import Event, Order
from flashbid_shared.tokens import Principal
from flashbid_shared.users import UserDirectory

log = logging.getLogger(__name__)


def _constraint(exc: IntegrityError) -> str:
    cause = getattr(exc.orig, "__cause__", None)
    return getattr(cause, "constraint_name", None) or ""


class Sales:
    def __init__(
        self,
        engine: AsyncEngine,
        gate: Gate,
        users: UserDirectory,
        *,
        require_verified: bool,
        on_stock_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine, self.gate, self.users = engine, gate, users
        # The winners' write is one statement: in autocommit it is one round trip, and the
        # offer's row is locked only while PostgreSQL runs it (not until our COMMIT arrives).
        # The winners of a storm queue for that row: written in batches, it is taken once per
        # batch instead of once per winner.
        self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.winners = Batcher(self._write, key=lambda r: (r.user_id, r.offer_id))
        self.require_verified = require_verified
        self.on_stock_change = on_stock_change
        self._rebuilding: dict[UUID, asyncio.Lock] = {}

    async def place_order(
        self, buyer: Principal, offer_id: UUID, quantity: int, key: str | None
    ) -> tuple[Order, bool]:
        """The order and whether it is new (False: a retry answered with the first result).
        Finished even if the caller goes away (the client gone, the server stopping), so that
        its units are held in Redis and PostgreSQL with its order, or in neither."""
        return await asyncio.shield(self._place_order(buyer, offer_id, quantity, key))

    async def _place_order(
        self, buyer: Principal, offer_id: UUID, quantity: int, key: str | None
    ) -> tuple[Order, bool]:
        if self.require_verified and not buyer.email_verified:  # the token may predate it
            domain.check_buyer(await self.users.verified(buyer.user_id), self.require_verified)
        user = buyer.subject
        fingerprint = domain.fingerprint(str(offer_id), quantity)
        outcome, seen = await self.gate.admit(offer_id, user, quantity, key, fingerprint)
        if outcome == "unknown" and await self.rebuild_offer(offer_id):
            outcome, seen = await self.gate.admit(offer_id, user, quantity, key, fingerprint)
        if outcome == "unknown":
            raise domain.OfferNotFound("There is no such offer on sale.")
        if outcome == "seen":
            return await self._replay(buyer.user_id, key or "", fingerprint, seen), False
        if outcome != "ok":
            raise domain.refuse(outcome)

        # Whether the account is still active is asked of auth while PostgreSQL writes: the
        # answer is nearly always yes, so it should not add its round trip to the winner's wait.
        lookup = asyncio.ensure_future(self.users.get(buyer.user_id))
        winner = store.Reservation(uuid4(), offer_id, buyer.user_id, quantity, key, fingerprint)
        try:
            written = await self.winners.submit(winner)
        except IntegrityError as exc:
            lookup.cancel()
            await self.gate.release(offer_id, user, quantity, key)
            if _constraint(exc) == "idempotency_keys_pkey":  # Redis forgot; PostgreSQL did not
                return await self._replay(buyer.user_id, key or "", fingerprint, None), False
            if _constraint(exc) == "holdings_within_limit":
                raise domain.refuse("limit_reached") from None
            raise
        except BaseException:
            lookup.cancel()
            await self.gate.release(offer_id, user, quantity, key)
            raise
        if written is None:  # PostgreSQL disagrees with Redis, and PostgreSQL wins
            lookup.cancel()
            await self.gate.release(offer_id, user, quantity, key)
            async with self.engine.connect() as connection:
                reason = await store.shortage(connection, offer_id)
            log.warning("offer %s: Redis admitted what PostgreSQL refused (%s)", offer_id, reason)
            await self.rebuild_offer(offer_id, force=True)
            raise domain.refuse("sold_out" if reason == "unknown" else reason)
        order, remaining = written
        summary = await lookup
        if summary is not None and not summary.is_active:  # refused: leaves nothing behind
            async with self.engine.begin() as connection:
                await store.withdraw(connection, order.id)
            await self.gate.release(offer_id, user, quantity, key)
            raise domain.NotAllowed("This account is deactivated.", reason="deactivated")
        if remaining == 0:
            self.on_stock_change()
        return order, True

    async def _write(self, batch: list[store.Reservation]) -> list[Any]:
        """Each winner's order and its offer's units left, None where PostgreSQL refused, or
        the error that refused it. When the batch's statement fails for one of them, each is
        written alone for its own answer."""
        try:
            async with self.autocommit.connect() as connection:
                written = await store.reserve(connection, batch)
        except IntegrityError as exc:
            if len(batch) == 1:
                return [exc]
            written = {}
        answers: list[Any] = []
        for reservation in batch:
            if reservation.order_id in written:
                answers.append(written[reservation.order_id])
            elif len(batch) == 1:
                answers.append(None)
            else:
                answers += await self._write([reservation])
        return answers

    async def close(self) -> None:
        await self.winners.close()

    async def _replay(self, user_id: UUID, key: str, fingerprint: str, seen: str | None) -> Order:
        if seen is not None and seen != fingerprint:
            raise domain.IdempotencyMismatch(
                "This Idempotency-Key was used with another request; use a new key."
            )
        found = await self._first_answer(user_id, key)
        if found is None:
            raise domain.RequestInProgress(
                "A request with this Idempotency-Key is still being processed.", retry_after=1
            )
        if found.fingerprint != fingerprint:
            raise domain.IdempotencyMismatch(
                "This Idempotency-Key was used with another request; use a new key."
            )
        first = store.as_order(found)
        first.status = "reserved"  # the first response, whatever happened to the order since
        return first

    async def _first_answer(self, user_id: UUID, key: str, wait: float = 5.0) -> Any:
        """The order the key's first request made, waited for while that request is still
        being written (a concurrent retry gets the first answer, not a refusal)."""
        deadline = time.monotonic() + wait
        pause = 0.005
        while True:
            async with self.engine.connect() as connection:
                found = await store.remembered(connection, user_id, key)
            if found is not None or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    async def release(self, orders: list) -> None:
        """Stock freed by cancelled or expired orders goes back to the gate."""
        for order in orders:
            if order.kind == "flash_sale":
                await self.gate.release(order.offer_id, str(order.user_id), order.quantity)
        if orders:
            self.on_stock_change()

    async def cancel(self, user_id: UUID, order_id: UUID) -> Order:
        async with self.engine.begin() as connection:
            row = await store.cancel(connection, user_id, order_id)
        await self.release([row])
        return store.as_order(row)

    async def expire_due(self) -> int:
        async with self.engine.begin() as connection:
            expired = await store.expire_due(connection)
        await self.release(expired)
        return len(expired)

    # ------------------------------------------------------------------ the gate's state

    async def apply_event(self, event: Event) -> bool:
        """Catalog's push: a flash sale's new version, or (any kind) a cancellation, which
        voids the event's reserved orders in the same transaction."""
        async with self.engine.begin() as connection:
            applied = event.kind == "flash_sale" and await store.apply_event(connection, event)
            if event.status == "cancelled":
                await store.void_event(connection, event)
        if applied:
            await self.publish(event.id, replace=event.status == "scheduled")
        return applied

    async def publish(self, event_id: UUID, *, replace: bool) -> None:
        """Put an event's state from PostgreSQL into the gate. `replace` also overwrites the
        counts (a rebuild); otherwise counts already in Redis are kept."""
        async with self.engine.connect() as connection:
            found = await store.event_state(connection, event_id)
            holdings = await store.holdings_of(connection, event_id) if replace else []
            now: datetime = await connection.scalar(store.sa.select(store.sa.func.now()))
        if found is None:
            return
        event, offers = found
        is_open = event.status in domain.LIVE_STATUSES and event.ends_at > now
        await self.gate.load(
            event.id,
            [(o.id, o.stock, o.remaining, o.per_user_limit) for o in offers],
            holdings,
            event.ends_at if is_open else None,
            replace=replace,
        )

    async def rebuild_offer(self, offer_id: UUID, force: bool = False) -> bool:
        """Reload the offer's event into the gate (Redis was flushed or is wrong). False if
        PostgreSQL does not know the offer. One rebuild at a time per event and replica."""
        async with self.engine.connect() as connection:
            event_id = await store.event_of_offer(connection, offer_id)
        if event_id is None:
            return False
        lock = self._rebuilding.setdefault(event_id, asyncio.Lock())
        async with lock:
            if force or not await self.gate.is_loaded([offer_id]):
                log.warning("rebuilding the gate of event %s from PostgreSQL", event_id)
                await self.publish(event_id, replace=True)
        return True
