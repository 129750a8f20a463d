"""The bidding WebSocket as an API like the others, through the gateway: limits, frames, the
HTTP API's codes and words, tokens kept out of the logs and honoured to their end, anonymous
watchers; and the stock of a flash sale, shared by every viewer's poll."""

import asyncio
import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from flashbid_auth.keys import token_claims
from tests_support import (
    Watcher,
    client_address,
    open_event,
    open_flash_sale,
    place_order,
    poll,
    problem,
    signing_key,
)


@pytest.fixture(scope="module")
def admin(api) -> str:
    return api.admin_token()


def of_type(kind: str):
    return lambda message: message["type"] == kind


def replies(watcher: Watcher, count: int, timeout: float = 10) -> list[dict]:
    """The next `count` answers to messages sent, in order (each answer is taken once)."""

    def answers() -> list[dict]:
        return [m for m in watcher.seen if m["type"] in ("accepted", "rejected", "pong")]

    taken = getattr(watcher, "taken", 0)
    watcher.wait_for(lambda _: len(answers()) >= taken + count, timeout)
    watcher.taken = taken + count
    return answers()[taken : taken + count]


def test_socket_bids_are_limited_per_user_across_sockets(api, admin, profile) -> None:
    event = open_event(api, admin, "ranked")
    offer_id = event["offers"][0]["id"]
    token = api.token(api.register())
    prices = iter(range(50, 1000))
    with (
        Watcher(profile.gateway, event["id"], token) as first,
        Watcher(profile.gateway, event["id"], token) as second,
    ):
        for watcher in (first, second):
            watcher.wait_for(of_type("state"))
        started = time.monotonic()
        for _ in range(14):
            first.send({"type": "bid", "offer_id": offer_id, "price": str(next(prices))})
        answers = replies(first, 14)
        for _ in range(4):  # the same user on another socket: the same bucket
            second.send({"type": "bid", "offer_id": offer_id, "price": str(next(prices))})
        answers += replies(second, 4)
        elapsed = time.monotonic() - started
    accepted = [a for a in answers if a["type"] == "accepted"]
    refused = [a for a in answers if a["type"] == "rejected"]
    assert 10 <= len(accepted) <= 10 + 5 * elapsed + 1, (elapsed, answers)  # HTTP: 5/s, burst 10
    assert refused and {a["code"] for a in refused} == {"rate_limited"}, refused
    assert all(a["retry_after"] >= 1 for a in refused)
    assert [a["type"] for a in answers[:10]] == ["accepted"] * 10

    told = time.monotonic() + refused[-1]["retry_after"]
    with Watcher(profile.gateway, event["id"], token) as later:  # allowed again when told

        def bid() -> bool:
            later.send({"type": "bid", "offer_id": offer_id, "price": str(next(prices))})
            return replies(later, 1)[0]["type"] == "accepted"

        poll(bid, timeout=5, every=0.1)
    assert time.monotonic() <= told + 0.5
    api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin)


def test_a_message_over_64_kib_closes_the_socket_with_1009(api, admin, profile) -> None:
    event = open_event(api, admin, "ranked")
    token = api.token(api.register())
    with Watcher(profile.gateway, event["id"], token) as watcher:
        watcher.wait_for(of_type("state"))
        watcher.send({"type": "bid", "padding": "x" * 60_000})  # large, but within the cap
        assert replies(watcher, 1)[0]["code"] == "invalid_input"
        watcher.send({"type": "bid", "padding": "x" * 65_536})
        assert watcher.close_code() == 1009
    api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin)


