"""`python -m flashbid_<service> <command>`: the commands every service understands."""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from flashbid_shared.migrations import upgrade
from flashbid_shared.settings import from_env

Command = Callable[[msgspec.Struct], None]


def main(
    settings_cls: type[msgspec.Struct],
    *,
    migrations: Path | None = None,
    commands: dict[str, Command] | None = None,
) -> None:
    available: dict[str, Command] = dict(commands or {})
    if migrations is not None:
        available["migrate"] = lambda settings: upgrade(migrations, settings.database_url)
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in available:
        sys.exit(f"usage: python -m <service> {{{'|'.join(sorted(available))}}}")
    available[name](from_env(settings_cls))


def in_transaction(database_url: str, work: Callable[[AsyncConnection], Awaitable[None]]) -> None:
    """Run `work` in one transaction of the service's database (for commands)."""

    async def run() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as connection:
                await work(connection)
        finally:
            await engine.dispose()

    asyncio.run(run())
