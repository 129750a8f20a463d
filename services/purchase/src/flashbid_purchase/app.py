from litestar import Litestar

from flashbid_purchase import domain
from flashbid_purchase.routes import LANES, ROUTES
from flashbid_purchase.settings import Settings
from flashbid_purchase.workers import sales_lifespan
from flashbid_shared.app import service_app
from flashbid_shared.database import ping_postgres, ping_redis, postgres, redis
from flashbid_shared.settings import from_env

ERRORS = {
    domain.EventNotLive: (409, "event_not_live"),
    domain.SoldOut: (409, "sold_out"),
    domain.LimitReached: (409, "limit_reached"),
    domain.OfferNotFound: (404, "offer_not_found"),
    domain.OrderNotFound: (404, "order_not_found"),
    domain.OrderState: (409, "order_state"),
    domain.IdempotencyMismatch: (422, "idempotency_mismatch"),
    domain.RequestInProgress: (409, "request_in_progress"),
    domain.NotAllowed: (403, "not_allowed"),
    domain.UnknownEvent: (404, "event_not_found"),
    domain.EventCancelled: (409, "event_cancelled"),
}


def create_app(settings: Settings | None = None) -> Litestar:
    return service_app(
        "purchase",
        settings or from_env(Settings),
        routes=ROUTES,
        lifespan=[postgres, redis, sales_lifespan],
        ready={"postgres": ping_postgres, "redis": ping_redis},
        errors=ERRORS,
        lanes=LANES,
        description="Flash-sale stock, reservations and orders.",
    )
