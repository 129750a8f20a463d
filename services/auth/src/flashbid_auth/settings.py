from flashbid_shared.settings import PostgresSettings


class Settings(PostgresSettings, kw_only=True):
    database_url: str = "postgresql+asyncpg://flashbid@127.0.0.1:55432/flashbid_auth"
    # Encrypts the signing keys' private halves at rest; set a long random value in production.
    key_encryption_secret: str = "dev-only-key-encryption-secret"
    access_token_ttl: int = 900
    service_token_ttl: int = 900
    # One client per service that calls /internal routes; the client id is the service's name.
    catalog_client_secret: str = "dev-catalog-secret"
    bidding_client_secret: str = "dev-bidding-secret"
    purchase_client_secret: str = "dev-purchase-secret"
    reviews_client_secret: str = "dev-reviews-secret"

    def client_secrets(self) -> dict[str, str]:
        return {
            "catalog": self.catalog_client_secret,
            "bidding": self.bidding_client_secret,
            "purchase": self.purchase_client_secret,
            "reviews": self.reviews_client_secret,
        }
