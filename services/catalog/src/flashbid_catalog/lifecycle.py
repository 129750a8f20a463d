"""The scheduler (events go live and end on time) and the sync loop (purchase and bidding
learn every change). Both run in every replica; the database makes each step happen once."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import httpx
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from flashbid_catalog import domain, store
from flashbid_catalog.clients import Peers
from flashbid_shared.contracts import Event
from flashbid_shared.http import service_client
from flashbid_shared.observability import round_failed

log = logging.getLogger(__name__)
MAX_WAIT = 1.0  # changes made through another replica are seen within this
MIN_WAIT = 0.02


class Lifecycle:
    def __init__(self, engine: AsyncEngine, peers: Peers) -> None:
        self.engine, self.peers = engine, peers
        self.scheduler_wake, self.sync_wake = asyncio.Event(), asyncio.Event()

    def poke(self) -> None:
        """Something changed here: look again now instead of at the next tick."""
        self.scheduler_wake.set()
        self.sync_wake.set()

    async def run_scheduler(self) -> None:
        while True:
            wait = MAX_WAIT
            try:
                async with self.engine.begin() as connection:
                    moved = await store.advance(connection)
                    due = await store.seconds_to_next_due(connection)
                if moved:
                    log.info("events moved: %s", [(str(i), s) for i, s in moved])
                    self.sync_wake.set()
                if due is not None:
                    wait = min(max(due, MIN_WAIT), MAX_WAIT)
            except Exception as exc:
                round_failed(log, "scheduler round", exc)
            await _wait(self.scheduler_wake, wait)

    async def change(self, event_id: UUID, action: str, actor: str) -> Event:
        """An admin's transition, made here and then delivered before it is answered: once
        this returns, purchase and bidding act on it for every later request. If a peer does
        not take it, the change stays and the sync loop keeps delivering it."""
        async with self.engine.begin() as connection:
            await store.change_status(connection, event_id, action, actor)
            event = await store.get_event(connection, event_id, public=False)
        if event.status != "draft":
            try:
                await self.peers.push(event)
            except httpx.HTTPError as exc:
                self.poke()
                log.warning("event %s not delivered at once: %r", event_id, exc)
                raise domain.NotConfirmed(
                    f"The event is {event.status} here, but the service that runs it has not "
                    "confirmed it yet; it is told again until it does. Retry to wait for it.",
                    retry_after=1,
                ) from None
            async with self.engine.begin() as connection:
                await store.mark_synced(connection, event.id, event.version)
        self.poke()
        return event

    async def sync_once(self) -> int:
        async with self.engine.begin() as connection:
            claimed = await store.claim_unsynced(connection)
        if not claimed:
            return 0
        async with self.engine.connect() as connection:
            events = await store.load_events(connection, list(claimed), public=False)

        async def push(event: Event) -> None:
            try:
                await self.peers.push(event)
                async with self.engine.begin() as connection:
                    await store.mark_synced(connection, event.id, event.version)
            except Exception as exc:
                delay = min(0.5 * 2 ** claimed[event.id], 30.0)
                reason = (
                    f"HTTP {exc.response.status_code}"
                    if isinstance(exc, httpx.HTTPStatusError)
                    else repr(exc)
                )
                log.warning("event %s not pushed (%s); again in %.1fs", event.id, reason, delay)
                async with self.engine.begin() as connection:
                    await store.retry_sync_later(connection, event.id, delay)

        await asyncio.gather(*(push(event) for event in events))
        return len(events)

    async def run_sync(self) -> None:
        while True:
            try:
                if await self.sync_once():
                    continue
            except Exception as exc:
                round_failed(log, "sync round", exc)
            await _wait(self.sync_wake, 0.5)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    event.clear()


@asynccontextmanager
async def lifecycle(app: Litestar) -> AsyncIterator[None]:
    settings = app.state.settings
    async with service_client(tokens=app.state.service_tokens, timeout=3.0) as http:
        app.state.peers = Peers(
            http, settings.purchase_url, settings.bidding_url, settings.figures_timeout
        )
        app.state.lifecycle = running = Lifecycle(app.state.engine, app.state.peers)
        tasks = [
            asyncio.create_task(running.run_scheduler()),
            asyncio.create_task(running.run_sync()),
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
