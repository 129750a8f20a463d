from pathlib import Path

from flashbid_bidding.settings import Settings
from flashbid_shared.cli import main

main(Settings, migrations=Path(__file__).resolve().parents[2] / "migrations")
