import secrets
import sys
import time
import uuid
from pathlib import Path

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_auth import accounts
from flashbid_auth.schemas import Register
from flashbid_auth.settings import Settings
from flashbid_auth.store import add_key, ensure_key, users
from flashbid_shared.cli import in_transaction, main

DEMO_USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]
DEMO_PASSWORD = "flashbid-demo-2026"
BENCH_TOKEN_TTL = 3600
BENCH_BATCH = 5000


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


def bench_users(settings: Settings) -> None:
    """`bench-users COUNT OUT_FILE`: COUNT verified customers for the load bench, made in bulk
    (one argon2 hash of a password nobody is told, computed once), and an hour's access token for
    each, one per line: the token a login would give, signed with the current key."""
    try:
        count, out_file = int(sys.argv[2]), Path(sys.argv[3])
    except (IndexError, ValueError):
        sys.exit("usage: python -m flashbid_auth bench-users COUNT OUT_FILE")
    started = time.monotonic()
    run = secrets.token_hex(4)
    password_hash = accounts.hasher.hash(secrets.token_urlsafe(24))
    token_settings = msgspec.structs.replace(settings, access_token_ttl=BENCH_TOKEN_TTL)
    tokens: list[str] = []

    async def create(connection: AsyncConnection) -> None:
        key = await ensure_key(connection, settings.key_encryption_secret)
        insert = users.insert().returning(users.c.id, users.c.role, users.c.email_verified)
        for first in range(1, count + 1, BENCH_BATCH):
            names = [f"bench-{run}-{n}" for n in range(first, min(first + BENCH_BATCH, count + 1))]
            rows = await connection.execute(
                insert,
                [
                    {
                        "id": uuid.uuid4(),
                        "email": f"{name}@bench.flashbid.local",
                        "username": name,
                        "display_name": name,
                        "password_hash": password_hash,
                        "email_verified": True,
                        "role": "customer",
                    }
                    for name in names
                ],
            )
            # No refresh token: the session id names a session with nothing to refresh.
            tokens.extend(
                accounts.access_token(user, key, token_settings, uuid.uuid4()) for user in rows
            )

    in_transaction(settings.database_url, create)
    out_file.write_text("".join(f"{token}\n" for token in tokens))
    print(
        f"{count} bench users bench-{run}-1..{count} in {time.monotonic() - started:.1f}s; "
        f"their access tokens are in {out_file}"
    )


main(
    Settings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    commands={
        "rotate-keys": rotate_keys,
        "create-admin": create_admin,
        "seed": seed,
        "bench-users": bench_users,
    },
)
