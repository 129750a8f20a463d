"""Whatever a client sends, the answer is a problem with a stable code, never a 500: text never
holds control characters, money is a string of ASCII digits, counts are integers, a body that
is not JSON is a 400, and the gateway's own refusals are problems too."""

import re
import socket
import uuid
from functools import cache

import httpx
import pytest

from tests_support import SERVICES, event_body, problem

pytestmark = pytest.mark.stack

NUL = "a\x00b"


@pytest.fixture(scope="module")
def admin(api) -> str:
    return api.admin_token()


@pytest.fixture(scope="module")
def customer(api) -> str:
    return api.token(api.register())


@pytest.fixture(scope="module")
def service(api) -> str:
    grant = api.post(
        "/api/auth/token",
        data={"grant_type": "client_credentials", "client_id": "bidding",
              "client_secret": "dev-bidding-secret"},
    )  # fmt: skip
    return grant.json()["access_token"]


@pytest.fixture(scope="module")
def draft(api, admin) -> dict:
    return api.create_event(admin, "flash_sale", publish=False)


def code_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, problem(response)["code"]


def refused_field(response: httpx.Response) -> str:
    """The field a 422 names (its first error's key), after checking it is one."""
    assert code_of(response) == (422, "invalid_input"), response.text
    return response.json()["errors"][0]["key"]


# ------------------------------------------------------------------------------ text

AUTH_BODIES = [
    ("/api/auth/register", {"email": f"{NUL}@example.com", "username": "ab_c", "password": "x"}),
    ("/api/auth/register", {"email": "a@example.com", "username": "abc\n", "password": "x"}),
    ("/api/auth/register", {"email": "a@b.io", "username": "abc", "password": "x",
                            "display_name": NUL}),
    ("/api/auth/login", {"login": NUL, "password": "x"}),
    ("/api/auth/password/forgot", {"email": f"{NUL}@example.com"}),
    ("/api/auth/verify-email", {"email": f"{NUL}@example.com", "code": "123456"}),
    ("/api/auth/verify-email/resend", {"email": f"a@example.co{NUL}"}),
    ("/api/auth/refresh", {"refresh_token": NUL}),
    ("/api/auth/logout", {"refresh_token": NUL}),
    ("/api/auth/password/reset", {"token": NUL, "new_password": "a long new passphrase"}),
    ("/api/auth/login/mfa", {"mfa_token": NUL, "code": "123456"}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), AUTH_BODIES)
def test_control_characters_in_auth_s_fields_are_refused(api, path, body) -> None:
    refused = api.post(path, body)
    assert refused_field(refused) in body, refused.text


def test_control_characters_in_the_signed_in_user_s_and_admin_s_text_are_refused(
    api, admin, customer, draft
) -> None:
    item = api.create_item(admin)["id"]
    event = f"/api/catalog/admin/events/{draft['id']}"
    writes = [
        ("PATCH", "/api/auth/me", customer, {"display_name": NUL}),
        ("PATCH", "/api/auth/me", customer, {"display_name": "Ada\x1b[31m"}),
        ("POST", "/api/catalog/admin/items", admin, {"name": NUL, "category": "test"}),
        ("POST", "/api/catalog/admin/items", admin,
         {"name": "Lamp", "category": "test", "description": NUL}),
        ("POST", "/api/catalog/admin/items", admin, {"name": "Lamp", "category": f"te{NUL}"}),
        ("POST", "/api/catalog/admin/items", admin,
         {"name": "Lamp", "category": "test", "image_url": f"https://x.io/{NUL}"}),
        ("PATCH", f"/api/catalog/admin/items/{item}", admin, {"name": NUL}),
        ("PATCH", f"/api/catalog/admin/items/{item}", admin, {"description": NUL}),
        ("POST", "/api/catalog/admin/events", admin, {**creatable(draft), "title": NUL}),
        ("POST", "/api/catalog/admin/events", admin, {**creatable(draft), "description": NUL}),
        ("PATCH", event, admin, {"title": NUL}),
        ("PATCH", event, admin, {"description": NUL}),
    ]  # fmt: skip
    for method, path, token, body in writes:
        refused = api.request(method, path, token, json=body)
        assert refused_field(refused) in body, (path, body, refused.text)
    assert api.get(f"/api/catalog/items/{item}").json()["name"].startswith("Item ")


def creatable(event: dict) -> dict:
    """The body that creates an event like `event`."""
    offers = [{k: o[k] for k in ("item_id", "price", "stock", "per_user_limit")}
              for o in event["offers"]]  # fmt: skip
    fields = ("kind", "title", "description", "currency", "starts_at", "ends_at")
    return {**{k: event[k] for k in fields}, "offers": offers}


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/auth/admin/users", "search"),
        ("/api/catalog/items", "search"),
        ("/api/catalog/items", "category"),
        ("/api/catalog/events", "search"),
        ("/api/catalog/admin/events", "search"),
    ],
)
def test_control_characters_in_searches_are_refused(api, admin, path, param) -> None:
    for value in (NUL, "lamp\x1f", "lamp\n"):
        assert refused_field(api.get(path, admin, params={param: value})) == param
    assert api.get(path, admin, params={param: "lamp  «ünï»"}).status_code == 200


