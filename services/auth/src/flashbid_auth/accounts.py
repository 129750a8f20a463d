"""Auth's use cases: each takes a connection (the caller's transaction) and applies the rules."""

import asyncio
import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from flashbid_auth import domain
from flashbid_auth.domain import (
    AccountDisabled,
    CannotChangeSelf,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    InvalidToken,
    LoginThrottled,
    MfaState,
    NotAdmin,
    ResendTooSoon,
    TokenReused,
    TooManyAttempts,
    UsernameTaken,
    UserNotFound,
)
from flashbid_auth.emails import enqueue, enqueue_many, renders
from flashbid_auth.keys import SigningKey, decrypt, encrypt, token_claims
from flashbid_auth.schemas import MfaChallenge, Register, TokenPair, User, UserUpdate
from flashbid_auth.settings import Settings
from flashbid_auth.store import email_codes, password_resets, refresh_tokens, users
from flashbid_shared.contracts import USER_CHANGES_PAGE, Notification, UserSummary

# OWASP's argon2id parameters: 19 MiB, 2 passes, 1 lane.
hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the account does not exist, so both failures cost the same time.
_DUMMY_HASH = hasher.hash("flashbid-timing-equaliser")


def now() -> datetime:
    return datetime.now(UTC)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hasher.hash, password)


