import gc

from litestar.testing import TestClient

from flashbid_shared.app import service_app
from flashbid_shared.settings import ServiceSettings


def test_a_running_service_keeps_what_it_built_at_startup_out_of_full_collections() -> None:
    app = service_app("demo", ServiceSettings(), routes=[])
    with TestClient(app) as client:
        assert client.get("/api/demo/health/live").status_code == 200
        frozen, watched = gc.get_freeze_count(), len(gc.get_objects())
    assert frozen > 10 * watched  # a full collection walks a small part of the heap
    assert gc.get_freeze_count() == 0  # and all of it again once the service stops
