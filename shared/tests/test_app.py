import asyncio
import gc

import httpx
from litestar.testing import TestClient

from flashbid_shared.app import fetch_ahead, service_app
from flashbid_shared.settings import ServiceSettings


def test_a_running_service_keeps_what_it_built_at_startup_out_of_full_collections() -> None:
    app, before = service_app("demo", ServiceSettings(), routes=[]), gc.get_threshold()
    with TestClient(app) as client:
        assert client.get("/api/demo/health/live").status_code == 200
        frozen, watched = gc.get_freeze_count(), len(gc.get_objects())
        running = gc.get_threshold()
    assert frozen > 10 * watched  # a full collection walks a small part of the heap
    assert running[0] > before[0] and running[2] > before[2]  # and comes less often
    assert gc.get_freeze_count() == 0  # all of it again once the service stops
    assert gc.get_threshold() == before


def test_what_a_replica_needs_from_auth_is_fetched_as_it_starts_once_auth_answers() -> None:
    calls: list[str] = []

    async def keys() -> None:
        calls.append("keys")
        if calls.count("keys") < 3:
            raise httpx.ConnectError("auth is starting")

    async def token() -> None:
        calls.append("token")

    asyncio.run(fetch_ahead([keys, token], pause=0.001))
    assert calls == ["keys", "keys", "keys", "token"]
