from litestar import Litestar

from flashbid_catalog import domain
from flashbid_catalog.lifecycle import lifecycle
from flashbid_catalog.routes import ROUTES
from flashbid_catalog.settings import Settings
from flashbid_shared.app import service_app
from flashbid_shared.database import ping_postgres, postgres
from flashbid_shared.settings import from_env

ERRORS = {
    domain.InvalidEvent: (422, "invalid_event"),
    domain.EventNotFound: (404, "event_not_found"),
    domain.ItemNotFound: (404, "item_not_found"),
    domain.EventLocked: (409, "event_locked"),
    domain.InvalidTransition: (409, "invalid_transition"),
    domain.NotConfirmed: (503, "not_confirmed"),
}


def create_app(settings: Settings | None = None) -> Litestar:
    return service_app(
        "catalog",
        settings or from_env(Settings),
        routes=ROUTES,
        lifespan=[postgres, lifecycle],
        ready={"postgres": ping_postgres},
        errors=ERRORS,
        description="Catalog items, events of three kinds and their lifecycle.",
    )
