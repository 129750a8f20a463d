"""Catalog through the gateway: the admin's flow, the scheduler, and the public reads."""

import time
import uuid
from datetime import datetime

import pytest

from tests_support import event_body, open_event, open_flash_sale, place_order, problem


@pytest.fixture(scope="module")
def admin(api) -> str:
    return api.admin_token()


def wait_for_status(api, admin, event_id: str, status: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = api.get(f"/api/catalog/admin/events/{event_id}", admin).json()
        if found["event"]["status"] == status:
            return found
        assert time.monotonic() < deadline, f"still {found['event']['status']}, not {status}"
        time.sleep(0.05)


def test_an_admin_runs_an_event_from_draft_to_the_end(api, admin) -> None:
    event = api.create_event(admin, "auction", publish=False)
    path = f"/api/catalog/admin/events/{event['id']}"
    assert event["status"] == "draft"
    assert api.get(f"/api/catalog/events/{event['id']}").status_code == 404  # drafts are private

    edited = api.patch(path, {"title": "Rare books", "soft_close_seconds": 60}, admin)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["title"], edited.json()["soft_close_seconds"]) == ("Rare books", 60)

    assert api.post(f"{path}/publish", None, admin).json()["status"] == "scheduled"
    public = api.get(f"/api/catalog/events/{event['id']}").json()
    assert public["title"] == "Rare books" and public["offers"][0]["starting_price"] == "100.00"

    assert api.post(f"{path}/open", None, admin).json()["status"] == "live"
    locked = api.patch(path, {"title": "Too late"}, admin)
    assert (locked.status_code, problem(locked)["code"]) == (409, "event_locked")
    again = api.post(f"{path}/publish", None, admin)
    assert (again.status_code, problem(again)["code"]) == (409, "invalid_transition")

    assert api.post(f"{path}/close", None, admin).json()["status"] == "ended"
    history = api.get(path, admin).json()["transitions"]
    assert [(t["from_status"], t["to_status"], t["actor"]) for t in history] == [
        ("draft", "scheduled", "admin"),
        ("scheduled", "live", "admin"),
        ("live", "ended", "admin"),
    ]


def test_the_scheduler_opens_and_ends_events_on_time(api, admin) -> None:
    event = api.create_event(admin, "flash_sale", starts_in=1.5, lasts=61)
    opened = wait_for_status(api, admin, event["id"], "live")
    move = opened["transitions"][-1]
    assert move["actor"] == "scheduler"
    lag = datetime.fromisoformat(move["at"]) - datetime.fromisoformat(move["due_at"])
    assert lag.total_seconds() < 1.0
    assert (
        api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin).status_code == 200
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ({"currency": "JPY"}, "offers[0].price"),  # 19.99 yen does not exist
        ({"currency": "XXX"}, "currency"),
        ({"offers": [{"item_id": str(uuid.uuid4()), "price": "5.00", "stock": 1}]}, "item_id"),
        ({"offers": [{"item_id": "{item}", "price": "5.00", "stock": 2, "per_user_limit": 3}]},
         "per_user_limit"),
    ],
)  # fmt: skip
def test_careless_events_are_refused_with_what_to_fix(api, admin, change, field) -> None:
    item = api.create_item(admin)["id"]
    if "offers" in change:
        change = {
            "offers": [{**o, "item_id": o["item_id"].format(item=item)} for o in change["offers"]]
        }
    response = api.post(
        "/api/catalog/admin/events", event_body("flash_sale", item, **change), admin
    )
    body = problem(response)
    assert (response.status_code, body["code"]) == (422, "invalid_event")
    assert any(field in error["field"] for error in body["errors"]), body
    assert field in body["detail"]


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("flash_sale", {"offers": [{"item_id": "{item}", "price": "5.00", "stock": -1}]}),
        ("ranked", {"offers": [{"item_id": "{item}", "upset_price": "5.00", "inventory": 0}]}),
        ("auction", {"offers": []}),
        ("auction", {"status": "live"}),  # nobody chooses the status by hand
        ("flash_sale", {"starts_at": "tomorrow"}),
    ],
)
def test_malformed_events_are_refused(api, admin, kind, change) -> None:
    item = api.create_item(admin)["id"]
    if "offers" in change:
        change = {"offers": [{**o, "item_id": item} for o in change["offers"]]}
    response = api.post("/api/catalog/admin/events", event_body(kind, item, **change), admin)
    assert (response.status_code, problem(response)["code"]) == (422, "invalid_input")


def test_customers_and_strangers_cannot_use_admin_routes(api) -> None:
    customer = api.token(api.register())
    for method, path in [
        ("POST", "/api/catalog/admin/items"),
        ("POST", "/api/catalog/admin/events"),
        ("GET", "/api/catalog/admin/dashboard"),
        ("POST", f"/api/catalog/admin/events/{uuid.uuid4()}/open"),
    ]:
        as_customer = api.request(method, path, customer, json={})
        assert (as_customer.status_code, problem(as_customer)["code"]) == (403, "forbidden")
        anonymous = api.request(method, path, json={})
        assert (anonymous.status_code, problem(anonymous)["code"]) == (401, "unauthenticated")