async def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(hasher.verify, stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def to_user(row: Row) -> User:
    return User(
        id=row.id,
        email=row.email,
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        email_verified=row.email_verified,
        mfa_enabled=row.mfa_enabled,
        weight=row.weight,
        created_at=row.created_at,
        is_active=row.is_active,
    )


async def get_user(connection: AsyncConnection, user_id: uuid.UUID) -> Row:
    row = (await connection.execute(sa.select(users).where(users.c.id == user_id))).first()
    if row is None:
        raise UserNotFound("No such user.")
    return row


async def find_by_email(connection: AsyncConnection, email: str) -> Row | None:
    query = sa.select(users).where(sa.func.lower(users.c.email) == email.lower())
    return (await connection.execute(query)).first()


# ------------------------------------------------------------------------ registration


async def register(
    connection: AsyncConnection, data: Register, *, verified: bool = False, role: str = "customer"
) -> User:
    domain.check_password(data.password, username=data.username, email=data.email)
    values = {
        "id": uuid.uuid4(),
        "email": data.email.strip(),
        "username": data.username,
        "display_name": (data.display_name or data.username).strip(),
        "password_hash": await hash_password(data.password),
        "email_verified": verified,
        "role": role,
    }
    try:
        async with connection.begin_nested():
            row = (await connection.execute(users.insert().values(values).returning(users))).one()
    except IntegrityError as exc:
        if "users_email_key" in str(exc.orig):
            raise EmailTaken("An account with this email already exists.") from None
        raise UsernameTaken("This username is taken.") from None
    if not verified:
        await send_email_code(connection, row)
    return to_user(row)


async def send_email_code(connection: AsyncConnection, user: Row) -> None:
    code = domain.new_code()
    values = {
        "code_hash": domain.digest(code),
        "expires_at": now() + domain.CODE_TTL,
        "attempts": 0,
        "sent_at": now(),
    }
    upsert = sa.dialects.postgresql.insert(email_codes).values(user_id=user.id, **values)
    await connection.execute(upsert.on_conflict_do_update(index_elements=["user_id"], set_=values))
    await enqueue(
        connection, user.email, "verify_email", {"code": code, "display_name": user.display_name}
    )


async def resend_email_code(connection: AsyncConnection, email: str) -> None:
    """Silent for unknown or verified addresses: the answer must not reveal who has an account."""
    user = await find_by_email(connection, email)
    if user is None or user.email_verified:
        return
    sent_at = await connection.scalar(
        sa.select(email_codes.c.sent_at).where(email_codes.c.user_id == user.id).with_for_update()
    )
    if sent_at and now() - sent_at < domain.RESEND_INTERVAL:
        wait = domain.retry_after(sent_at + domain.RESEND_INTERVAL, now())
        raise ResendTooSoon("A code was sent a moment ago; check your inbox.", retry_after=wait)
    await send_email_code(connection, user)


async def verify_email(engine: AsyncEngine, email: str, code: str) -> None:
    """The attempt is counted and committed even when the code is wrong."""
    async with engine.begin() as connection:
        user = await find_by_email(connection, email)
        if user is not None and user.email_verified:
            return
        stored = (
            user
            and (
                await connection.execute(
                    email_codes.update()
                    .where(email_codes.c.user_id == user.id)
                    .values(attempts=email_codes.c.attempts + 1)
                    .returning(email_codes)
                )
            ).first()
        )
        if not stored or stored.expires_at < now():
            error: Exception | None = InvalidCode("The code is wrong or has expired.")
        elif stored.attempts > domain.CODE_ATTEMPTS:
            error = TooManyAttempts("Too many wrong codes: ask for a new one.")
        elif not domain.same_digest(code.strip(), stored.code_hash):
            error = InvalidCode("The code is wrong or has expired.")
        else:
            error = None
            await connection.execute(
                users.update()
                .where(users.c.id == user.id)
                .values(email_verified=True, updated_at=now(), summary_changed_at=sa.func.now())
            )
            await connection.execute(email_codes.delete().where(email_codes.c.user_id == user.id))
    if error:
        raise error


# ---------------------------------------------------------------------------- sessions


async def login(engine: AsyncEngine, login: str, password: str) -> Row:
    """The user if the password is right. Failures are committed (they count toward a lock)."""
    async with engine.begin() as connection:
        key = login.strip().lower()
        user = (
            await connection.execute(
                sa.select(users).where(
                    sa.or_(
                        sa.func.lower(users.c.email) == key, sa.func.lower(users.c.username) == key
                    )
                )
            )
        ).first()
    if user is None:
        await password_matches(_DUMMY_HASH, password)
        raise InvalidCredentials("Wrong login or password.")
    if user.locked_until and user.locked_until > now():
        raise LoginThrottled(
            "Too many failed sign-ins: try again later.",
            retry_after=domain.retry_after(user.locked_until, now()),
        )
    if not await password_matches(user.password_hash, password):
        async with engine.begin() as connection:
            failures = await connection.scalar(
                users.update()
                .where(users.c.id == user.id)
                .values(failed_logins=users.c.failed_logins + 1)
                .returning(users.c.failed_logins)
            )
            lock = domain.lock_duration(failures)
            if lock:
                await connection.execute(
                    users.update().where(users.c.id == user.id).values(locked_until=now() + lock)
                )
        raise InvalidCredentials("Wrong login or password.")
    if not user.is_active:
        raise AccountDisabled("This account is deactivated.")
    async with engine.begin() as connection:
        changes: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
        if hasher.check_needs_rehash(user.password_hash):
            changes["password_hash"] = await hash_password(password)
        await connection.execute(users.update().where(users.c.id == user.id).values(**changes))
    return user


def access_token(user: Row, key: SigningKey, settings: Settings, family_id: uuid.UUID) -> str:
    return key.sign(
        token_claims(
            subject=str(user.id),
            role=user.role,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl=settings.access_token_ttl,
            email_verified=user.email_verified,
            sid=str(family_id),
        )
    )


async def start_session(
    connection: AsyncConnection,
    user: Row,
    key: SigningKey,
    settings: Settings,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    family_id = family_id or uuid.uuid4()
    refresh = domain.new_token()
    await connection.execute(
        refresh_tokens.insert().values(
            token_hash=domain.digest(refresh),
            family_id=family_id,
            user_id=user.id,
            expires_at=now() + timedelta(seconds=settings.refresh_token_ttl),
        )
    )
    return TokenPair(
        access_token=access_token(user, key, settings, family_id),
        refresh_token=refresh,
        expires_in=settings.access_token_ttl,
    )


def mfa_challenge(user: Row, key: SigningKey, settings: Settings) -> MfaChallenge:
    claims = token_claims(
        subject=str(user.id),
        role="mfa",
        issuer=settings.jwt_issuer,
        audience=mfa_audience(settings),
        ttl=settings.mfa_token_ttl,
    )
    return MfaChallenge(mfa_token=key.sign(claims))


def mfa_audience(settings: Settings) -> str:
    """A token only `/login/mfa` accepts: no other service trusts this audience."""
    return f"{settings.jwt_audience}:mfa"


async def refresh(
    engine: AsyncEngine, token: str, key: SigningKey, settings: Settings
) -> TokenPair:
    """Rotate: the presented token is spent; presenting a spent one again revokes its family
    (RFC 9700), and that revocation is committed before the refusal goes out."""
    async with engine.begin() as connection:
        stored = (
            await connection.execute(
                sa.select(refresh_tokens)
                .where(refresh_tokens.c.token_hash == domain.digest(token))
                .with_for_update()
            )
        ).first()
        if stored is None or stored.revoked_at or stored.expires_at < now():
            raise InvalidToken("This session has ended; sign in again.")
        if not stored.spent_at:
            user = await get_user(connection, stored.user_id)
            if not user.is_active:
                raise AccountDisabled("This account is deactivated.")
            await connection.execute(
                refresh_tokens.update()
                .where(refresh_tokens.c.token_hash == stored.token_hash)
                .values(spent_at=now())
            )
            return await start_session(connection, user, key, settings, stored.family_id)
        await revoke_families(connection, refresh_tokens.c.family_id == stored.family_id)
    raise TokenReused("This refresh token was already used; every session of it is ended.")


async def revoke_families(connection: AsyncConnection, where: Any) -> None:
    await connection.execute(
        refresh_tokens.update()
        .where(where, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now())
    )


async def logout(connection: AsyncConnection, token: str) -> None:
    family = sa.select(refresh_tokens.c.family_id).where(
        refresh_tokens.c.token_hash == domain.digest(token)
    )
    await revoke_families(connection, refresh_tokens.c.family_id.in_(family.scalar_subquery()))


# --------------------------------------------------------------------------- passwords


async def change_password(
    connection: AsyncConnection,
    user_id: uuid.UUID,
    current: str,
    new: str,
    session_id: str | None,
) -> None:
    user = await get_user(connection, user_id)
    if not await password_matches(user.password_hash, current):
        raise InvalidCredentials("The current password is wrong.")
    domain.check_password(new, username=user.username, email=user.email)
    await set_password(connection, user.id, new)
    others = refresh_tokens.c.user_id == user.id
    if session_id:
        others = sa.and_(others, refresh_tokens.c.family_id != uuid.UUID(session_id))
    await revoke_families(connection, others)


async def set_password(connection: AsyncConnection, user_id: uuid.UUID, password: str) -> None:
    """The new password; every reset link sent before it is spent."""
    await connection.execute(
        users.update()
        .where(users.c.id == user_id)
        .values(
            password_hash=await hash_password(password),
            failed_logins=0,
            locked_until=None,
            updated_at=now(),
        )
    )
    await connection.execute(
        password_resets.update()
        .where(password_resets.c.user_id == user_id, password_resets.c.used_at.is_(None))
        .values(used_at=now())
    )


async def forgot_password(connection: AsyncConnection, email: str, settings: Settings) -> None:
    user = await find_by_email(connection, email)
    if user is None or not user.is_active:
        return
    token = domain.new_token()
    await connection.execute(
        password_resets.insert().values(
            token_hash=domain.digest(token),
            user_id=user.id,
            expires_at=now() + domain.RESET_TTL,
        )
    )
    link = f"{settings.public_url}/reset-password?token={token}"
    await enqueue(
        connection, user.email, "password_reset", {"link": link, "display_name": user.display_name}
    )


async def reset_password(connection: AsyncConnection, token: str, new: str) -> None:
    """The user's row is locked before the link is checked: of two links used at once, the
    second finds itself spent by the first (a password set spends them all)."""
    valid = (
        password_resets.c.token_hash == domain.digest(token),
        password_resets.c.used_at.is_(None),
        password_resets.c.expires_at > now(),
    )
    user_id = await connection.scalar(sa.select(password_resets.c.user_id).where(*valid))
    if user_id is not None:
        await connection.execute(
            sa.select(users.c.id).where(users.c.id == user_id).with_for_update()
        )
        user_id = await connection.scalar(sa.select(password_resets.c.user_id).where(*valid))
    if user_id is None:
        raise InvalidToken("This reset link is invalid, used or expired; ask for a new one.")
    user = await get_user(connection, user_id)
    domain.check_password(new, username=user.username, email=user.email)
    await set_password(connection, user.id, new)
    await revoke_families(connection, refresh_tokens.c.user_id == user.id)


# -------------------------------------------------------------------------------- TOTP


async def mfa_setup(
    connection: AsyncConnection, user_id: uuid.UUID, secret_key: str
) -> tuple[str, str]:
    user = await get_user(connection, user_id)
    if user.mfa_enabled:
        raise MfaState("Two-factor authentication is already on; disable it first.")
    secret = pyotp.random_base32()
    await connection.execute(
        users.update()
        .where(users.c.id == user.id)
        .values(mfa_secret=encrypt(secret_key, secret.encode(), user.id.bytes), mfa_last_step=None)
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Flashbid")
    return secret, uri


async def check_totp(connection: AsyncConnection, user: Row, code: str, secret_key: str) -> None:
    """Accept a code once: the step is recorded only if it is newer than the last one used."""
    if user.mfa_secret is None:
        raise MfaState("Two-factor authentication is not set up.")
    secret = decrypt(secret_key, user.mfa_secret, user.id.bytes).decode()
    step = domain.totp_step(secret, code, now(), user.mfa_last_step)
    recorded = await connection.execute(
        users.update()
        .where(
            users.c.id == user.id,
            sa.or_(users.c.mfa_last_step.is_(None), users.c.mfa_last_step < step),
        )
        .values(mfa_last_step=step)
    )
    if recorded.rowcount != 1:
        raise InvalidCode("This code was already used; wait for the next one.")


async def mfa_enable(
    connection: AsyncConnection, user_id: uuid.UUID, code: str, secret_key: str
) -> None:
    user = await get_user(connection, user_id)
    if user.mfa_enabled:
        raise MfaState("Two-factor authentication is already on.")
    await check_totp(connection, user, code, secret_key)
    await connection.execute(users.update().where(users.c.id == user.id).values(mfa_enabled=True))


async def mfa_disable(
    connection: AsyncConnection, user_id: uuid.UUID, password: str, code: str, secret_key: str
) -> None:
    user = await get_user(connection, user_id)
    if not user.mfa_enabled:
        raise MfaState("Two-factor authentication is not on.")
    if not await password_matches(user.password_hash, password):
        raise InvalidCredentials("The password is wrong.")
    await check_totp(connection, user, code, secret_key)
    await connection.execute(
        users.update().where(users.c.id == user.id).values(mfa_enabled=False, mfa_secret=None)
    )


# ------------------------------------------------------------------------------- admin


async def list_users(
    connection: AsyncConnection,
    *,
    search: str | None,
    role: str | None,
    active: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[User], int]:
    conditions = []
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            sa.or_(
                users.c.email.ilike(pattern),
                users.c.username.ilike(pattern),
                users.c.display_name.ilike(pattern),
            )
        )
    if role:
        conditions.append(users.c.role == role)
    if active is not None:
        conditions.append(users.c.is_active == active)
    total = await connection.scalar(
        sa.select(sa.func.count()).select_from(users).where(*conditions)
    )
    rows = await connection.execute(
        sa.select(users)
        .where(*conditions)
        .order_by(users.c.created_at.desc(), users.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [to_user(row) for row in rows], total or 0


async def update_user(
    connection: AsyncConnection, admin_id: uuid.UUID, user_id: uuid.UUID, changes: UserUpdate
) -> User:
    """The admin's own power is checked again under the lock of both rows (taken in id order),
    in the transaction that writes: of two admins demoting each other at once, the second
    finds itself demoted."""
    both = sa.select(users).where(users.c.id.in_({admin_id, user_id})).order_by(users.c.id)
    rows = await connection.execute(both.with_for_update())
    found = {row.id: row for row in rows}
    admin = found.get(admin_id)
    if admin is None or not admin.is_active:
        raise AccountDisabled("This account is deactivated.")
    if admin.role != "admin":
        raise NotAdmin("This route is for administrators.")
    if (user := found.get(user_id)) is None:
        raise UserNotFound("No such user.")
    values = {k: v for k, v in msgspec.structs.asdict(changes).items() if v is not None}
    if user.id == admin_id and (
        values.get("is_active") is False or values.get("role") == "customer"
    ):
        raise CannotChangeSelf("You cannot deactivate or demote yourself.")
    if values:
        row = (
            await connection.execute(
                users.update()
                .where(users.c.id == user.id)
                .values(**values, updated_at=now(), summary_changed_at=sa.func.now())
                .returning(users)
            )
        ).one()
        if values.get("is_active") is False:
            await revoke_families(connection, refresh_tokens.c.user_id == user.id)
        return to_user(row)
    return to_user(user)


async def update_profile(
    connection: AsyncConnection, user_id: uuid.UUID, display_name: str
) -> User:
    row = (
        await connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(
                display_name=display_name.strip(),
                updated_at=now(),
                summary_changed_at=sa.func.now(),
            )
            .returning(users)
        )
    ).first()
    if row is None:
        raise UserNotFound("No such user.")
    return to_user(row)


SUMMARY = (
    users.c.id,
    users.c.display_name,
    users.c.weight,
    users.c.email_verified,
    users.c.is_active,
    users.c.role,
)
SUMMARIES = sa.select(*SUMMARY).where(
    users.c.id == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.Uuid)))
)


