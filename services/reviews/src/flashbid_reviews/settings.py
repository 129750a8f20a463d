from flashbid_shared.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True):
    mongo_url: str = "mongodb://127.0.0.1:17017/"
    mongo_database: str = "flashbid_reviews"
    client_id: str = "reviews"
    client_secret: str = "dev-reviews-secret"
    catalog_url: str = "http://127.0.0.1:8002"
    purchase_url: str = "http://127.0.0.1:8004"
    catalog_timeout: float = 1.5
    purchase_timeout: float = 1.0  # a review is saved anyway, its verified flag filled in later
    repair_interval: float = 5.0  # how often late answers and unsettled summaries are looked at
    summary_grace: float = 10.0  # a summary mark this old has lost its writer
