"""Background work in every replica: settling lots and sessions at their end, performing the
follow-ups of settlement (orders, emails), reconciling with catalog. Each is safe with
several replicas: the database hands each piece of work to one of them."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar

from flashbid_bidding import store
from flashbid_bidding.board import Board
from flashbid_bidding.clients import Peers
from flashbid_bidding.house import AuctionHouse
from flashbid_bidding.hub import Hub
from flashbid_bidding.live import Renderer, is_active
from flashbid_shared.contracts import Event
from flashbid_shared.http import service_client
from flashbid_shared.observability import round_failed

log = logging.getLogger(__name__)


async def apply_event(house: AuctionHouse, event: Event) -> bool:
    async with house.engine.begin() as connection:
        applied, moved = await store.apply_event(connection, event)
    if applied:
        for lot_id in [offer.id for offer in event.offers if event.kind == "auction"]:
            await house.board.redis.delete(f"bid:lot:{lot_id}")  # read again from PostgreSQL
        house.forget_session(event)
    if moved:
        await house.board.publish(event.id, {"type": "status", "status": event.status})
    return applied


async def perform_tasks(house: AuctionHouse, peers: Peers) -> int:
    """Due tasks: winners' orders in purchase and auctions' ends to catalog, a call each and
    20 at once; emails, up to 500
    in one call to auth (a ranked storm's outbid emails are thousands, all due a minute later:
    a call each took half of bidding's core from the bids). Each is done, or tried again
    later if its call failed."""
    async with house.engine.begin() as connection:
        awards = await store.claim_tasks(connection, "award", 20)
        reports = await store.claim_tasks(connection, "report", 20)
        emails = await store.claim_tasks(connection, "notify", 500)
    calls = [([task], peers.award(task.payload)) for task in awards]
    calls += [([task], peers.report_lots_end(task.payload)) for task in reports]
    if emails:
        calls.append((emails, peers.notify([task.payload for task in emails])))
    retries = await asyncio.gather(*(attempt(tasks, call) for tasks, call in calls))
    async with house.engine.begin() as connection:
        for (tasks, _), retry_in in zip(calls, retries, strict=True):
            await store.finish_tasks(connection, [task.id for task in tasks], retry_in)
    return len(awards) + len(reports) + len(emails)


async def purge_tasks(house: AuctionHouse) -> None:
    async with house.engine.begin() as connection:
        await store.purge_done_tasks(connection)


async def attempt(tasks: list[Any], call: Awaitable[None]) -> float | None:
    """None once done; otherwise the seconds until the next attempt."""
    try:
        await call
    except httpx.HTTPError as exc:
        retry_in = min(2.0 ** max(task.attempts for task in tasks), 300.0)
        log.warning(
            "%d %s task(s) failed: %r; again in %.0fs", len(tasks), tasks[0].kind, exc, retry_in
        )
        return retry_in
    return None


async def remind(house: AuctionHouse) -> None:
    """Emails to everyone taking part: the event starts soon; the event has ended."""
    async with house.engine.begin() as connection:
        await store.notify_participants(connection, f"{house.public_url}/#/events/")


async def reconcile(house: AuctionHouse, peers: Peers) -> None:
    current = {event.id: event for event in await peers.open_events()}
    async with house.engine.connect() as connection:
        ours = await store.unsettled_event_ids(connection)
    for event_id in set(ours) - set(current):
        if (event := await peers.event(event_id)) is not None:
            current[event_id] = event
    for event in current.values():
        await apply_event(house, event)


async def every(seconds: float, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            busy = await work()
        except Exception as exc:
            round_failed(log, getattr(work, "__name__", "background work"), exc)
            busy = 0
        if not busy:
            await asyncio.sleep(seconds)


@asynccontextmanager
async def bidding_lifespan(app: Litestar) -> AsyncIterator[None]:
    settings = app.state.settings
    async with service_client(tokens=app.state.service_tokens, timeout=3.0) as http:
        board = Board(app.state.redis, app.state.redis_line)
        users = app.state.users  # kept in step with auth's feed by the platform
        house = AuctionHouse(
            app.state.engine,
            board,
            users,
            require_verified=settings.require_verified_email,
            public_url=settings.public_url,
        )
        peers = Peers(http, settings.catalog_url, settings.purchase_url, settings.auth_url)
        hub = Hub(app.state.redis_line, Renderer(house).render, lambda user: is_active(users, user))
        app.state.house, app.state.hub, app.state.peers = house, hub, peers
        tasks = [
            asyncio.create_task(house.writes.warm()),
            asyncio.create_task(hub.listen()),
            asyncio.create_task(hub.push()),
            asyncio.create_task(hub.watchdog()),
            asyncio.create_task(hub.follow_accounts()),
            asyncio.create_task(every(0.25, house.settle_due)),
            asyncio.create_task(every(1.0, lambda: perform_tasks(house, peers))),
            asyncio.create_task(every(3600.0, lambda: purge_tasks(house))),
            asyncio.create_task(every(5.0, lambda: remind(house))),
            asyncio.create_task(every(1.0, house.flush_emails)),
            asyncio.create_task(
                every(settings.reconcile_interval, lambda: reconcile(house, peers))
            ),
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await house.ranked.close()
        await house.writes.close()
        await house.flush_emails()
