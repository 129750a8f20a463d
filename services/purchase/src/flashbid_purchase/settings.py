from flashbid_shared.settings import PostgresSettings


class Settings(PostgresSettings, kw_only=True):
    database_url: str = "postgresql+asyncpg://flashbid@127.0.0.1:15432/flashbid_purchase"
    client_id: str = "purchase"
    client_secret: str = "dev-purchase-secret"
    redis_url: str = "redis://127.0.0.1:16379/1"
    catalog_url: str = "http://127.0.0.1:8002"
    require_verified_email: bool = True
    reconcile_interval: float = 5.0  # how often purchase asks catalog what it may have missed
