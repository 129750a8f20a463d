import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from flashbid_purchase import store
from flashbid_purchase.gate import Gate
from flashbid_purchase.sales import Sales
from flashbid_purchase.settings import Settings
from flashbid_shared.cli import main
from flashbid_shared.database import redis_client
from flashbid_shared.redisline import RedisLine


def rebuild_gate(settings: Settings) -> None:
    """Rewrite the Redis gate of every open flash sale from PostgreSQL, the source of truth."""

    async def run() -> None:
        engine = create_async_engine(settings.database_url)
        redis, line = redis_client(settings.redis_url), RedisLine(settings.redis_url)
        sales = Sales(engine, Gate(redis, line), users=None, require_verified=True)  # type: ignore[arg-type]
        async with engine.connect() as connection:
            event_ids = await store.open_event_ids(connection)
        for event_id in event_ids:
            await sales.publish(event_id, replace=True)
            print(f"  rebuilt event {event_id}", flush=True)
        await line.aclose()
        await redis.aclose()
        await engine.dispose()

    asyncio.run(run())


main(
    Settings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    commands={"rebuild-gate": rebuild_gate},
)