def test_public_lists_filter_sort_and_page(api, admin) -> None:
    tag = uuid.uuid4().hex[:10]
    for kind, starts_in in [("flash_sale", 3000), ("auction", 1000), ("ranked", 2000)]:
        api.create_event(admin, kind, starts_in=starts_in, title=f"Sale {tag} {kind}")
    api.create_event(admin, "flash_sale", publish=False, title=f"Sale {tag} draft")

    def titles(**params) -> list[str]:
        response = api.get("/api/catalog/events", params={"search": tag, **params})
        assert response.status_code == 200, response.text
        return [event["title"].split()[-1] for event in response.json()["items"]]

    assert sorted(titles()) == ["auction", "flash_sale", "ranked"]  # not the draft
    assert titles(sort="starts_at") == ["auction", "ranked", "flash_sale"]
    assert titles(kind="ranked") == ["ranked"]
    assert titles(price_min="40", price_max="60") == ["ranked"]  # upset price 50.00
    page = api.get("/api/catalog/events", params={"search": tag, "limit": 2, "offset": 2}).json()
    assert (page["total"], len(page["items"]), page["limit"]) == (3, 1, 2)
    too_many = api.get("/api/catalog/events", params={"limit": 1000})
    assert (too_many.status_code, problem(too_many)["code"]) == (422, "invalid_input")


def test_featured_puts_live_events_first(api, admin) -> None:
    event = api.create_event(admin, "flash_sale", starts_in=1, lasts=60)
    live = wait_for_status(api, admin, event["id"], "live")["event"]
    # a signed-in request skips the gateway's one-second copy
    featured = api.get("/api/catalog/events/featured", admin).json()
    assert 1 <= len(featured) <= 3
    statuses = [e["status"] for e in featured]
    assert statuses == sorted(statuses, key=lambda s: s != "live")
    if event["id"] not in [e["id"] for e in featured]:  # other live events end sooner
        assert all(e["status"] == "live" and e["ends_at"] <= live["ends_at"] for e in featured)
    api.post(f"/api/catalog/admin/events/{event['id']}/close", None, admin)


def test_event_detail_is_cached_briefly_and_revalidates_with_an_etag(api, admin) -> None:
    event = api.create_event(admin, "ranked")
    path = f"/api/catalog/events/{event['id']}"
    first = api.get(path)
    assert first.headers["cache-control"] == "public, max-age=1"
    statuses = [api.get(path).headers["x-cache-status"] for _ in range(5)]
    assert "HIT" in statuses  # the gateway answered without asking catalog
    etag = first.headers["etag"]
    unchanged = api.get(path, headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")

    api.patch(f"/api/catalog/admin/events/{event['id']}", {"title": "Renamed"}, admin)
    deadline = time.monotonic() + 5
    while (fresh := api.get(path)).json()["title"] != "Renamed":
        assert time.monotonic() < deadline, "the cached copy outlived its second"
        time.sleep(0.2)
    assert fresh.headers["etag"] != etag


def test_an_item_in_use_is_archived_and_an_unused_one_deleted(api, admin) -> None:
    unused = api.create_item(admin)
    assert api.delete(f"/api/catalog/admin/items/{unused['id']}", admin).status_code == 204
    assert api.get(f"/api/catalog/items/{unused['id']}").status_code == 404

    event = api.create_event(admin, "flash_sale")
    used = event["offers"][0]["item_id"]
    assert api.delete(f"/api/catalog/admin/items/{used}", admin).status_code == 204
    assert api.get(f"/api/catalog/items/{used}").json()["archived"] is True
    assert api.get(f"/api/catalog/events/{event['id']}").json()["offers"][0]["item"]["id"] == used
    reuse = api.post("/api/catalog/admin/events", event_body("flash_sale", used), admin)
    assert (reuse.status_code, problem(reuse)["code"]) == (422, "invalid_event")


def test_the_dashboard_gathers_each_events_figures_from_purchase_and_bidding(api, admin) -> None:
    sale, offer_id = open_flash_sale(api, admin, stock=5)
    buyer = api.token(api.register())
    assert place_order(api, buyer, offer_id, 2).status_code == 201
    auction = open_event(api, admin, "auction")
    bidder = api.token(api.register())
    api.post(f"/api/bidding/events/{auction['id']}/join", None, bidder)
    lot = auction["offers"][0]["id"]
    assert api.post(f"/api/bidding/lots/{lot}/bids", {"amount": "100"}, bidder).status_code == 201

    dashboard = api.get("/api/catalog/admin/dashboard", admin).json()
    assert dashboard["events_by_status"]["live"] >= 2
    rows = {row["id"]: row for row in dashboard["events"]}
    assert rows[sale["id"]]["figures_available"] is True
    assert (rows[sale["id"]]["figures"]["orders"], rows[sale["id"]]["figures"]["units_sold"]) == (
        1,
        0,
    )
    assert rows[auction["id"]]["figures"] == {"bids": 1, "participants": 1}
    for event in (sale, auction):
        api.post(f"/api/catalog/admin/events/{event['id']}/close", None, admin)
