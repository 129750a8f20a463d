"""What reviews runs beside its routes: its clients of catalog, purchase and auth, and a loop
that fills in late answers and finishes summaries left unsettled. Safe in every replica."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

from flashbid_reviews.clients import Catalog, Purchase
from flashbid_reviews.domain import StoreUnavailable
from flashbid_reviews.ratings import Ratings
from flashbid_reviews.store import Comments, Decisions, Reviews, Summaries
from flashbid_reviews.threads import Threads
from flashbid_shared.http import service_client

log = logging.getLogger(__name__)


async def repair(ratings: Ratings, threads: Threads, grace: float) -> None:
    """One round; `grace` is how long a writer may take before its work is presumed lost."""
    swept = await ratings.sweep(grace)
    reviews = await ratings.complete_pending()
    comments = await threads.complete_pending()
    decisions = await ratings.recheck_decisions(3 * grace)
    decisions += await threads.recheck_decisions(3 * grace)
    if swept or reviews or comments or decisions:
        log.info(
            "repaired %d summaries, %d reviews, %d comments, %d moderation decisions",
            swept, reviews, comments, decisions,
        )  # fmt: skip


async def repair_forever(ratings: Ratings, threads: Threads, interval: float, grace: float):
    while True:
        try:
            await repair(ratings, threads, grace)
        except StoreUnavailable:
            pass  # already logged; MongoDB will be back
        except Exception:
            log.exception("repair round failed")
        await asyncio.sleep(interval)


@asynccontextmanager
async def reviews_lifespan(app: Litestar) -> AsyncIterator[None]:
    settings = app.state.settings
    db = app.state.mongo
    async with service_client(tokens=app.state.service_tokens, timeout=3.0) as http:
        catalog = Catalog(http, settings.catalog_url, timeout=settings.catalog_timeout)
        purchase = Purchase(http, settings.purchase_url, timeout=settings.purchase_timeout)
        users = app.state.users  # kept in step with auth's feed by the platform
        decisions = Decisions(db)
        app.state.ratings = ratings = Ratings(
            Reviews(db), Summaries(db), decisions, catalog, purchase, users
        )
        app.state.threads = threads = Threads(Comments(db), decisions, catalog, users)
        task = asyncio.create_task(
            repair_forever(ratings, threads, settings.repair_interval, settings.summary_grace)
        )
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
