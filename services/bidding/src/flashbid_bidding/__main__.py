from pathlib import Path

from flashbid_shared.cli import main

from flashbid_bidding.settings import Settings

main(Settings, migrations=Path(__file__).resolve().parents[2] / "migrations")
