from pathlib import Path

from flashbid_catalog import demo
from flashbid_catalog.settings import Settings
from flashbid_shared.cli import in_transaction, main


def seed(settings: Settings) -> None:
    """Demo items and events of every kind (only into an empty catalog)."""
    in_transaction(settings.database_url, demo.seed)


main(
    Settings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    commands={"seed": seed},
)
