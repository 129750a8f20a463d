"""A service's PostgreSQL pool and Redis client: opened in its lifespan, checked by readiness."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
import sqlalchemy as sa
from litestar import Litestar
from litestar.datastructures import State
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from flashbid_shared.redisline import RedisLine

log = logging.getLogger(__name__)


@asynccontextmanager
async def postgres(app: Litestar) -> AsyncIterator[None]:
    """Lifespan: `app.state.engine` from `settings.database_url`."""
    settings = app.state.settings
    engine = create_async_engine(
        settings.database_url, pool_size=settings.database_pool_size, max_overflow=10
    )
    app.state.engine = engine
    try:
        yield
    finally:
        await engine.dispose()


async def ping_postgres(state: State) -> None:
    engine: AsyncEngine = state.engine
    async with engine.connect() as connection:
        await connection.exec_driver_sql("SELECT 1")


async def warm(
    engine: AsyncEngine, connections: int, *statements: Callable[[AsyncConnection], Awaitable[Any]]
) -> None:
    """Open `connections` of the pool and run each of `statements` on each (they must change
    nothing): a storm's first writes then find a connection open with its statement prepared.
    Otherwise the first write opens the connection, introspects its types and prepares its
    statement, several round trips on a loop busy with the storm, while the writes behind it
    wait: a flash sale's first batch of winners took 56-66 ms that way instead of 5. At startup,
    in the background: a failure is only logged (readiness reports PostgreSQL away)."""
    try:
        async with AsyncExitStack() as stack:
            for _ in range(connections):
                connection = await stack.enter_async_context(engine.connect())
                for statement in statements:
                    await statement(connection)
    except (OSError, SQLAlchemyError) as exc:
        log.warning("could not warm the PostgreSQL pool: %r", exc)


class PostgresLine:
    """One PostgreSQL connection of its own for one hot statement, prepared once: a group
    commit's writes, which go one batch at a time (`Batcher`), need no pool. Through
    SQLAlchemy's pool and execution a one-bid batch cost about 0.6 ms of CPU here, through
    asyncpg alone about 0.2: at 500 bids a second most batches hold one bid.

    A lost connection fails the write in flight with ConnectionResetError (it is not sent
    twice; an OSError is answered 503) and the next write connects again."""

    def __init__(self, url: str, sql: str, timeout: float = 5.0) -> None:
        self.url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.sql, self.timeout = sql, timeout
        self._connection: asyncpg.Connection | None = None
        self._statement: Any = None
        self._opening = asyncio.Lock()

    async def fetch(self, *args: Any) -> list[asyncpg.Record]:
        statement = self._statement or await self._open()
        try:
            return await statement.fetch(*args)
        except Exception as exc:
            if self._connection is not None and not self._connection.is_closed():
                raise  # the statement failed, not the connection
            await self.close()  # the next write connects again
            raise ConnectionResetError("PostgreSQL closed the connection") from exc

    async def warm(self) -> None:
        """Connect and prepare now (at startup, in the background), not on a storm's first
        write; a failure is only logged (readiness reports PostgreSQL away)."""
        try:
            await self._open()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("could not prepare the hot statement: %r", exc)

    async def close(self) -> None:
        connection, self._connection, self._statement = self._connection, None, None
        if connection is not None:
            connection.terminate()

    async def _open(self) -> Any:
        async with self._opening:
            if self._statement is None:
                connection = await asyncpg.connect(self.url, timeout=self.timeout)
                try:
                    self._statement = await connection.prepare(self.sql)
                except BaseException:
                    connection.terminate()
                    raise
                self._connection = connection
        return self._statement


async def provide_connection(state: State) -> AsyncIterator[AsyncConnection]:
    """Dependency: a connection inside a transaction that commits when the handler returns."""
    async with state.engine.begin() as connection:
        yield connection


@asynccontextmanager
async def redis(app: Litestar) -> AsyncIterator[None]:
    """Lifespan: `app.state.redis` (a pool) and `app.state.redis_line` (one pipelined
    connection, for the hot paths) from `settings.redis_url`."""
    client = redis_client(app.state.settings.redis_url)
    app.state.redis = client
    app.state.redis_line = RedisLine(app.state.settings.redis_url)
    try:
        yield
    finally:
        await app.state.redis_line.aclose()
        await client.aclose()


def redis_client(url: str, connections: int = 256) -> Redis:
    """A pool that waits for a free connection (rather than failing) when all are busy. A
    pooled connection the server closed (a restart, a kill) fails its command once: it is
    sent again at once on a new one."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )
    return Redis(connection_pool=pool)


async def ping_redis(state: State) -> None:
    await state.redis.ping()


def timestamp(name: str, *args: Any, **kwargs: Any) -> sa.Column:
    """A `timestamptz` column: every time Flashbid stores is in UTC with its zone."""
    return sa.Column(name, sa.DateTime(timezone=True), *args, **kwargs)