def test_every_message_is_a_text_frame_with_the_servers_time(api, admin, profile) -> None:
    event = open_event(api, admin, "auction")
    lot_id = event["offers"][0]["id"]
    alice, bob = api.token(api.register()), api.token(api.register())
    for token in (alice, bob):
        assert api.post(f"/api/bidding/events/{event['id']}/join", None, token).status_code == 204
    with (
        Watcher(profile.gateway, event["id"], alice) as alice_ws,
        Watcher(profile.gateway, event["id"], bob) as bob_ws,
    ):
        for watcher in (alice_ws, bob_ws):
            watcher.wait_for(of_type("state"))
        alice_ws.send({"type": "bid", "lot_id": lot_id, "amount": "100"})
        alice_ws.wait_for(of_type("accepted"))
        bob_ws.send({"type": "bid", "lot_id": lot_id, "amount": "105"})
        bob_ws.wait_for(of_type("accepted"))
        alice_ws.wait_for(of_type("outbid"))
        alice_ws.wait_for(lambda m: m["type"] == "bid" and m["lot"]["current_price"] == "105.00")
        alice_ws.send({"type": "bid", "lot_id": lot_id, "amount": "1"})
        alice_ws.wait_for(of_type("rejected"))
        alice_ws.send({"type": "ping"})
        alice_ws.wait_for(of_type("pong"))
        api.post(f"/api/catalog/admin/events/{event['id']}/close", None, admin)
        alice_ws.wait_for(lambda m: m["type"] == "result" and m["settled"])
    kinds = {m["type"] for m in alice_ws.seen}
    assert {"state", "accepted", "outbid", "bid", "rejected", "pong", "status", "result"} <= kinds
    for message in alice_ws.seen + bob_ws.seen:
        stamp = message["server_time"]
        assert stamp.endswith("Z"), stamp  # RFC 3339, UTC
        assert abs((datetime.fromisoformat(stamp) - datetime.now(UTC)).total_seconds()) < 30


def test_rejections_use_the_http_apis_codes_and_words(api, admin, profile) -> None:
    event = open_event(api, admin, "ranked")
    offer_id = event["offers"][0]["id"]
    token = api.token(api.register())
    bids = f"/api/bidding/sessions/{offer_id}/bids"
    over_http = problem(api.post(bids, {"price": "abc"}, token))
    unknown = str(uuid.uuid4())
    unknown_bids = f"/api/bidding/sessions/{unknown}/bids"
    unknown_http = problem(api.post(unknown_bids, {"price": "60"}, token))
    with Watcher(profile.gateway, event["id"], token) as watcher:
        watcher.wait_for(of_type("state"))
        sent = [
            {"type": "bid", "offer_id": offer_id, "price": "abc"},
            {"type": "bid", "offer_id": "not-a-uuid", "price": "60"},
            {"type": "bid", "lot_id": str(uuid.uuid4())},
            {"type": "dance"},
            {"price": "60"},
            {"type": "bid", "offer_id": unknown, "price": "60"},
        ]
        for message in sent:
            watcher.send(message)
        watcher.socket.send("not json")
        price, offer, lot, kind, untyped, missing, garbage = replies(watcher, len(sent) + 1)
    assert (price["code"], price["errors"]) == (over_http["code"], over_http["errors"])
    assert offer["code"] == "invalid_input" and offer["errors"][0]["key"] == "offer_id"
    for answer in (lot, kind, untyped):
        assert answer["code"] == "invalid_input" and answer["errors"], answer
    assert (missing["code"], missing["detail"]) == (unknown_http["code"], unknown_http["detail"])
    assert garbage["code"] == "bad_request" and garbage["detail"].startswith("JSON is malformed")
    for answer in (price, offer, lot, kind, untyped, missing, garbage):  # no Python in the words
        details = [answer["detail"], *(e["message"] for e in answer.get("errors", []))]
        assert not [d for d in details if "hexadecimal" in d or d == "'offer_id'"], answer
    api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin)


def test_tokens_never_reach_the_logs(api, admin, profile) -> None:
    event = open_event(api, admin, "ranked")
    token = api.token(api.register())
    request_id = f"logs-{uuid.uuid4().hex}"
    with Watcher(profile.gateway, event["id"], token, **{"X-Request-ID": request_id}) as watcher:
        watcher.wait_for(of_type("state"))
    address = client_address()  # a flood from one address: refusals are logged as warnings
    url = f"{profile.gateway}/ws/bidding/events/{event['id']}?token={token}"
    with httpx.Client(headers={"X-Forwarded-For": address}, timeout=10) as client:
        statuses = [client.get(url).status_code for _ in range(160)]
    assert 429 in statuses
    logs = profile.dir / "logs"
    poll(lambda: request_id in (logs / "gateway.log").read_text(), timeout=10)
    for path in logs.iterdir():
        if path.is_file():
            assert token not in path.read_text(errors="replace"), path.name
    api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin)


