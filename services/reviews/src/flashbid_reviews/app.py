from litestar import Litestar

from flashbid_reviews.routes import ROUTES
from flashbid_reviews.settings import Settings
from flashbid_reviews.store import mongo, ping_mongo
from flashbid_shared.app import service_app
from flashbid_shared.settings import from_env


def create_app(settings: Settings | None = None) -> Litestar:
    return service_app(
        "reviews",
        settings or from_env(Settings),
        routes=ROUTES,
        lifespan=[mongo],
        ready={"mongo": ping_mongo},
        description="Item reviews, rating summaries and event comment threads.",
    )
