from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Response, get, patch, post, put
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from sqlalchemy.ext.asyncio import AsyncConnection

from flashbid_auth import accounts
from flashbid_auth.domain import AccountDisabled, InvalidToken
from flashbid_auth.keys import secret_matches, token_claims
from flashbid_auth.schemas import (
    EmailOnly,
    Login,
    LoginMfa,
    MfaChallenge,
    MfaCode,
    MfaDisable,
    MfaSetup,
    MfaStatus,
    PasswordChange,
    PasswordReset,
    ProfileUpdate,
    RefreshRequest,
    Register,
    TokenPair,
    TokenRequest,
    User,
    UserPage,
    UserUpdate,
    VerifyEmail,
)
from flashbid_shared.contracts import (
    Notifications,
    NotificationsTaken,
    TokenGrant,
    UserChanges,
    UserLookup,
    UserSummaries,
)
from flashbid_shared.errors import Problem
from flashbid_shared.params import Limit, Offset, Search
from flashbid_shared.tokens import InvalidToken as BadToken
from flashbid_shared.tokens import Principal, admin_required, service_required, user_required

ACCOUNT = {"tags": ["account"]}
SESSION = {"tags": ["sessions"]}
ME = {"tags": ["me"], "guards": [user_required], "security": [{"bearer": []}]}
ADMIN = {"tags": ["admin"], "guards": [admin_required], "security": [{"bearer": []}]}
INTERNAL = {"tags": ["internal"], "guards": [service_required], "security": [{"bearer": []}]}


@post("/register", operation_id="register", **ACCOUNT)
async def register(connection: AsyncConnection, data: Register) -> User:
    """Create a customer account; a 6-digit code is emailed to verify the address."""
    return await accounts.register(connection, data)


@post("/verify-email", operation_id="verify_email", status_code=204, **ACCOUNT)
async def verify_email(state: State, data: VerifyEmail) -> None:
    await accounts.verify_email(state.engine, data.email, data.code)


@post("/verify-email/resend", operation_id="resend_verification", status_code=202, **ACCOUNT)
async def resend_verification(connection: AsyncConnection, data: EmailOnly) -> None:
    await accounts.resend_email_code(connection, data.email)


@post("/login", operation_id="login", status_code=200, **SESSION)
async def login(state: State, data: Login) -> TokenPair | MfaChallenge:
    """Tokens, or an `mfa_token` for `/login/mfa` when two-factor authentication is on."""
    user = await accounts.login(state.engine, data.login, data.password)
    key = await state.key_ring.current()
    if user.mfa_enabled:
        return accounts.mfa_challenge(user, key, state.settings)
    async with state.engine.begin() as connection:
        return await accounts.start_session(connection, user, key, state.settings)


@post("/login/mfa", operation_id="login_mfa", status_code=200, **SESSION)
async def login_mfa(state: State, connection: AsyncConnection, data: LoginMfa) -> TokenPair:
    try:
        challenge = await state.mfa_verifier.verify(data.mfa_token)
    except BadToken:
        raise InvalidToken("This sign-in has expired; start again.") from None
    user = await accounts.get_user(connection, UUID(challenge.subject))
    if not user.is_active:
        raise AccountDisabled("This account is deactivated.")
    await accounts.check_totp(connection, user, data.code, state.settings.key_encryption_secret)
    key = await state.key_ring.current()
    return await accounts.start_session(connection, user, key, state.settings)


@post("/refresh", operation_id="refresh", status_code=200, **SESSION)
async def refresh(state: State, data: RefreshRequest) -> TokenPair:
    key = await state.key_ring.current()
    return await accounts.refresh(state.engine, data.refresh_token, key, state.settings)


@post("/logout", operation_id="logout", status_code=204, **SESSION)
async def logout(connection: AsyncConnection, data: RefreshRequest) -> None:
    await accounts.logout(connection, data.refresh_token)


@get("/me", operation_id="me", **ME)
async def me(connection: AsyncConnection, principal: Principal) -> User:
    return accounts.to_user(await accounts.get_user(connection, principal.user_id))


@patch("/me", operation_id="update_me", **ME)
async def update_me(connection: AsyncConnection, principal: Principal, data: ProfileUpdate) -> User:
    return await accounts.update_profile(connection, principal.user_id, data.display_name)


@put("/me/password", operation_id="change_password", status_code=204, **ME)
async def change_password(
    connection: AsyncConnection, principal: Principal, data: PasswordChange
) -> None:
    """Other sessions end; this one goes on."""
    await accounts.change_password(
        connection,
        principal.user_id,
        data.current_password,
        data.new_password,
        principal.session_id,
    )


@post("/password/forgot", operation_id="forgot_password", status_code=202, **ACCOUNT)
async def forgot_password(state: State, connection: AsyncConnection, data: EmailOnly) -> None:
    """Always 202: the answer does not tell whether the address has an account."""
    await accounts.forgot_password(connection, data.email, state.settings)