# ----------------------------------------------------------------------------- money

NOT_MONEY = [19.99, 20, "1e1", "\uff11\uff19.99", "NaN", "Infinity", "-5", " 19.99", "19,99"]


@pytest.mark.parametrize("price", NOT_MONEY)
def test_a_price_is_a_string_of_ascii_digits(api, admin, draft, price) -> None:
    body = creatable(draft)
    body["offers"][0]["price"] = price
    assert refused_field(api.post("/api/catalog/admin/events", body, admin)) == "offers[0].price"
    patch = {"offers": body["offers"]}
    path = f"/api/catalog/admin/events/{draft['id']}"
    assert code_of(api.patch(path, patch, admin)) == (422, "invalid_event")  # checked merged
    assert api.get(path, admin).json()["event"]["offers"][0]["price"] == "19.99"


@pytest.mark.parametrize("increment", ["1e1", "\uff15", "NaN", "5 EUR", 5])
def test_an_increment_is_an_amount_or_the_ladder(api, admin, increment) -> None:
    item = api.create_item(admin)["id"]
    body = event_body("auction", item)
    body["offers"][0]["increment"] = increment
    assert refused_field(api.post("/api/catalog/admin/events", body, admin)).startswith("offers")


@pytest.mark.parametrize("value", ["1e999999", "1e1", "NaN", "Infinity", "\uff11", "-1", "1.2.3"])
def test_price_filters_are_amounts(api, value) -> None:
    for param in ("price_min", "price_max"):
        assert refused_field(api.get("/api/catalog/events", params={param: value})) == param
    found = api.get("/api/catalog/events", params={"price_min": "0", "price_max": "99999.99"})
    assert found.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 120},
        {"amount": 120.5},
        {"amount": "1e3"},
        {"amount": "\uff11\uff12\uff10"},
        {"amount": "NaN"},
        {"amount": "120.00", "max_amount": 200},
        {"amount": "120.00", "max_amount": "110.00"},  # a maximum below the bid
    ],
)
def test_a_lot_bid_is_an_amount_and_its_maximum_not_below_it(api, customer, body) -> None:
    lot = str(uuid.uuid4())  # what is not a bid is refused before the lot is looked for
    refused = api.post(f"/api/bidding/lots/{lot}/bids", body, customer)
    assert refused_field(refused) in ("amount", "max_amount", "data"), refused.text


@pytest.mark.parametrize("price", [60, 60.0, "6e1", "\uff16\uff10", "Infinity"])
def test_a_ranked_bid_is_an_amount(api, customer, price) -> None:
    offer = str(uuid.uuid4())
    refused = api.post(f"/api/bidding/sessions/{offer}/bids", {"price": price}, customer)
    assert refused_field(refused) == "price"


@pytest.mark.parametrize("quantity", ["1", 1.0, True])
def test_a_quantity_is_an_integer(api, customer, quantity) -> None:
    body = {"offer_id": str(uuid.uuid4()), "quantity": quantity}
    assert refused_field(api.post("/api/purchase/orders", body, customer)) == "quantity"


@pytest.mark.parametrize("rating", ["5", 5.0, 4.5, True])
def test_a_rating_is_an_integer(api, admin, customer, rating) -> None:
    item = api.create_item(admin)["id"]
    body = {"rating": rating, "comment": "Fine."}
    assert refused_field(api.put(f"/api/reviews/items/{item}/review", body, customer)) == "rating"


def test_an_item_patch_must_change_something(api, admin, draft) -> None:
    item = api.create_item(admin)
    for path in (
        f"/api/catalog/admin/items/{item['id']}",
        f"/api/catalog/admin/events/{draft['id']}",
    ):
        empty = api.patch(path, {}, admin)
        assert code_of(empty) == (422, "invalid_input"), empty.text
        assert "Nothing to change" in empty.text
    assert api.get(f"/api/catalog/items/{item['id']}").json() == item


# --------------------------------------------------------------- bodies that are not JSON


def test_a_body_that_is_not_utf8_or_nests_too_deeply_is_a_400(api, admin, draft) -> None:
    headers = {"Content-Type": "application/json"}
    login = api.request("POST", "/api/auth/login", content=b'{"login": "a\xffb", "password": "x"}',
                        headers=headers)  # fmt: skip
    assert code_of(login) == (400, "malformed_json")
    deep = b'{"scoring": {"x": ' + b"[" * 2000 + b"]" * 2000 + b"}}"  # an Any, nested 2,000 deep
    patch = api.request("PATCH", f"/api/catalog/admin/events/{draft['id']}", admin,
                        content=deep, headers=headers)  # fmt: skip
    assert code_of(patch) == (400, "malformed_json")
    assert "nested too deeply" in problem(patch)["detail"]


