"""A buyer's journey through the gateway, on a real flash sale created in catalog."""

import uuid

import pytest

from tests_support import open_flash_sale, place_order, poll, problem


@pytest.fixture(scope="module")
def admin(api) -> str:
    return api.admin_token()


def test_a_buyer_reserves_confirms_and_sees_only_their_orders(api, admin) -> None:
    event, offer_id = open_flash_sale(api, admin)
    buyer = api.token(api.register())
    key = str(uuid.uuid4())
    created = place_order(api, buyer, offer_id, 2, key)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["unit_price"], body["total"]) == ("reserved", "25.00", "50.00")

    retry = place_order(api, buyer, offer_id, 2, key)  # the response was lost; the app retries
    assert (retry.status_code, retry.json()["id"]) == (201, body["id"])
    assert retry.headers["idempotent-replayed"] == "true"
    other_body = place_order(api, buyer, offer_id, 1, key)
    assert (other_body.status_code, problem(other_body)["code"]) == (422, "idempotency_mismatch")
    over = place_order(api, buyer, offer_id, 1)
    assert (over.status_code, problem(over)["code"]) == (409, "limit_reached")

    confirmed = api.post(f"/api/purchase/orders/{body['id']}/confirm", None, buyer)
    assert confirmed.json()["status"] == "confirmed"
    mine = api.get("/api/purchase/orders", buyer).json()
    assert [o["id"] for o in mine["items"]] == [body["id"]]

    stranger = api.token(api.register())
    assert api.get(f"/api/purchase/orders/{body['id']}", stranger).status_code == 404
    stolen = api.post(f"/api/purchase/orders/{body['id']}/cancel", None, stranger)
    assert (stolen.status_code, problem(stolen)["code"]) == (404, "order_not_found")
    assert api.get("/api/purchase/orders", stranger).json()["total"] == 0

    stats = api.get(f"/api/purchase/admin/stats?event_id={event['id']}", admin).json()
    assert (stats["stock"], stats["remaining"], stats["confirmed"]) == (3, 1, 2)
    assert stats["revenue"] == "50.00"


def test_the_last_unit_sells_out_the_event_and_a_cancellation_reopens_it(api, admin) -> None:
    event, offer_id = open_flash_sale(api, admin, stock=1, limit=1)
    first, second = api.token(api.register()), api.token(api.register())
    won = place_order(api, first, offer_id)
    assert won.status_code == 201
    lost = place_order(api, second, offer_id)
    assert (lost.status_code, problem(lost)["code"]) == (409, "sold_out")
    stock_path = f"/api/purchase/events/{event['id']}/stock"
    assert api.get(stock_path).json()[0]["remaining"] == 0

    admin_path = f"/api/catalog/admin/events/{event['id']}"
    poll(lambda: api.get(admin_path, admin).json()["event"]["status"] == "sold_out")
    cancelled = api.post(f"/api/purchase/orders/{won.json()['id']}/cancel", None, first)
    assert cancelled.json()["status"] == "cancelled"
    poll(lambda: api.get(admin_path, admin).json()["event"]["status"] == "live")
    assert place_order(api, second, offer_id).status_code == 201


def test_a_deactivated_customer_cannot_buy_with_a_token_they_still_hold(api, admin) -> None:
    event, offer_id = open_flash_sale(api, admin, stock=2)
    account = api.register()
    token = api.token(account)
    deactivated = api.patch(f"/api/auth/admin/users/{account.id}", {"is_active": False}, admin)
    assert deactivated.status_code == 200, deactivated.text
    refused = place_order(api, token, offer_id)
    assert (refused.status_code, problem(refused)["code"]) == (403, "not_allowed")
    stats = api.get(f"/api/purchase/admin/stats?event_id={event['id']}", admin).json()
    assert (stats["remaining"], stats["reserved"]) == (2, 0)  # the unit went back at once
    assert api.get(f"/api/purchase/events/{event['id']}/stock").json()[0]["remaining"] == 2


def test_a_customer_deactivated_after_buying_is_refused_within_seconds(api, admin) -> None:
    """Purchase knew them as active (their first order): the deactivation reaches it through
    auth's changes feed within seconds, not when its cached copy of the buyer expires."""
    _, offer_id = open_flash_sale(api, admin, stock=60, limit=60)
    account = api.register()
    token = api.token(account)
    assert place_order(api, token, offer_id).status_code == 201
    deactivated = api.patch(f"/api/auth/admin/users/{account.id}", {"is_active": False}, admin)
    assert deactivated.status_code == 200, deactivated.text
    again = poll(
        lambda: (r := place_order(api, token, offer_id)).status_code != 201 and r,
        timeout=5,
        every=0.1,
    )
    assert (again.status_code, problem(again)["code"]) == (403, "not_allowed")


def test_refusals_before_the_sale_and_for_unverified_or_anonymous_buyers(api, admin) -> None:
    event = api.create_event(admin, "flash_sale", starts_in=3600)
    stock_path = f"/api/purchase/events/{event['id']}/stock"
    [line] = poll(lambda: (r := api.get(stock_path)).status_code == 200 and r.json())
    buyer = api.token(api.register())
    early = place_order(api, buyer, line["offer_id"])
    assert (early.status_code, problem(early)["code"]) == (409, "event_not_live")

    unverified = api.token(api.register(verified=False))
    refused = place_order(api, unverified, line["offer_id"])
    assert (refused.status_code, problem(refused)["code"]) == (403, "not_allowed")
    anonymous = place_order(api, None, line["offer_id"])
    assert (anonymous.status_code, problem(anonymous)["code"]) == (401, "unauthenticated")
    unknown = place_order(api, buyer, str(uuid.uuid4()))
    assert (unknown.status_code, problem(unknown)["code"]) == (404, "offer_not_found")
    for bad in ({"offer_id": "nope"}, {"offer_id": line["offer_id"], "quantity": 0}, {}):
        invalid = api.post("/api/purchase/orders", bad, buyer)
        assert (invalid.status_code, problem(invalid)["code"]) == (422, "invalid_input")
    customer_stats = api.get(f"/api/purchase/admin/stats?event_id={event['id']}", buyer)
    assert customer_stats.status_code == 403