def short_lived_token(profile, user_id: str, seconds: int) -> tuple[str, float]:
    """A customer's access token as auth signs them, but expiring in `seconds`."""
    key = asyncio.run(signing_key(profile))
    claims = token_claims(
        subject=user_id, role="customer", issuer="flashbid-auth", audience="flashbid",
        ttl=seconds, email_verified=True,
    )  # fmt: skip
    token = key.sign(claims)
    payload = token.split(".")[1]
    return token, json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def test_a_socket_stops_at_its_tokens_expiry_with_4401(api, admin, profile) -> None:
    event = open_event(api, admin, "ranked")
    offer_id = event["offers"][0]["id"]
    token, expires = short_lived_token(profile, api.register().id, 4)
    with Watcher(profile.gateway, event["id"], token) as watcher:
        watcher.wait_for(of_type("state"))
        watcher.send({"type": "bid", "offer_id": offer_id, "price": "60"})
        assert replies(watcher, 1)[0]["type"] == "accepted"  # before the expiry
        assert watcher.close_code(timeout=expires - time.time() + 3) == 4401
        closed = time.time()
    assert expires - 0.5 <= closed <= expires + 2
    with Watcher(profile.gateway, event["id"], token) as again:  # the same token, too late
        assert again.close_code() == 4401
    board = api.get(f"/api/bidding/sessions/{offer_id}/leaderboard").json()
    assert [line["price"] for line in board] == ["60.00"]
    api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin)


def test_a_deactivated_bidders_socket_closes_with_4403(api, admin, profile) -> None:
    event = open_event(api, admin, "ranked")
    offer_id = event["offers"][0]["id"]
    account = api.register()
    token = api.token(account)
    with Watcher(profile.gateway, event["id"], token) as watcher:
        watcher.wait_for(of_type("state"))
        watcher.send({"type": "bid", "offer_id": offer_id, "price": "60"})
        assert replies(watcher, 1)[0]["type"] == "accepted"
        patched = api.patch(f"/api/auth/admin/users/{account.id}", {"is_active": False}, admin)
        assert patched.status_code == 200, patched.text
        deactivated = time.monotonic()
        assert watcher.close_code(timeout=5) == 4403
        assert time.monotonic() - deactivated < 3  # auth's feed is asked every second
    with Watcher(profile.gateway, event["id"], token) as again:  # its token is still valid
        assert again.close_code() == 4403
    api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin)


def test_anonymous_visitors_watch_read_only(api, admin, profile) -> None:
    event = open_event(api, admin, "ranked")
    offer_id = event["offers"][0]["id"]
    bidder = api.token(api.register())
    anonymous = problem(api.post(f"/api/bidding/sessions/{offer_id}/bids", {"price": "60"}))
    with Watcher(profile.gateway, event["id"]) as visitor:
        state = visitor.wait_for(of_type("state"))
        assert state["sessions"][0]["you"] is None
        placed = api.post(f"/api/bidding/sessions/{offer_id}/bids", {"price": "61"}, bidder)
        assert placed.status_code == 201, placed.text
        board = visitor.wait_for(lambda m: m["type"] == "bid" and m["leaderboard"])
        assert board["leaderboard"][0]["price"] == "61.00"
        visitor.send({"type": "bid", "offer_id": offer_id, "price": "70"})
        refused = replies(visitor, 1)[0]
    assert (refused["type"], refused["code"], refused["detail"]) == (
        "rejected", anonymous["code"], anonymous["detail"],
    )  # fmt: skip
    assert anonymous["code"] == "unauthenticated"
    board = api.get(f"/api/bidding/sessions/{offer_id}/leaderboard").json()
    assert [line["price"] for line in board] == ["61.00"]
    api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin)


def test_a_flash_sales_stock_is_shared_by_every_poll_for_a_second(api, admin) -> None:
    event, offer_id = open_flash_sale(api, admin, stock=5)
    path = f"/api/purchase/events/{event['id']}/stock"
    buyer = api.token(api.register())
    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:  # 100 viewers polling at once, some signed in
        answers = list(pool.map(lambda n: api.get(path, buyer if n % 2 else None), range(100)))
    took = time.monotonic() - started
    assert took < 1.0 and all(a.status_code == 200 for a in answers)
    statuses = [a.headers.get("x-cache-status") for a in answers]
    asked = [s for s in statuses if s not in ("HIT", "UPDATING", "STALE")]  # purchase answered
    assert len(asked) <= 2, statuses

    assert place_order(api, buyer, offer_id).status_code == 201
    sold = time.monotonic()
    poll(lambda: api.get(path).json()[0]["remaining"] == 4, timeout=3)
    assert time.monotonic() - sold < 1.5  # a second old at most, and the time to ask purchase
    api.post(f"/api/catalog/admin/events/{event['id']}/cancel", None, admin)
