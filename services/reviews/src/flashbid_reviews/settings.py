from flashbid_shared.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True):
    mongo_url: str = "mongodb://127.0.0.1:57017/"
    mongo_database: str = "flashbid_reviews"
    client_id: str = "reviews"
    client_secret: str = "dev-reviews-secret"
    catalog_url: str = "http://127.0.0.1:8002"
    purchase_url: str = "http://127.0.0.1:8004"
