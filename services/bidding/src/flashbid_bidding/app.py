from litestar import Litestar

from flashbid_bidding.routes import ROUTES
from flashbid_bidding.settings import Settings
from flashbid_shared.app import service_app
from flashbid_shared.database import ping_postgres, ping_redis, postgres, redis
from flashbid_shared.settings import from_env


def create_app(settings: Settings | None = None) -> Litestar:
    return service_app(
        "bidding",
        settings or from_env(Settings),
        routes=ROUTES,
        lifespan=[postgres, redis],
        ready={"postgres": ping_postgres, "redis": ping_redis},
        description="Auctions, ranked sessions, live bidding and settlement.",
    )