@post("/password/reset", operation_id="reset_password", status_code=204, **ACCOUNT)
async def reset_password(connection: AsyncConnection, data: PasswordReset) -> None:
    await accounts.reset_password(connection, data.token, data.new_password)


@post("/2fa/setup", operation_id="mfa_setup", status_code=200, **ME)
async def mfa_setup(state: State, connection: AsyncConnection, principal: Principal) -> MfaSetup:
    secret, uri = await accounts.mfa_setup(
        connection, principal.user_id, state.settings.key_encryption_secret
    )
    return MfaSetup(secret=secret, otpauth_uri=uri)


@post("/2fa/enable", operation_id="mfa_enable", status_code=204, **ME)
async def mfa_enable(
    state: State, connection: AsyncConnection, principal: Principal, data: MfaCode
) -> None:
    await accounts.mfa_enable(
        connection, principal.user_id, data.code, state.settings.key_encryption_secret
    )


@post("/2fa/disable", operation_id="mfa_disable", status_code=204, **ME)
async def mfa_disable(
    state: State, connection: AsyncConnection, principal: Principal, data: MfaDisable
) -> None:
    await accounts.mfa_disable(
        connection,
        principal.user_id,
        data.password,
        data.code,
        state.settings.key_encryption_secret,
    )


@get("/2fa/status", operation_id="mfa_status", **ME)
async def mfa_status(connection: AsyncConnection, principal: Principal) -> MfaStatus:
    user = await accounts.get_user(connection, principal.user_id)
    return MfaStatus(enabled=user.mfa_enabled)


@get("/.well-known/jwks.json", operation_id="jwks", tags=["tokens"])
async def jwks(state: State) -> Response[dict[str, Any]]:
    return Response(await state.key_ring.jwks(), headers={"Cache-Control": "public, max-age=300"})


@post("/token", operation_id="service_token", tags=["tokens"], status_code=200)
async def service_token(
    state: State,
    data: Annotated[TokenRequest, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> TokenGrant:
    """OAuth2 client-credentials grant: a service token (`role: service`) for `/internal` calls."""
    settings = state.settings
    expected = settings.client_secrets().get(data.client_id, "")
    if not secret_matches(data.client_secret, expected):
        raise Problem(401, "invalid_client", "Unknown client or wrong secret.")
    key = await state.key_ring.current()
    claims = token_claims(
        subject=data.client_id,
        role="service",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=settings.service_token_ttl,
    )
    return TokenGrant(access_token=key.sign(claims), expires_in=settings.service_token_ttl)


@get("/admin/users", operation_id="admin_list_users", **ADMIN)
async def admin_list_users(
    connection: AsyncConnection,
    search: Search = None,
    role: Annotated[str | None, Parameter(pattern="^(customer|admin)$")] = None,
    active: bool | None = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> UserPage:
    items, total = await accounts.list_users(
        connection, search=search, role=role, active=active, limit=limit, offset=offset
    )
    return UserPage(items=items, total=total, limit=limit, offset=offset)


@patch("/admin/users/{user_id:uuid}", operation_id="admin_update_user", **ADMIN)
async def admin_update_user(
    connection: AsyncConnection, principal: Principal, user_id: UUID, data: UserUpdate
) -> User:
    """Deactivate or reactivate, change role or ranking weight. Deactivation ends sessions."""
    return await accounts.update_user(connection, principal.user_id, user_id, data)


@post("/internal/users/lookup", operation_id="internal_lookup_users", status_code=200, **INTERNAL)
async def internal_lookup_users(state: State, data: UserLookup) -> UserSummaries:
    return UserSummaries(users=await accounts.user_summaries(state.engine, data.ids))


@get("/internal/users/changes", operation_id="internal_user_changes", **INTERNAL)
async def internal_user_changes(state: State, since: datetime | None = None) -> UserChanges:
    """Users whose summary changed after `since`, for the other services' caches; without
    `since`, only where to start following."""
    users, until = await accounts.summary_changes(state.engine, since)
    return UserChanges(users=users, until=until)


@post("/internal/notifications", operation_id="internal_notify", status_code=202, **INTERNAL)
async def internal_notify(connection: AsyncConnection, data: Notifications) -> NotificationsTaken:
    """Emails to users from templates, written to the outbox together; each refused one (an
    unknown user or template) is named by its position."""
    return NotificationsTaken(refused=await accounts.notify(connection, data.notifications))


ROUTES = [
    register,
    verify_email,
    resend_verification,
    login,
    login_mfa,
    refresh,
    logout,
    me,
    update_me,
    change_password,
    forgot_password,
    reset_password,
    mfa_setup,
    mfa_enable,
    mfa_disable,
    mfa_status,
    jwks,
    service_token,
    admin_list_users,
    admin_update_user,
    internal_lookup_users,
    internal_user_changes,
    internal_notify,
]
