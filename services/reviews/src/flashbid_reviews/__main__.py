import asyncio

from pymongo import AsyncMongoClient

from flashbid_reviews.settings import Settings
from flashbid_reviews.store import ensure_indexes
from flashbid_shared.cli import main


def migrate(settings: Settings) -> None:
    """Reviews has no schema to migrate; its indexes are created here and at every start."""

    async def run() -> None:
        client: AsyncMongoClient = AsyncMongoClient(settings.mongo_url)
        await ensure_indexes(client[settings.mongo_database])
        await client.close()

    asyncio.run(run())


main(Settings, commands={"migrate": migrate})
