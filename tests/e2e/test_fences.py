"""An answered transition is a fence: once catalog says an event is open, closed or cancelled,
purchase and bidding act on it for every request sent after the answer, on every replica."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import pytest
from e2e.test_bidding import Watcher

import stack
from tests_support import open_event, open_flash_sale, place_order, poll, problem


@pytest.fixture(scope="module")
def admin(api) -> str:
    return api.admin_token()


def action(api, admin, event: dict, name: str) -> dict:
    response = api.post(f"/api/catalog/admin/events/{event['id']}/{name}", None, admin)
    assert response.status_code == 200, response.text
    return response.json()


def storm_until(stop: threading.Event, send) -> list[tuple[float, int, dict]]:
    """`send(n)` over and over from four threads until `stop`: (sent at, status, body)."""
    answers: list[tuple[float, int, dict]] = []

    def loop(start: int) -> None:
        n = start
        while not stop.is_set():
            sent = time.monotonic()
            response = send(n)
            answers.append((sent, response.status_code, response.json()))
            n += 4

    with ThreadPoolExecutor(4) as pool:
        for start in range(4):
            pool.submit(loop, start)
        stop.wait()
    return answers


def closed_while_bidding(api, admin, event: dict, send, name: str = "close"):
    """Bids stream in while the event is closed (or cancelled): the answers, and when the
    close was answered."""
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        storm = pool.submit(storm_until, stop, send)
        time.sleep(0.3)  # the storm under way
        action(api, admin, event, name)
        answered = time.monotonic()
        time.sleep(0.3)
        stop.set()
        return storm.result(), answered


def test_no_lot_bid_is_accepted_once_close_is_answered(api, admin) -> None:
    event = open_event(api, admin, "auction")
    lot_id = event["offers"][0]["id"]
    bidders = [api.token(api.register()) for _ in range(4)]
    for token in bidders:
        api.post(f"/api/bidding/events/{event['id']}/join", None, token)

    def bid(n: int):
        amount = f"{100 + 5 * n}.00"
        return api.post(f"/api/bidding/lots/{lot_id}/bids", {"amount": amount}, bidders[n % 4])

    answers, answered = closed_while_bidding(api, admin, event, bid)
    accepted = [body for sent, status, body in answers if status == 201]
    late = [(status, body) for sent, status, body in answers if sent > answered]
    assert accepted and late
    assert {(status, body["code"]) for status, body in late} == {(409, "event_not_live")}

    results = poll(lambda: (r := api.get(f"/api/bidding/events/{event['id']}/results").json())
                   ["settled"] and r)  # fmt: skip
    highest = max(accepted, key=lambda body: body["bid_count"])
    assert results["lots"][0]["final_price"] == highest["current_price"]


def test_no_ranked_bid_is_accepted_once_close_is_answered(api, admin) -> None:
    event = open_event(api, admin, "ranked")
    offer_id = event["offers"][0]["id"]
    bidders = [api.token(api.register()) for _ in range(4)]

    def bid(n: int):
        price = f"{50 + n}.00"
        return api.post(f"/api/bidding/sessions/{offer_id}/bids", {"price": price}, bidders[n % 4])

    answers, answered = closed_while_bidding(api, admin, event, bid)
    accepted = [body for sent, status, body in answers if status == 201]
    late = [(status, body) for sent, status, body in answers if sent > answered]
    assert accepted and late
    assert {(status, body["code"]) for status, body in late} == {(409, "event_not_live")}

    results = poll(lambda: (r := api.get(f"/api/bidding/events/{event['id']}/results").json())
                   ["settled"] and r)  # fmt: skip
    ranked = {line["price"] for line in results["sessions"][0]["rankings"]}
    board = api.get(f"/api/bidding/sessions/{offer_id}/leaderboard").json()
    assert {line["price"] for line in board} == ranked  # the board and the result agree
    assert max((body["price"] for body in accepted), key=Decimal) in ranked


def test_no_order_is_accepted_once_cancel_is_answered(api, admin) -> None:
    event, offer_id = open_flash_sale(api, admin, stock=100_000, limit=100_000)
    buyer = api.token(api.register())
    answers, answered = closed_while_bidding(
        api, admin, event, lambda _: place_order(api, buyer, offer_id), name="cancel"
    )
    late = [(status, body) for sent, status, body in answers if sent > answered]
    assert late and any(status == 201 for _, status, _ in answers)
    assert {(status, body["code"]) for status, body in late} == {(409, "event_not_live")}


def test_everything_is_accepted_right_after_open_and_publish(api, admin) -> None:
    sale, offer = scheduled(api, admin, "flash_sale")
    auction, lot = scheduled(api, admin, "auction")
    ranked, session = scheduled(api, admin, "ranked")
    buyer = api.token(api.register())

    joined = api.post(f"/api/bidding/events/{auction['id']}/join", None, buyer)
    assert joined.status_code == 204, joined.text  # right after publish
    early = [
        place_order(api, buyer, offer),
        api.post(f"/api/bidding/lots/{lot}/bids", {"amount": "100"}, buyer),
        api.post(f"/api/bidding/sessions/{session}/bids", {"price": "60"}, buyer),
    ]
    assert [(r.status_code, problem(r)["code"]) for r in early] == [(409, "event_not_live")] * 3
    for event in (sale, auction, ranked):
        action(api, admin, event, "open")

    assert place_order(api, buyer, offer).status_code == 201
    lot_bid = api.post(f"/api/bidding/lots/{lot}/bids", {"amount": "100"}, buyer)
    assert lot_bid.status_code == 201, lot_bid.text
    ranked_bid = api.post(f"/api/bidding/sessions/{session}/bids", {"price": "60"}, buyer)
    assert ranked_bid.status_code == 201, ranked_bid.text


def scheduled(api, admin, kind: str) -> tuple[dict, str]:
    event = api.create_event(admin, kind, starts_in=3600)
    return event, event["offers"][0]["id"]


def test_a_repeated_transition_is_answered_again(api, admin) -> None:
    event, _ = scheduled(api, admin, "flash_sale")
    first, again = action(api, admin, event, "open"), action(api, admin, event, "open")
    assert first["status"] == again["status"] == "live"
    assert first["version"] == again["version"]
    history = api.get(f"/api/catalog/admin/events/{event['id']}", admin).json()["transitions"]
    assert [t["to_status"] for t in history] == ["scheduled", "live"]


def test_cancelling_voids_reserved_orders_and_tells_their_buyers(api, admin, inbox) -> None:
    event, offer_id = open_flash_sale(api, admin)
    account = api.register()
    buyer = api.token(account)
    order = place_order(api, buyer, offer_id).json()
    action(api, admin, event, "cancel")

    confirm = api.post(f"/api/purchase/orders/{order['id']}/confirm", None, buyer)
    assert (confirm.status_code, problem(confirm)["code"]) == (409, "event_cancelled")
    assert api.get(f"/api/purchase/orders/{order['id']}", buyer).json()["status"] == "cancelled"
    stats = api.get(f"/api/purchase/admin/stats?event_id={event['id']}", admin).json()
    assert (stats["cancelled"], stats["reserved"], stats["confirmed"]) == (True, 0, 0)
    assert event["title"] in inbox.wait_for(account.email, "Cancelled:")


def test_cancelling_an_auction_voids_its_winners_orders(api, admin) -> None:
    item = api.create_item(admin)
    lots = [
        {"item_id": item["id"], "starting_price": "100.00", "increment": "5.00",
         "buy_now_price": "300.00"},
        {"item_id": item["id"], "starting_price": "100.00", "increment": "5.00"},
    ]  # fmt: skip
    event = open_event(api, admin, "auction", lots)
    buyer = api.token(api.register())
    api.post(f"/api/bidding/events/{event['id']}/join", None, buyer)
    bought = api.post(f"/api/bidding/lots/{event['offers'][0]['id']}/buy-now", None, buyer)
    assert bought.status_code == 201, bought.text
    [order] = poll(lambda: api.get("/api/purchase/orders", buyer).json()["items"])
    action(api, admin, event, "cancel")

    confirm = api.post(f"/api/purchase/orders/{order['id']}/confirm", None, buyer)
    assert (confirm.status_code, problem(confirm)["code"]) == (409, "event_cancelled")
    results = api.get(f"/api/bidding/events/{event['id']}/results").json()
    assert results["cancelled"] is True


def test_a_soft_close_keeps_the_event_live_until_its_last_lot_closes(api, admin, profile):
    event = api.create_event(
        admin, "auction", publish=False, soft_close_seconds=30, extension_seconds=3
    )
    # An auction of a few seconds (the API's shortest is a minute), made in catalog's own table.
    stack.psql(
        profile,
        f"UPDATE events SET starts_at = now(), ends_at = now() + interval '4 seconds' "
        f"WHERE id = '{event['id']}'",
        database="flashbid_catalog",
    )
    action(api, admin, event, "publish")
    event = action(api, admin, event, "open")
    original_end = datetime.fromisoformat(event["ends_at"])
    lot_id = event["offers"][0]["id"]
    bidder = api.token(api.register())
    api.post(f"/api/bidding/events/{event['id']}/join", None, bidder)

    with Watcher(profile.gateway, event["id"], bidder) as watcher:
        watcher.wait_for(lambda m: m["type"] == "state")
        placed = api.post(f"/api/bidding/lots/{lot_id}/bids", {"amount": "100"}, bidder)
        assert placed.status_code == 201, placed.text
        extended = datetime.fromisoformat(placed.json()["ends_at"])
        assert extended > original_end

        public = f"/api/catalog/events/{event['id']}"
        poll(lambda: datetime.fromisoformat(api.get(public).json()["ends_at"]) == extended)
        while datetime.now(original_end.tzinfo) < original_end + (extended - original_end) / 2:
            time.sleep(0.1)  # past the original end, before the extended one
        assert api.get(public).json()["status"] == "live"
        live = api.get("/api/catalog/events?status=live&kind=auction&limit=100").json()["items"]
        assert event["id"] in [e["id"] for e in live]

        result = watcher.wait_for(lambda m: m["type"] == "result", timeout=15)
        assert result["lots"][0]["status"] == "sold"
        ended = watcher.wait_for(lambda m: m["type"] == "status" and m["status"] == "ended")
        assert watcher.seen.index(result) < watcher.seen.index(ended)
    final = poll(lambda: (e := api.get(public).json())["status"] == "ended" and e)
    assert datetime.fromisoformat(final["ends_at"]) == extended


def test_concurrent_retries_of_one_key_all_get_the_first_answer(api, admin) -> None:
    auction = open_event(api, admin, "auction")
    ranked = open_event(api, admin, "ranked")
    _, offer_id = open_flash_sale(api, admin, stock=10, limit=5)
    buyer = api.token(api.register())
    api.post(f"/api/bidding/events/{auction['id']}/join", None, buyer)
    requests = {
        f"/api/bidding/lots/{auction['offers'][0]['id']}/bids": {"amount": "100"},
        f"/api/bidding/sessions/{ranked['offers'][0]['id']}/bids": {"price": "60"},
        "/api/purchase/orders": {"offer_id": offer_id, "quantity": 1},
    }
    for path, body in requests.items():
        key = str(uuid.uuid4())

        def send(_: int, path=path, body=body, key=key):
            return api.post(path, body, buyer, headers={"Idempotency-Key": key})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(8)))
        assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
        assert len({a.content for a in answers}) == 1, path
        assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7, path
    orders = api.get("/api/purchase/orders", buyer).json()["items"]
    assert len(orders) == 1


def test_a_ranked_bid_honours_its_idempotency_key(api, admin) -> None:
    ranked = open_event(api, admin, "ranked")
    path = f"/api/bidding/sessions/{ranked['offers'][0]['id']}/bids"
    bidder, key = api.token(api.register()), {"Idempotency-Key": str(uuid.uuid4())}
    first = api.post(path, {"price": "60"}, bidder, headers=key)
    again = api.post(path, {"price": "60"}, bidder, headers=key)
    other = api.post(path, {"price": "70"}, bidder, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert (other.status_code, problem(other)["code"]) == (422, "idempotency_mismatch")
    me = api.get(f"/api/bidding/sessions/{ranked['offers'][0]['id']}/me", bidder).json()
    assert me["price"] == "60.00"


def test_a_refused_order_leaves_nothing_behind(api, admin) -> None:
    event, offer_id = open_flash_sale(api, admin, stock=10, limit=5)
    account = api.register()
    buyer = api.token(account)
    api.patch(f"/api/auth/admin/users/{account.id}", {"is_active": False}, admin)
    refused = place_order(api, buyer, offer_id, key=str(uuid.uuid4()))
    assert (refused.status_code, problem(refused)["code"]) == (403, "not_allowed")
    orders = api.get("/api/purchase/admin/orders", admin, params={"event_id": event["id"]})
    assert orders.json()["items"] == []
    stock = api.get(f"/api/purchase/events/{event['id']}/stock").json()
    assert stock[0]["remaining"] == 10
