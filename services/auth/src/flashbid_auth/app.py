from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from flashbid_shared.app import service_app
from flashbid_shared.database import ping_postgres, postgres
from flashbid_shared.settings import from_env
from litestar import Litestar

from flashbid_auth.routes import ROUTES
from flashbid_auth.settings import Settings
from flashbid_auth.store import KeyRing


@asynccontextmanager
async def key_ring(app: Litestar) -> AsyncIterator[None]:
    app.state.key_ring = KeyRing(app.state.engine, app.state.settings.key_encryption_secret)
    yield


async def local_jwks(app: Litestar) -> dict[str, Any]:
    return await app.state.key_ring.jwks()


def create_app(settings: Settings | None = None) -> Litestar:
    return service_app(
        "auth",
        settings or from_env(Settings),
        routes=ROUTES,
        lifespan=[postgres, key_ring],
        ready={"postgres": ping_postgres},
        jwks=local_jwks,
        description="Accounts, sessions and tokens. The only service that signs tokens.",
    )
