import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar

from flashbid_auth import domain
from flashbid_auth.accounts import Users, mfa_audience
from flashbid_auth.emails import Mailer, UnknownTemplate, run_sender
from flashbid_auth.routes import ROUTES
from flashbid_auth.settings import Settings
from flashbid_auth.store import KeyRing
from flashbid_shared.app import service_app
from flashbid_shared.database import ping_postgres, postgres
from flashbid_shared.settings import from_env
from flashbid_shared.tokens import Deactivated, TokenVerifier

ERRORS = {
    domain.WeakPassword: (422, "weak_password"),
    domain.InvalidCredentials: (401, "invalid_credentials"),
    domain.LoginThrottled: (429, "login_throttled"),
    domain.AccountDisabled: (403, "account_disabled"),
    domain.InvalidCode: (400, "invalid_code"),
    domain.TooManyAttempts: (429, "too_many_attempts"),
    domain.ResendTooSoon: (429, "resend_too_soon"),
    domain.InvalidToken: (401, "invalid_token"),
    domain.TokenReused: (401, "token_reused"),
    domain.EmailTaken: (409, "email_taken"),
    domain.UsernameTaken: (409, "username_taken"),
    domain.MfaState: (409, "mfa_state"),
    domain.UserNotFound: (404, "user_not_found"),
    domain.CannotChangeSelf: (409, "cannot_change_self"),
    domain.NotAdmin: (403, "forbidden"),
    Deactivated: (403, "account_disabled"),  # a guard's refusal, as login's and refresh's
    UnknownTemplate: (422, "unknown_template"),
}


@asynccontextmanager
async def signing(app: Litestar) -> AsyncIterator[None]:
    settings = app.state.settings
    app.state.key_ring = KeyRing(app.state.engine, settings.key_encryption_secret)
    app.state.mfa_verifier = TokenVerifier(
        app.state.key_ring.jwks,
        issuer=settings.jwt_issuer,
        audience=mfa_audience(settings),
        refetch_interval=1.0,
    )
    app.state.users = Users(app.state.engine)  # what the guards check callers against
    yield


@asynccontextmanager
async def email_sender(app: Litestar) -> AsyncIterator[None]:
    sender = asyncio.create_task(run_sender(app.state.engine, Mailer(app.state.settings)))
    yield
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sender


async def local_jwks(app: Litestar) -> dict[str, Any]:
    return await app.state.key_ring.jwks()


def create_app(settings: Settings | None = None) -> Litestar:
    return service_app(
        "auth",
        settings or from_env(Settings),
        routes=ROUTES,
        lifespan=[postgres, signing, email_sender],
        ready={"postgres": ping_postgres},
        errors=ERRORS,
        jwks=local_jwks,
        description="Accounts, sessions and tokens. The only service that signs tokens.",
    )
