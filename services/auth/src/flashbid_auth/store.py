"""Auth's tables and the stores over them."""

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from flashbid_auth.keys import ALGORITHM, SigningKey, seal, unseal
from flashbid_shared.database import timestamp

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


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False, server_default="customer"),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("email_verified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("weight", sa.Float, nullable=False, server_default="1.0"),
    sa.Column("mfa_secret", sa.LargeBinary),
    sa.Column("mfa_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("mfa_last_step", sa.BigInteger),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    timestamp("locked_until"),
    timestamp("created_at", nullable=False, server_default=sa.func.now()),
    timestamp("updated_at", nullable=False, server_default=sa.func.now()),
    # when a field of `UserSummary` last changed: other services follow these changes
    timestamp("summary_changed_at"),
)

email_codes = sa.Table(
    "email_codes",
    metadata,
    sa.Column("user_id", UUID(as_uuid=True), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("code_hash", sa.Text, nullable=False),
    timestamp("expires_at", nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    timestamp("sent_at", nullable=False, server_default=sa.func.now()),
)

password_resets = sa.Table(
    "password_resets",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("user_id", UUID(as_uuid=True), sa.ForeignKey("users.id"), nullable=False),
    timestamp("expires_at", nullable=False),
    timestamp("used_at"),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("family_id", UUID(as_uuid=True), nullable=False),
    sa.Column("user_id", UUID(as_uuid=True), sa.ForeignKey("users.id"), nullable=False),
    timestamp("expires_at", nullable=False),
    timestamp("spent_at"),
    timestamp("revoked_at"),
    timestamp("created_at", nullable=False, server_default=sa.func.now()),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("to_address", sa.Text, nullable=False),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("data", JSONB, nullable=False),
    timestamp("created_at", nullable=False, server_default=sa.func.now()),
    timestamp("next_attempt_at", nullable=False, server_default=sa.func.now()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    timestamp("sent_at"),
    sa.Column("last_error", sa.Text),
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
            algorithm=key.algorithm,
            sealed_private_key=seal(secret, key),
            public_jwk=key.public_jwk(),
            created_at=sa.func.clock_timestamp(),
        )
    )
    return key


async def ensure_key(connection: AsyncConnection, secret: str) -> SigningKey:
    """The newest key. The first one is created here, once, even with replicas starting
    together; so is a successor when the newest uses an older algorithm than ALGORITHM (its
    tokens stay valid: it is still published)."""
    await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(KEY_LOCK)))
    row = (
        await connection.execute(
            sa.select(
                signing_keys.c.kid, signing_keys.c.algorithm, signing_keys.c.sealed_private_key
            )
            .order_by(signing_keys.c.created_at.desc())
            .limit(1)
        )
    ).first()
    if row is None or row.algorithm != ALGORITHM:
        return await add_key(connection, secret)
    return unseal(secret, row.kid, row.sealed_private_key)
