from flashbid_shared.settings import PostgresSettings


class Settings(PostgresSettings, kw_only=True):
    database_url: str = "postgresql+asyncpg://flashbid@127.0.0.1:15432/flashbid_bidding"
    client_id: str = "bidding"
    client_secret: str = "dev-bidding-secret"
    redis_url: str = "redis://127.0.0.1:16379/0"
    catalog_url: str = "http://127.0.0.1:8002"
    purchase_url: str = "http://127.0.0.1:8004"
    public_url: str = "http://127.0.0.1:8080"  # links in emails
    require_verified_email: bool = True
    reconcile_interval: float = 5.0