async def user_summaries(engine: AsyncEngine, ids: list[uuid.UUID]) -> list[UserSummary]:
    """What the other services know of these users (a storm's bidders, in batches). One
    statement whatever their number (an `IN` of N parameters was a new statement to prepare
    for each N), read outside a transaction (no BEGIN and COMMIT round trips)."""
    async with _autocommit(engine).connect() as connection:
        rows = await connection.execute(SUMMARIES, {"ids": ids})
    return [UserSummary(**row._mapping) for row in rows]


class Users:
    """Who the users are now, for auth's own guards: its table, read at each check, so that a
    change binds the tokens already issued from the moment it is answered."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, user_id: uuid.UUID, *, strict: bool = False) -> UserSummary | None:
        found = await user_summaries(self.engine, [user_id])
        return found[0] if found else None


# How far back each answer tells the next call to start again: a change written by a
# transaction that began before a read (its time is its start) but committed after it is then
# in the next answer. Re-reading a few seconds of changes costs little: they are rare.
CHANGES_OVERLAP = timedelta(seconds=5)


async def summary_changes(
    engine: AsyncEngine, since: datetime | None
) -> tuple[list[UserSummary], datetime]:
    """The users whose summary changed after `since`, oldest change first, and the `since` of
    the next call. Without `since`, no users: only where to start."""
    async with _autocommit(engine).connect() as connection:
        now: datetime = await connection.scalar(sa.select(sa.func.now()))
        if since is None:
            return [], now - CHANGES_OVERLAP
        rows = (
            await connection.execute(
                sa.select(*SUMMARY, users.c.summary_changed_at)
                .where(users.c.summary_changed_at > since)
                .order_by(users.c.summary_changed_at)
                .limit(USER_CHANGES_PAGE)
            )
        ).all()
    if len(rows) == USER_CHANGES_PAGE:  # more to come: the next page starts after this one
        until = rows[-1].summary_changed_at
    else:
        until = max(now - CHANGES_OVERLAP, since)
    changed = [UserSummary(**{c.name: row._mapping[c.name] for c in SUMMARY}) for row in rows]
    return changed, until


RECIPIENTS = sa.select(users.c.id, users.c.email, users.c.display_name).where(
    users.c.id == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.Uuid)))
)


async def notify(connection: AsyncConnection, notifications: list[Notification]) -> list[int]:
    """Other services' emails to users, written together; the positions of those refused
    (an unknown user or template), which are left out."""
    ids = list({n.user_id for n in notifications})
    found = {row.id: row for row in await connection.execute(RECIPIENTS, {"ids": ids})}
    emails, refused = [], []
    for position, notification in enumerate(notifications):
        user = found.get(notification.user_id)
        data = {"display_name": user.display_name if user else "", **notification.data}
        if user is None or not renders(notification.template, data):
            refused.append(position)
        else:
            emails.append((user.email, notification.template, data))
    if emails:
        await enqueue_many(connection, emails)
    return refused


@functools.cache
def _autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The engine without transactions, made once (making it took 53 us per lookup)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")
