import secrets
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_auth import accounts
from flashbid_auth.schemas import Register
from flashbid_auth.settings import Settings
from flashbid_auth.store import add_key
from flashbid_shared.cli import in_transaction, main

DEMO_USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]
DEMO_PASSWORD = "flashbid-demo-2026"


def rotate_keys(settings: Settings) -> None:
    """Start signing with a new key; the previous one stays in the JWKS."""

    async def rotate(connection: AsyncConnection) -> None:
        key = await add_key(connection, settings.key_encryption_secret)
        print(f"new signing key {key.kid}")

    in_transaction(settings.database_url, rotate)


def create_admin(settings: Settings) -> None:
    """The first administrator, once. Without ADMIN_PASSWORD one is made and printed once."""

    async def create(connection: AsyncConnection) -> None:
        if await accounts.find_by_email(connection, settings.admin_email):
            return
        password = settings.admin_password or secrets.token_urlsafe(12)
        await accounts.register(
            connection,
            Register(
                email=settings.admin_email,
                username=settings.admin_username,
                password=password,
                display_name="Administrator",
            ),
            verified=True,
            role="admin",
        )
        shown = password if not settings.admin_password else "(ADMIN_PASSWORD)"
        print(f"first admin created: {settings.admin_username} / {shown}  (shown once)")

    in_transaction(settings.database_url, create)


def seed(settings: Settings) -> None:
    """Demo customers with verified addresses, all with the same demo password."""

    async def create(connection: AsyncConnection) -> None:
        for n, name in enumerate(DEMO_USERS, 1):
            if await accounts.find_by_email(connection, f"{name}@flashbid.local") is None:
                await accounts.register(
                    connection,
                    Register(
                        email=f"{name}@flashbid.local",
                        username=name,
                        password=DEMO_PASSWORD,
                        display_name=name.capitalize(),
                    ),
                    verified=True,
                )
            print(f"  demo user {n}/{len(DEMO_USERS)}: {name}", flush=True)
        print(f"demo users' password: {DEMO_PASSWORD}")

    in_transaction(settings.database_url, create)


main(
    Settings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    commands={"rotate-keys": rotate_keys, "create-admin": create_admin, "seed": seed},
)