BAD_BODIES = [
    b'{"\xff": 1}',
    b'"\xff\xfe"',
    b"[" * 2000 + b"]" * 2000,
    b'{"a": ' * 2000 + b"1" + b"}" * 2000,
    b'{"offers": [{"x": ' + b"[" * 2000 + b"]" * 2000 + b"}]}",
    b'{"a": "\\ud800"}',
    b'{"a": 1e999999, "b": NaN}',
    b'{"a": 1' + b"0" * 5000 + b"}",
    b"{",
    b"null",
    b"[]",
    b'"text"',
]


@cache
def routes(url: str, service: str) -> list[tuple[str, str, dict]]:
    """Every operation of a service's OpenAPI document: (method, path, operation)."""
    document = httpx.get(f"{url}/api/{service}/openapi.json").json()
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(uuid.uuid4()) if m[1].endswith("id") else "x", path)


def token_for(path: str, admin: str, service: str) -> str:
    return service if "/internal/" in path else admin


@pytest.mark.parametrize("name", SERVICES)
def test_no_body_gives_a_500_on_any_json_route(profile, admin, service, name) -> None:
    url = profile.url(name)  # straight to the service: internal routes too
    json_routes = [
        (method, path)
        for method, path, operation in routes(url, name)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert json_routes
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, path in json_routes:
            headers = {"Authorization": f"Bearer {token_for(path, admin, service)}",
                       "Content-Type": "application/json"}  # fmt: skip
            for body in BAD_BODIES:
                answer = client.request(method, concrete(path), content=body, headers=headers)
                assert answer.status_code in (400, 404, 422), (method, path, body[:40], answer.text)
                assert problem(answer)["code"] in (
                    "malformed_json", "invalid_input", "not_found"
                ), (method, path, answer.text)  # fmt: skip


BAD_QUERY_VALUES = [
    "\x00",
    "a\x1fb",
    "1e999999",
    "NaN",
    "-Infinity",
    "\uff11",
    "\ufffd",
    "x" * 5000,
]


@pytest.mark.parametrize("name", SERVICES)
def test_no_query_gives_a_500_on_any_route(profile, admin, service, name) -> None:
    url = profile.url(name)
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, path, operation in routes(url, name):
            queries = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            if method != "GET" or "{path}" in path:
                continue
            headers = {"Authorization": f"Bearer {token_for(path, admin, service)}"}
            for param in queries:
                for value in BAD_QUERY_VALUES:
                    answer = client.get(concrete(path), params={param: value}, headers=headers)
                    assert answer.status_code < 500, (path, param, value[:20], answer.text)
                    if answer.status_code >= 400:
                        problem(answer)


# ------------------------------------------------------------------------------ methods


@pytest.mark.parametrize("name", SERVICES)
def test_options_lists_every_method_of_a_path_as_a_405_does(profile, name) -> None:
    url = profile.url(name)
    methods: dict[str, set[str]] = {}
    for method, path, _ in routes(url, name):
        methods.setdefault(path, {"OPTIONS"}).add(method)
    with httpx.Client(base_url=url, timeout=10) as client:
        for path, expected in methods.items():
            target = concrete(path)
            allowed = client.options(target)
            assert allowed.status_code == 204, (path, allowed.text)
            assert set(allowed.headers["allow"].split(", ")) == expected, path
            other = next(m for m in ("PATCH", "PUT", "DELETE", "POST", "GET") if m not in expected)
            refused = client.request(other, target)
            assert code_of(refused) == (405, "method_not_allowed"), (path, other)
            assert set(refused.headers["allow"].split(", ")) == expected, path


# ------------------------------------------------------------------------------ gateway


def raw(profile, request: bytes) -> tuple[int, str, str]:
    """Send bytes nginx must refuse itself: (status, content type, body)."""
    with socket.create_connection(("127.0.0.1", profile.ports["gateway"]), timeout=5) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and b"}" in answer.split(b"\r\n\r\n", 1)[1]:
                break
    head, _, body = answer.decode("latin-1").partition("\r\n\r\n")
    status = int(head.split()[1])
    content_type = re.search(r"(?im)^content-type:\s*(\S+)", head)[1]
    return status, content_type, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /api/auth/%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (
            b"GET /api/auth/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n",
            400,
            "bad_request",
        ),
        (b"TRACE /api/auth/me HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"),
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "not_implemented",
        ),
        (b"GET /api/auth/me HTTP/2.7\r\nHost: x\r\n\r\n", 505, "version_not_supported"),
    ],
)
def test_what_the_gateway_refuses_itself_is_a_problem(profile, request_bytes, status, code):
    found, content_type, body = raw(profile, request_bytes)
    assert (found, content_type) == (status, "application/problem+json"), body
    assert (
        httpx.Response(status, content=body, headers={"content-type": content_type}).json()["code"]
        == code
    )


def test_the_gateway_s_own_refusals_carry_the_request_id(gateway) -> None:
    traced = gateway.request("TRACE", "/api/catalog/items", headers={"X-Request-ID": "trace-9"})
    assert code_of(traced) == (405, "method_not_allowed")
    assert traced.headers["x-request-id"] == "trace-9"
