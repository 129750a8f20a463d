"""Live bidding through the gateway: two watchers follow an auction over WebSocket to its end,
bids arrive over HTTP and over the socket, and the winner gets an order and an email."""

import time
import uuid

import pytest

from tests_support import Watcher, open_event, poll, problem


@pytest.fixture(scope="module")
def admin(api) -> str:
    return api.admin_token()


def lot_at(price: str):
    return lambda m: m["type"] == "bid" and (m["lot"]["current_price"] == price)


def live_auction(api, admin) -> tuple[dict, str]:
    event = open_event(api, admin, "auction")
    return event, event["offers"][0]["id"]


def test_two_watchers_follow_an_auction_to_its_end(api, admin, profile, inbox) -> None:
    event, lot_id = live_auction(api, admin)
    alice_account, bob_account = api.register(), api.register()
    alice, bob = api.token(alice_account), api.token(bob_account)
    for token in (alice, bob):
        assert api.post(f"/api/bidding/events/{event['id']}/join", None, token).status_code == 204

    with (
        Watcher(profile.gateway, event["id"], alice) as alice_ws,
        Watcher(profile.gateway, event["id"], bob) as bob_ws,
    ):
        watch_to_the_end(api, admin, inbox, event, lot_id, alice_ws, bob_ws, alice, bob)
    assert "125.00" in inbox.wait_for(alice_account.email, "You won")
    assert event["title"] in inbox.wait_for(bob_account.email, "Ended")  # everyone who joined


def watch_to_the_end(api, admin, inbox, event, lot_id, alice_ws, bob_ws, alice, bob) -> None:
    for watcher in (alice_ws, bob_ws):
        state = watcher.wait_for(lambda m: m["type"] == "state")
        assert state["lots"][0]["min_next_bid"] == "100.00"

    placed = api.post(
        f"/api/bidding/lots/{lot_id}/bids", {"amount": "100", "max_amount": "150"}, alice
    )
    assert placed.status_code == 201, placed.text
    assert alice_ws.wait_for(lot_at("100.00"))["lot"]["you_lead"] is True
    assert bob_ws.wait_for(lot_at("100.00"))["lot"]["you_lead"] is False

    bob_ws.send({"type": "bid", "lot_id": lot_id, "amount": "120.00"})
    assert bob_ws.wait_for(lambda m: m["type"] == "accepted")["lot"]["current_price"] == "125.00"
    bob_ws.wait_for(lambda m: m["type"] == "outbid" and m["lot_id"] == lot_id)
    assert alice_ws.wait_for(lot_at("125.00"))["lot"]["you_lead"] is True
    bob_ws.send({"type": "bid", "lot_id": lot_id, "amount": "126.00"})
    rejected = bob_ws.wait_for(lambda m: m["type"] == "rejected")
    assert (rejected["code"], rejected["min_next_bid"]) == ("bid_too_low", "130.00")

    closed = api.post(f"/api/catalog/admin/events/{event['id']}/close", None, admin)
    assert closed.status_code == 200
    for watcher in (alice_ws, bob_ws):
        result = watcher.wait_for(lambda m: m["type"] == "result" and m["settled"])
        [lot] = result["lots"]
        assert (lot["status"], lot["final_price"]) == ("sold", "125.00")
    assert not [m for m in alice_ws.seen if m["type"] == "outbid"]  # only Bob was told

    results = api.get(f"/api/bidding/events/{event['id']}/results").json()
    assert results["lots"][0]["winner"] is not None
    won = api.get("/api/bidding/me/won", alice).json()["items"]
    assert [(w["offer_id"], w["price"]) for w in won] == [(lot_id, "125.00")]
    assert api.get("/api/bidding/me/won", bob).json()["items"] == []

    deadline = time.monotonic() + 15  # the winner's order, made by settlement through purchase
    while not (orders := api.get("/api/purchase/orders", alice).json()["items"]):
        assert time.monotonic() < deadline, "no order for the winner"
        time.sleep(0.1)
    assert (orders[0]["kind"], orders[0]["total"], orders[0]["status"]) == (
        "auction",
        "125.00",
        "reserved",
    )


