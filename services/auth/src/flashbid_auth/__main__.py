import asyncio
from pathlib import Path

from flashbid_shared.cli import main
from sqlalchemy.ext.asyncio import create_async_engine

from flashbid_auth.settings import Settings
from flashbid_auth.store import add_key


def rotate_keys(settings: Settings) -> None:
    """Start signing with a new key; the previous one stays in the JWKS."""

    async def rotate() -> None:
        engine = create_async_engine(settings.database_url)
        async with engine.begin() as connection:
            key = await add_key(connection, settings.key_encryption_secret)
        await engine.dispose()
        print(f"new signing key {key.kid}")

    asyncio.run(rotate())


main(
    Settings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    commands={"rotate-keys": rotate_keys},
)
