"""The stores every service starts on, against the real PostgreSQL and FerretDB."""

import asyncio
import uuid

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from flashbid_auth.store import KeyRing, signing_keys
from flashbid_reviews.store import ensure_indexes
from flashbid_shared.database import PostgresLine
from flashbid_shared.observability import AWAY

pytestmark = pytest.mark.stack


def test_replicas_starting_together_create_one_signing_key(scratch_database) -> None:
    url = scratch_database("auth")

    async def race() -> tuple[set[str], int]:
        engines = [create_async_engine(url) for _ in range(6)]
        rings = [KeyRing(engine, "secret") for engine in engines]
        keys = await asyncio.gather(*(ring.current() for ring in rings))
        async with engines[0].connect() as connection:
            count = await connection.scalar(select(func.count()).select_from(signing_keys))
        for engine in engines:
            await engine.dispose()
        return {key.kid for key in keys}, count

    kids, count = asyncio.run(race())
    assert count == 1
    assert len(kids) == 1


def test_a_hot_statement_line_dropped_by_postgresql_fails_one_write_then_connects_again(
    scratch_database,
) -> None:
    url = scratch_database("auth")

    async def scenario() -> tuple[list, Exception, list, int, int]:
        line = PostgresLine(url, "SELECT $1::int + 1 AS n, pg_backend_pid() AS pid")
        await line.warm()
        first = await line.fetch(1)
        engine = create_async_engine(url)
        async with engine.connect() as connection:  # the server ends the line's session
            await connection.execute(select(func.pg_terminate_backend(first[0]["pid"])))
        await engine.dispose()
        with pytest.raises(Exception) as failed:
            await line.fetch(2)
        again = await line.fetch(3)
        await line.close()
        return first, failed.value, again, first[0]["pid"], again[0]["pid"]

    first, failure, again, before, after = asyncio.run(scenario())
    assert first[0]["n"] == 2 and again[0]["n"] == 4
    assert isinstance(failure, AWAY)  # answered 503 `unavailable`, not 500
    assert after != before  # a new session, its statement prepared again


def test_review_indexes_are_idempotent_and_enforce_one_review_per_user_and_item(profile) -> None:
    async def run() -> None:
        client: AsyncMongoClient = AsyncMongoClient(
            f"mongodb://127.0.0.1:{profile.ports['ferretdb']}/"
        )
        db = client[f"scratch_{uuid.uuid4().hex[:12]}"]
        try:
            await ensure_indexes(db)
            await ensure_indexes(db)  # every start runs this again
            await db.reviews.insert_one({"item_id": "i1", "user_id": "u1", "rating": 5})
            await db.reviews.insert_one({"item_id": "i1", "user_id": "u2", "rating": 4})
            with pytest.raises(DuplicateKeyError):
                await db.reviews.insert_one({"item_id": "i1", "user_id": "u1", "rating": 1})
        finally:
            await client.drop_database(db.name)
            await client.close()

    asyncio.run(run())
