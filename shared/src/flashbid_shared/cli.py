"""`python -m flashbid_<service> <command>`: the commands every service understands."""

import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from flashbid_shared.migrations import upgrade
from flashbid_shared.settings import from_env

Command = Callable[[msgspec.Struct], None]


def main(
    settings_cls: type[msgspec.Struct],
    *,
    migrations: Path | None = None,
    commands: dict[str, Command] | None = None,
) -> None:
    available: dict[str, Command] = dict(commands or {})
    if migrations is not None:
        available["migrate"] = lambda settings: upgrade(migrations, settings.database_url)
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in available:
        sys.exit(f"usage: python -m <service> {{{'|'.join(sorted(available))}}}")
    available[name](from_env(settings_cls))
