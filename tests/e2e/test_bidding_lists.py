"""Bidding's lists keep the contract's shape: a bidder's events and wins are pages
(`{items, total, limit, offset}`), and an unknown session is absent from every route."""

import uuid

import pytest

from tests_support import open_event, poll, problem


@pytest.fixture(scope="module")
def admin(api) -> str:
    return api.admin_token()


def test_a_bidder_s_events_and_wins_are_pages(api, admin) -> None:
    bidder = api.token(api.register())
    starts = [3600, 7200, 5400]
    events = [api.create_event(admin, "auction", starts_in=s)["id"] for s in starts]
    for event_id in events:  # bidding learns of a published event from catalog's push
        poll(lambda e=event_id: api.post(f"/api/bidding/events/{e}/join", None, bidder).is_success)

    latest_first = [events[1], events[2], events[0]]
    first = api.get("/api/bidding/me/events", bidder, params={"limit": 2}).json()
    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert [e["id"] for e in first["items"]] == latest_first[:2]
    rest = api.get("/api/bidding/me/events", bidder, params={"limit": 2, "offset": 2}).json()
    assert [e["id"] for e in rest["items"]] == latest_first[2:] and rest["total"] == 3

    assert api.get("/api/bidding/me/won", bidder).json() == {
        "items": [], "total": 0, "limit": 20, "offset": 0,
    }  # fmt: skip
    for path in ("/api/bidding/me/events", "/api/bidding/me/won"):
        refused = api.get(path, bidder, params={"limit": 0})
        assert (refused.status_code, problem(refused)["code"]) == (422, "invalid_input")


def test_an_unknown_session_s_leaderboard_is_absent_as_its_standing_is(api, admin) -> None:
    bidder = api.token(api.register())
    unknown = str(uuid.uuid4())
    for path, token in (("leaderboard", None), ("me", bidder)):
        absent = api.get(f"/api/bidding/sessions/{unknown}/{path}", token)
        assert (absent.status_code, problem(absent)["code"]) == (404, "not_found"), path

    offer_id = open_event(api, admin, "ranked")["offers"][0]["id"]
    board = api.get(f"/api/bidding/sessions/{offer_id}/leaderboard")
    assert (board.status_code, board.json()) == (200, [])
    api.post(f"/api/bidding/sessions/{offer_id}/bids", {"price": "55"}, bidder)
    [line] = api.get(f"/api/bidding/sessions/{offer_id}/leaderboard").json()
    assert line["price"] == "55.00"
