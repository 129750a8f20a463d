from flashbid_purchase.store import metadata
from flashbid_shared.migrations import run_migrations

run_migrations(metadata)
