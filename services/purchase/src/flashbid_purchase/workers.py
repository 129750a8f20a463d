"""Background work in every replica: expiring reservations, telling catalog about sold-out
events, sending emails, and reconciling with catalog. Each step is safe to run in several
replicas at once."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar
from redis.asyncio import Redis

from flashbid_purchase import store
from flashbid_purchase.clients import Catalog
from flashbid_purchase.gate import Gate
from flashbid_purchase.sales import Sales
from flashbid_shared.database import warm
from flashbid_shared.http import service_client
from flashbid_shared.mail import notify
from flashbid_shared.observability import round_failed

log = logging.getLogger(__name__)


async def report_stock(sales: Sales, catalog: Catalog) -> None:
    async with sales.engine.connect() as connection:
        news = await store.stock_news(connection)
    for event_id, sold_out in news:
        await catalog.report_stock(event_id, sold_out)
        async with sales.engine.begin() as connection:
            await store.reported(connection, event_id, sold_out)


async def send_notices(sales: Sales, http: httpx.AsyncClient, auth_url: str) -> None:
    """Emails written with the change they tell of (a voided order), sent through auth."""
    async with sales.engine.begin() as connection:
        due = await store.claim_notices(connection)
    if not due:
        return
    try:
        await notify(http, auth_url, [notice.payload for notice in due])
        retry_in = None
    except httpx.HTTPError as exc:
        retry_in = min(2.0 ** max(notice.attempts for notice in due), 300.0)
        log.warning("%d email(s) not sent: %r; again in %.0fs", len(due), exc, retry_in)
    async with sales.engine.begin() as connection:
        await store.finish_notices(connection, [notice.id for notice in due], retry_in)


async def reconcile(sales: Sales, catalog: Catalog) -> None:
    """A lost push from catalog only delays a change; an emptied Redis is refilled."""
    current = {event.id: event for event in await catalog.open_flash_sales()}
    async with sales.engine.connect() as connection:
        ours = await store.unsettled_event_ids(connection)
    for event_id in set(ours) - set(current):
        if (event := await catalog.event(event_id)) is not None:
            current[event_id] = event
    for event in current.values():
        await sales.apply_event(event)
    async with sales.engine.begin() as connection:
        open_ids = await store.open_event_ids(connection)
        await store.forget_old_keys(connection)
    for event_id in open_ids:
        async with sales.engine.connect() as connection:
            found = await store.event_state(connection, event_id)
        if found and not await sales.gate.is_loaded([offer.id for offer in found[1]]):
            await sales.publish(event_id, replace=True)


async def every(seconds: float, work: Callable[[], Awaitable[object]], wake: asyncio.Event) -> None:
    while True:
        try:
            await work()
        except Exception as exc:
            round_failed(log, getattr(work, "__name__", "background work"), exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)
        wake.clear()


@asynccontextmanager
async def sales_lifespan(app: Litestar) -> AsyncIterator[None]:
    settings = app.state.settings
    stock_changed = asyncio.Event()
    async with service_client(tokens=app.state.service_tokens, timeout=3.0) as http:
        redis: Redis = app.state.redis
        users = app.state.users  # kept in step with auth's feed by the platform
        sales = Sales(
            app.state.engine,
            Gate(redis, app.state.redis_line),
            users,
            require_verified=settings.require_verified_email,
            on_stock_change=stock_changed.set,
        )
        catalog = Catalog(http, settings.catalog_url)
        app.state.sales = sales
        never = asyncio.Event()
        tasks = [
            asyncio.create_task(
                warm(app.state.engine, settings.database_pool_size, lambda c: store.reserve(c, []))
            ),
            asyncio.create_task(every(1.0, sales.expire_due, never)),
            asyncio.create_task(every(1.0, lambda: report_stock(sales, catalog), stock_changed)),
            asyncio.create_task(
                every(1.0, lambda: send_notices(sales, http, settings.auth_url), never)
            ),
            asyncio.create_task(
                every(settings.reconcile_interval, lambda: reconcile(sales, catalog), never)
            ),
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sales.close()
