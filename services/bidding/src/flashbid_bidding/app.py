from litestar import Litestar

from flashbid_bidding import domain
from flashbid_bidding.live import watch_event
from flashbid_bidding.routes import LANES, ROUTES
from flashbid_bidding.settings import Settings
from flashbid_bidding.workers import bidding_lifespan
from flashbid_shared.app import service_app
from flashbid_shared.database import ping_postgres, ping_redis, postgres, redis
from flashbid_shared.settings import from_env

ERRORS = {
    domain.EventNotLive: (409, "event_not_live"),
    domain.BidTooLow: (409, "bid_too_low"),
    domain.AlreadyLeading: (409, "already_leading"),
    domain.NotJoined: (403, "not_joined"),
    domain.NotAllowed: (403, "not_allowed"),
    domain.NotFound: (404, "not_found"),
    domain.BuyNowUnavailable: (409, "buy_now_unavailable"),
    domain.IdempotencyMismatch: (422, "idempotency_mismatch"),
    domain.InvalidAmount: (422, "invalid_amount"),
}


def create_app(settings: Settings | None = None) -> Litestar:
    return service_app(
        "bidding",
        settings or from_env(Settings),
        routes=ROUTES,
        handlers=[watch_event],
        lifespan=[postgres, redis, bidding_lifespan],
        ready={"postgres": ping_postgres, "redis": ping_redis},
        errors=ERRORS,
        lanes=LANES,
        description="Auctions, ranked sessions, live bidding over WebSocket, settlement.",
    )
