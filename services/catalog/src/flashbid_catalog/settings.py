from flashbid_shared.settings import PostgresSettings


class Settings(PostgresSettings, kw_only=True):
    database_url: str = "postgresql+asyncpg://flashbid@127.0.0.1:15432/flashbid_catalog"
    client_id: str = "catalog"
    client_secret: str = "dev-catalog-secret"
    purchase_url: str = "http://127.0.0.1:8004"
    bidding_url: str = "http://127.0.0.1:8003"
    figures_timeout: float = 1.0  # the dashboard waits this long for purchase and bidding
