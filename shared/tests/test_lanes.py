"""Lanes: a storm's plain requests are answered ahead of Litestar, exactly as the route would."""

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID, uuid4

import jwt
import msgspec
import pytest
import redis.exceptions
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from litestar import Litestar, Response, WebSocket, post, websocket
from litestar.datastructures import State
from litestar.testing import TestClient

from flashbid_shared.app import service_app
from flashbid_shared.errors import DomainError
from flashbid_shared.lanes import Answer, Lane, respond, server_send
from flashbid_shared.params import IdempotencyKey
from flashbid_shared.settings import ServiceSettings
from flashbid_shared.tokens import Principal, user_required

KEY = Ed25519PrivateKey.generate()
JWK = {**OKPAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "alg": "EdDSA"}
routed: list[int] = []  # the orders the Litestar route answered


class SoldOut(DomainError):
    pass


class Order(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    quantity: Annotated[int, msgspec.Meta(ge=1, le=10)]


async def place(
    state: State, principal: Principal, data: Order, offer_id: UUID, idempotency_key: str | None
) -> Answer:
    if data.quantity == 9:
        raise SoldOut("Nothing left.", remaining=0)
    if data.quantity == 8:
        raise redis.exceptions.ConnectionError("Connection closed by server at 10.0.0.7:6379")
    order = {"offer_id": offer_id, "buyer": principal.subject, "price": Decimal("9.90")}
    return order, 201, {"Idempotent-Replayed": "true"} if idempotency_key else {}


@post("/offers/{offer_id:uuid}/orders", status_code=201, guards=[user_required])
async def create_order(
    state: State, principal: Principal, data: Order, offer_id: UUID, key: IdempotencyKey
) -> Response[Any]:
    routed.append(data.quantity)
    return respond(await place(state, principal, data, offer_id, key))


@websocket("/ws/demo")
async def pushes(socket: WebSocket) -> None:
    await socket.accept()
    send = server_send(socket)
    kept = "the server's own send" if send is not socket.send else "Litestar's"
    await send({"type": "websocket.send", "text": kept, "bytes": None})
    await socket.close()


def demo_app(lanes: list[Lane]) -> Litestar:
    async def jwks(_: Litestar) -> dict[str, Any]:
        return {"keys": [JWK]}

    errors = {SoldOut: (409, "sold_out")}
    return service_app(
        "demo",
        ServiceSettings(),
        routes=[create_order],
        handlers=[pushes],
        errors=errors,
        lanes=lanes,
        jwks=jwks,
    )


def token(role: str = "customer", expires_in: int = 900) -> str:
    now = int(time.time())
    claims = {"iss": "flashbid-auth", "aud": "flashbid", "sub": str(uuid4()), "role": role,
              "iat": now, "exp": now + expires_in, "jti": "j1"}  # fmt: skip
    return jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": "k1"})


CUSTOMER = token()
PATH = f"/api/demo/offers/{uuid4()}/orders"
PLAIN = {
    "an order": (PATH, {"authorization": f"Bearer {CUSTOMER}"}, b'{"quantity": 2}'),
    "a retry": (PATH, {"authorization": f"Bearer {CUSTOMER}", "idempotency-key": "k-1"},
                b'{"quantity": 1}'),
    "a refusal": (PATH, {"authorization": f"Bearer {CUSTOMER}"}, b'{"quantity": 9}'),
    "Redis away": (PATH, {"authorization": f"Bearer {CUSTOMER}"}, b'{"quantity": 8}'),
}  # fmt: skip
OTHERS = {
    "no token": (PATH, {}, b'{"quantity": 1}'),
    "an expired token": (PATH, {"authorization": f"Bearer {token(expires_in=-60)}"},
                         b'{"quantity": 1}'),
    "a forged token": (PATH, {"authorization": f"Bearer {CUSTOMER[:-4]}AAAA"}, b'{"quantity": 1}'),
    "a service's token": (PATH, {"authorization": f"Bearer {token('service')}"},
                          b'{"quantity": 1}'),
    "a lowercase scheme": (PATH, {"authorization": f"bearer {CUSTOMER}"}, b'{"quantity": 3}'),
    "a malformed body": (PATH, {"authorization": f"Bearer {CUSTOMER}"}, b'{"quantity": '),
    "an unknown field": (PATH, {"authorization": f"Bearer {CUSTOMER}"}, b'{"quantity": 1, "x": 1}'),
    "too many": (PATH, {"authorization": f"Bearer {CUSTOMER}"}, b'{"quantity": 11}'),
    "a bad key": (PATH, {"authorization": f"Bearer {CUSTOMER}", "idempotency-key": "a b"},
                  b'{"quantity": 1}'),
    "a bad offer id": ("/api/demo/offers/nope/orders", {"authorization": f"Bearer {CUSTOMER}"},
                       b'{"quantity": 1}'),
    "a form's content type": (PATH, {"authorization": f"Bearer {CUSTOMER}",
                                     "content-type": "application/x-www-form-urlencoded"},
                              b'{"quantity": 1}'),
    "a large body": (PATH, {"authorization": f"Bearer {CUSTOMER}"},
                     b'{"quantity": 1, "note": "' + b"x" * 70_000 + b'"}'),
}  # fmt: skip


LANE = Lane("POST", "/offers/{offer_id:uuid}/orders", Order, place, idempotent=True)


@pytest.fixture(scope="module")
def lane() -> Iterator[TestClient]:
    with TestClient(demo_app([LANE])) as client:
        yield client


@pytest.fixture(scope="module")
def route() -> Iterator[TestClient]:
    with TestClient(demo_app([])) as client:
        yield client


def answers(client: TestClient, requests: dict[str, tuple]) -> dict[str, tuple]:
    found = {}
    for name, (path, headers, body) in requests.items():
        response = client.post(path, headers=headers, content=body)
        found[name] = (response.status_code, dict(response.headers), response.content)
    return found


def test_the_lane_answers_plain_requests_as_the_route_does_without_the_route(
    lane: TestClient, route: TestClient
) -> None:
    routed.clear()
    through_lane = answers(lane, PLAIN)
    assert routed == []
    assert through_lane == answers(route, PLAIN)
    assert routed == [2, 1, 9, 8]
    assert [status for status, _, _ in through_lane.values()] == [201, 201, 409, 503]
    refusal = msgspec.json.decode(through_lane["a refusal"][2])
    assert (refusal["code"], refusal["remaining"]) == ("sold_out", 0)
    assert b"10.0.0.7" not in through_lane["Redis away"][2]


@pytest.mark.parametrize("name", OTHERS)
def test_what_the_lane_cannot_take_is_answered_by_the_route(
    name: str, lane: TestClient, route: TestClient
) -> None:
    through_lane = answers(lane, {name: OTHERS[name]})
    assert through_lane == answers(route, {name: OTHERS[name]})
    assert through_lane[name][0] in (201, 400, 401, 403, 404, 422)


def test_a_websocket_pushes_with_the_servers_own_send_in_front_of_an_app_with_lanes(
    lane: TestClient, route: TestClient
) -> None:
    with lane.websocket_connect("/ws/demo") as socket:
        assert socket.receive_text() == "the server's own send"
    with route.websocket_connect("/ws/demo") as socket:  # no lanes: Litestar's send still works
        assert socket.receive_text() == "Litestar's"
