import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import msgspec

from flashbid_reviews.clients import Catalog, Purchase
from flashbid_shared.contracts import Event


def event(status: str) -> bytes:
    now = datetime.now(UTC)
    return msgspec.json.encode(
        Event(
            id=uuid.uuid4(),
            kind="flash_sale",
            title="t",
            description="",
            status=status,
            currency="EUR",
            starts_at=now,
            ends_at=now,
            offers=[],
            version=1,
            created_at=now,
            updated_at=now,
        )
    )


def serve(answer):
    """An httpx client whose every request is answered by `answer(request)`; and the log."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


def test_catalog_answers_are_cached_known_for_long_and_unknown_briefly() -> None:
    known, unknown = uuid.uuid4(), uuid.uuid4()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if str(known) in request.url.path else 404, json={})

    async def run() -> None:
        http, seen = serve(answer)
        catalog = Catalog(http, "http://catalog", unknown_ttl=0.0)
        assert [await catalog.item_exists(known) for _ in range(3)] == [True] * 3
        assert [await catalog.item_exists(unknown) for _ in range(2)] == [False] * 2
        assert [r.url.path for r in seen] == [
            f"/api/catalog/items/{known}",
            f"/api/catalog/items/{unknown}",
            f"/api/catalog/items/{unknown}",  # not cached for long: it may be created any time
        ]

    asyncio.run(run())


def test_catalog_not_answering_is_neither_yes_nor_no_and_is_not_cached() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, json={})])

    async def run() -> None:
        http, seen = serve(lambda _: next(answers))
        catalog = Catalog(http, "http://catalog")
        item = uuid.uuid4()
        assert await catalog.item_exists(item) is None
        assert await catalog.item_exists(item) is True
        assert len(seen) == 2

    asyncio.run(run())


def test_a_draft_event_is_unknown_to_commenters() -> None:
    draft, live = uuid.uuid4(), uuid.uuid4()

    def answer(request: httpx.Request) -> httpx.Response:
        if str(draft) in request.url.path:
            return httpx.Response(200, content=event("draft"))
        if str(live) in request.url.path:
            return httpx.Response(200, content=event("live"))
        return httpx.Response(404, json={})

    async def run() -> None:
        http, seen = serve(answer)
        catalog = Catalog(http, "http://catalog")
        assert await catalog.event_exists(draft) is False
        assert await catalog.event_exists(live) is True
        assert await catalog.event_exists(uuid.uuid4()) is False
        assert seen[0].url.path == f"/api/catalog/internal/events/{draft}"

    asyncio.run(run())


def test_purchase_yes_is_cached_no_is_asked_again_and_silence_is_none() -> None:
    answers = iter(
        [
            httpx.Response(200, json={"purchased": False}),
            httpx.Response(200, json={"purchased": True}),
        ]
    )

    async def run() -> None:
        http, seen = serve(lambda _: next(answers))
        purchase = Purchase(http, "http://purchase")
        user, item = uuid.uuid4(), uuid.uuid4()
        assert await purchase.purchased(user, item) is False
        assert await purchase.purchased(user, item) is True
        assert await purchase.purchased(user, item) is True  # cached: no third answer needed
        assert dict(seen[0].url.params) == {"user_id": str(user), "item_id": str(item)}
        assert seen[0].url.path == "/api/purchase/internal/purchases"

        def hang(_: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("no answer")

        silent, _ = serve(hang)
        assert await Purchase(silent, "http://purchase").purchased(user, item) is None

    asyncio.run(run())
