"""Alembic for the Postgres services, run programmatically: no alembic.ini to keep in step."""

import asyncio
from pathlib import Path

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

MIGRATION_LOCK = 0x666C617368  # "flash": two replicas migrating at once take turns


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url)
    command.upgrade(config, revision)


def run_migrations(metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py`."""
    from alembic import context

    def migrate(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(
            context.config.get_main_option("sqlalchemy.url"), poolclass=NullPool
        )
        async with engine.begin() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())
