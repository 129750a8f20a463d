import asyncio
import logging
import socket

from sqlalchemy.ext.asyncio import create_async_engine

from flashbid_shared.database import warm


def test_warming_a_pool_whose_database_is_away_only_logs(caplog) -> None:
    """At startup PostgreSQL may not be up yet: the service starts anyway (readiness says so)."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ran = []

    async def main() -> None:
        engine = create_async_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{port}/none")
        await warm(engine, 2, lambda connection: asyncio.sleep(0, ran.append(connection)))
        await engine.dispose()

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert ran == []
    assert "could not warm the PostgreSQL pool" in caplog.text
