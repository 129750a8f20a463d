import asyncio
from datetime import UTC, datetime
from uuid import uuid4

import httpx

from flashbid_catalog.clients import Peers
from flashbid_shared.contracts import Event

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def event(kind: str) -> Event:
    return Event(
        id=uuid4(), kind=kind, title="t", description="", status="live", currency="EUR",
        starts_at=NOW, ends_at=NOW, offers=[], version=3, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def peers(handler) -> Peers:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Peers(http, "http://purchase", "http://bidding", figures_timeout=0.5)


def test_each_kind_is_pushed_to_the_service_that_runs_it() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url)))
        return httpx.Response(200, json={"applied": True})

    sale, auction = event("flash_sale"), event("auction")
    asyncio.run(peers(handler).push(sale))
    asyncio.run(peers(handler).push(auction))
    assert seen == [
        ("PUT", f"http://purchase/api/purchase/internal/events/{sale.id}"),
        ("PUT", f"http://bidding/api/bidding/internal/events/{auction.id}"),
    ]


def test_figures_of_a_service_that_does_not_answer_are_none() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def up(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"orders": 7, "revenue": "139.93"})

    assert asyncio.run(peers(down).figures(event("flash_sale"))) is None
    found = asyncio.run(peers(up).figures(event("flash_sale")))
    assert (found.orders, str(found.revenue)) == (7, "139.93")
