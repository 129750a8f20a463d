from litestar import Litestar

from flashbid_catalog.routes import ROUTES
from flashbid_catalog.settings import Settings
from flashbid_shared.app import service_app
from flashbid_shared.database import ping_postgres, postgres
from flashbid_shared.settings import from_env


def create_app(settings: Settings | None = None) -> Litestar:
    return service_app(
        "catalog",
        settings or from_env(Settings),
        routes=ROUTES,
        lifespan=[postgres],
        ready={"postgres": ping_postgres},
        description="Catalog items, events of three kinds and their lifecycle.",
    )
