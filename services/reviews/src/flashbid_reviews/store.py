"""Reviews' collections on the MongoDB wire protocol (FerretDB 1.24 locally: no transactions)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger(__name__)

INDEXES = {
    "reviews": [
        IndexModel([("item_id", ASCENDING), ("user_id", ASCENDING)], unique=True),
        IndexModel([("item_id", ASCENDING), ("created_at", DESCENDING)]),
    ],
}


async def ensure_indexes(db: AsyncDatabase) -> None:
    # Only the missing ones: FerretDB 1.24 drops the connection on a createIndexes that repeats
    # an existing index, where MongoDB answers ok.
    for collection, indexes in INDEXES.items():
        existing = await db[collection].index_information()
        missing = [index for index in indexes if index.document["name"] not in existing]
        if missing:
            await db[collection].create_indexes(missing)


async def _ensure_indexes_until_done(db: AsyncDatabase) -> None:
    """MongoDB may be down when we start; the service still starts and catches up."""
    delay = 0.5
    while True:
        try:
            await ensure_indexes(db)
            return
        except Exception as exc:
            log.warning("indexes not created yet: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


@asynccontextmanager
async def mongo(app: Litestar) -> AsyncIterator[None]:
    settings = app.state.settings
    client: AsyncMongoClient = AsyncMongoClient(
        settings.mongo_url, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, tz_aware=True
    )
    app.state.mongo = client[settings.mongo_database]
    indexing = asyncio.create_task(_ensure_indexes_until_done(app.state.mongo))
    try:
        yield
    finally:
        indexing.cancel()
        await client.close()


async def ping_mongo(state: State) -> None:
    await state.mongo.command("ping")
