from litestar import Litestar

from flashbid_reviews import domain
from flashbid_reviews.routes import ROUTES
from flashbid_reviews.settings import Settings
from flashbid_reviews.store import mongo, ping_mongo
from flashbid_reviews.workers import reviews_lifespan
from flashbid_shared.app import service_app
from flashbid_shared.settings import from_env

ERRORS = {
    domain.ItemNotFound: (404, "item_not_found"),
    domain.EventNotFound: (404, "event_not_found"),
    domain.ReviewNotFound: (404, "review_not_found"),
    domain.CommentNotFound: (404, "comment_not_found"),
    domain.NotAuthor: (403, "not_author"),
    domain.InvalidText: (422, "invalid_input"),
    domain.ThreadTooDeep: (422, "thread_too_deep"),
    domain.CatalogUnavailable: (503, "catalog_unavailable"),
    domain.StoreUnavailable: (503, "store_unavailable"),
}


def create_app(settings: Settings | None = None) -> Litestar:
    return service_app(
        "reviews",
        settings or from_env(Settings),
        routes=ROUTES,
        lifespan=[mongo, reviews_lifespan],
        ready={"mongo": ping_mongo},
        errors=ERRORS,
        description="Item reviews, rating summaries and event comment threads.",
    )
