from flashbid_shared.settings import PostgresSettings


class Settings(PostgresSettings, kw_only=True):
    database_url: str = "postgresql+asyncpg://flashbid@127.0.0.1:15432/flashbid_auth"
    # Encrypts signing keys and TOTP secrets at rest; set a long random value in production.
    key_encryption_secret: str = "dev-only-key-encryption-secret"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    service_token_ttl: int = 900
    mfa_token_ttl: int = 300
    # One client per service that calls /internal routes; the client id is the service's name.
    catalog_client_secret: str = "dev-catalog-secret"
    bidding_client_secret: str = "dev-bidding-secret"
    purchase_client_secret: str = "dev-purchase-secret"
    reviews_client_secret: str = "dev-reviews-secret"
    # Email
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "Flashbid <no-reply@flashbid.local>"
    public_url: str = "http://127.0.0.1:8080"
    # The first administrator, created by `python -m flashbid_auth create-admin` (`just up`).
    admin_email: str = "admin@flashbid.local"
    admin_username: str = "admin"
    admin_password: str = ""

    def client_secrets(self) -> dict[str, str]:
        return {
            "catalog": self.catalog_client_secret,
            "bidding": self.bidding_client_secret,
            "purchase": self.purchase_client_secret,
            "reviews": self.reviews_client_secret,
        }
