"""Every failure reaches the client as problem+json with a stable code, never with internals."""

from typing import Annotated

import msgspec
import redis.exceptions
from litestar import Litestar, get, post
from litestar.testing import TestClient

from flashbid_shared.errors import DomainError, Problem, exception_handlers
from flashbid_shared.tokens import admin_required


class BidTooLow(DomainError):
    pass


class Bid(msgspec.Struct, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(gt=0)]


@post("/bids")
async def place(data: Bid) -> None:
    raise BidTooLow("The bid is below the minimum.", min_next_bid="12.50")


@get("/boom")
async def boom() -> None:
    raise RuntimeError("password=hunter2 at db.internal:5432")


@get("/away")
async def away() -> None:
    raise redis.exceptions.ConnectionError("Connection closed by server at 10.0.0.7:6379")


@get("/problem")
async def problem() -> None:
    raise Problem(409, "event_not_live", "The event has ended.", retry_after=3)


@get("/admin", guards=[admin_required])
async def admin() -> None:
    pass


def client() -> TestClient:
    app = Litestar(
        [place, boom, away, problem, admin],
        exception_handlers=exception_handlers({BidTooLow: (409, "bid_too_low")}),
    )
    return TestClient(app)


def test_a_domain_error_maps_to_its_status_code_and_fields() -> None:
    with client() as c:
        response = c.post("/bids", json={"amount": 5})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "bid_too_low"
    assert body["min_next_bid"] == "12.50"
    assert body["status"] == 409 and body["detail"] and body["type"] and body["title"]


def test_invalid_input_is_422_with_the_field_named() -> None:
    with client() as c:
        for bad in ({"amount": 0}, {"amount": 5, "role": "admin"}, {}):
            response = c.post("/bids", json=bad)
            assert response.status_code == 422, bad
            assert response.json()["code"] == "invalid_input"
        response = c.post(
            "/bids", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code in (400, 422)


def test_an_unexpected_error_is_a_500_without_internals() -> None:
    with client() as c:
        response = c.get("/boom")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "hunter2" not in response.text and "RuntimeError" not in response.text


def test_a_store_away_is_a_503_to_try_again_shortly() -> None:
    with client() as c:
        response = c.get("/away")
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert response.headers["retry-after"] == "1"
    assert "10.0.0.7" not in response.text


def test_problems_and_framework_errors_keep_the_same_shape() -> None:
    with client() as c:
        assert c.get("/problem").json() | {"detail": ""} == {
            "type": "https://flashbid.dev/problems/event_not_live",
            "title": "Event not live",
            "status": 409,
            "detail": "",
            "code": "event_not_live",
            "retry_after": 3,
        }
        missing = c.get("/nowhere")
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        anonymous = c.get("/admin")
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
        assert anonymous.headers["www-authenticate"] == "Bearer"