def test_bids_are_refused_when_the_rules_say_so(api, admin) -> None:
    event, lot_id = live_auction(api, admin)
    outsider = api.token(api.register())
    not_joined = api.post(f"/api/bidding/lots/{lot_id}/bids", {"amount": "100"}, outsider)
    assert (not_joined.status_code, problem(not_joined)["code"]) == (403, "not_joined")

    bidder = api.token(api.register())
    api.post(f"/api/bidding/events/{event['id']}/join", None, bidder)
    low = api.post(f"/api/bidding/lots/{lot_id}/bids", {"amount": "99.99"}, bidder)
    assert (low.status_code, problem(low)["code"], low.json()["min_next_bid"]) == (
        409,
        "bid_too_low",
        "100.00",
    )
    key = str(uuid.uuid4())
    first = api.post(f"/api/bidding/lots/{lot_id}/bids", {"amount": "100"}, bidder,
                     headers={"Idempotency-Key": key})  # fmt: skip
    again = api.post(f"/api/bidding/lots/{lot_id}/bids", {"amount": "100"}, bidder,
                     headers={"Idempotency-Key": key})  # fmt: skip
    assert first.status_code == again.status_code == 201
    assert again.json()["bid_count"] == 1  # the retry placed nothing
    self_raise = api.post(f"/api/bidding/lots/{lot_id}/bids", {"amount": "110"}, bidder)
    assert (self_raise.status_code, problem(self_raise)["code"]) == (409, "already_leading")

    unverified = api.token(api.register(verified=False))
    refused = api.post(f"/api/bidding/events/{event['id']}/join", None, unverified)
    assert (refused.status_code, problem(refused)["code"]) == (403, "not_allowed")

    other, other_lot = live_auction(api, admin)  # joined one event, bidding in another
    wrong = api.post(f"/api/bidding/lots/{other_lot}/bids", {"amount": "100"}, bidder)
    assert (wrong.status_code, problem(wrong)["code"]) == (403, "not_joined")

    api.post(f"/api/catalog/admin/events/{event['id']}/close", None, admin)
    late = api.post(f"/api/bidding/lots/{lot_id}/bids", {"amount": "200"}, outsider)
    assert (late.status_code, problem(late)["code"]) == (409, "event_not_live")
    api.post(f"/api/catalog/admin/events/{other['id']}/cancel", None, admin)


def test_a_bidder_deactivated_mid_session_is_refused_within_seconds(api, admin) -> None:
    """Bidding knew them as active (their first bid): the deactivation reaches it through
    auth's changes feed within seconds, not when its cached copy of the bidder expires."""
    event = open_event(api, admin, "ranked")
    bids = f"/api/bidding/sessions/{event['offers'][0]['id']}/bids"
    account = api.register()
    token = api.token(account)
    assert api.post(bids, {"price": "50"}, token).status_code == 201
    deactivated = api.patch(f"/api/auth/admin/users/{account.id}", {"is_active": False}, admin)
    assert deactivated.status_code == 200, deactivated.text
    prices = iter(range(51, 1000))
    raised = poll(
        lambda: (r := api.post(bids, {"price": str(next(prices))}, token)).status_code != 201 and r,
        timeout=5,
        every=0.1,
    )
    assert (raised.status_code, problem(raised)["code"]) == (403, "not_allowed")
    api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin)


def test_a_ranked_session_ranks_bids_and_answers_each_bidders_standing(api, admin) -> None:
    event = open_event(api, admin, "ranked")
    path = f"/api/catalog/admin/events/{event['id']}"
    offer_id = event["offers"][0]["id"]
    tokens = [api.token(api.register()) for _ in range(4)]
    for n, token in enumerate(tokens):
        placed = api.post(f"/api/bidding/sessions/{offer_id}/bids", {"price": str(50 + n)}, token)
        assert placed.status_code == 201, placed.text
    lower = api.post(f"/api/bidding/sessions/{offer_id}/bids", {"price": "50"}, tokens[3])
    assert (lower.status_code, problem(lower)["code"]) == (409, "bid_too_low")
    board = api.get(f"/api/bidding/sessions/{offer_id}/leaderboard").json()
    assert [line["price"] for line in board] == ["53.00", "52.00", "51.00", "50.00"]
    last = api.get(f"/api/bidding/sessions/{offer_id}/me", tokens[0]).json()
    assert (last["rank"], last["winning"]) == (4, False)  # 3 units, 4 bidders
    raised = api.post(f"/api/bidding/sessions/{offer_id}/bids", {"price": "60"}, tokens[0]).json()
    assert (raised["rank"], raised["winning"]) == (1, True)

    api.post(f"{path}/close", None, admin)
    deadline = time.monotonic() + 10
    while not (results := api.get(f"/api/bidding/events/{event['id']}/results").json())["settled"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    [session] = results["sessions"]
    assert session["final_price"] == "52.00"  # the lowest winning bid
    assert [r["price"] for r in session["rankings"]] == ["60.00", "53.00", "52.00", "51.00"]
