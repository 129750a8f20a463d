"""Auth's tables and the stores over them."""

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from flashbid_auth.keys import SigningKey, seal, unseal

metadata = sa.MetaData()

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.Text, primary_key=True),
    sa.Column("algorithm", sa.Text, nullable=False),
    sa.Column("sealed_private_key", sa.LargeBinary, nullable=False),
    sa.Column("public_jwk", JSONB, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
)

PUBLISHED_KEYS = 2  # the current key and the one before it, so a rotation breaks no token
KEY_LOCK = 0x6B657973  # "keys"


class KeyRing:
    """The newest signing key, re-read now and then so that a rotation reaches every replica."""

    def __init__(self, engine: AsyncEngine, secret: str, reload_after: float = 30.0) -> None:
        self._engine, self._secret, self._reload_after = engine, secret, reload_after
        self._current: SigningKey | None = None
        self._loaded_at = float("-inf")

    async def current(self) -> SigningKey:
        if self._current is None or time.monotonic() - self._loaded_at > self._reload_after:
            async with self._engine.begin() as connection:
                self._current = await ensure_key(connection, self._secret)
            self._loaded_at = time.monotonic()
        return self._current

    async def jwks(self) -> dict[str, Any]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                sa.select(signing_keys.c.public_jwk)
                .order_by(signing_keys.c.created_at.desc())
                .limit(PUBLISHED_KEYS)
            )
            return {"keys": [row.public_jwk for row in rows]}


async def add_key(connection: AsyncConnection, secret: str) -> SigningKey:
    key = SigningKey.generate()
    await connection.execute(
        signing_keys.insert().values(
            kid=key.kid,
            algorithm="EdDSA",
            sealed_private_key=seal(secret, key),
            public_jwk=key.public_jwk(),
            created_at=sa.func.clock_timestamp(),
        )
    )
    return key


async def ensure_key(connection: AsyncConnection, secret: str) -> SigningKey:
    """The newest key; the first one is created here, once, even with replicas starting together."""
    await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(KEY_LOCK)))
    row = (
        await connection.execute(
            sa.select(signing_keys.c.kid, signing_keys.c.sealed_private_key)
            .order_by(signing_keys.c.created_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return await add_key(connection, secret)
    return unseal(secret, row.kid, row.sealed_private_key)
