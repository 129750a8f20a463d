"""Helpers shared by the integration and end-to-end tests."""

import asyncio
import ipaddress
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

SERVICES = ("auth", "catalog", "bidding", "purchase", "reviews")
PASSWORD = "correct horse battery staple"
ADMIN = ("admin", "test-root-passphrase-1")  # the test stack's first admin
_addresses = itertools.count(random.randrange(1, 2**18) * 64)


async def cancelled_after(seconds: float, work: Awaitable) -> None:
    """Start `work`, cancel it after `seconds` (its client going away), wait until it ends."""
    task = asyncio.ensure_future(work)
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def problem(response: httpx.Response) -> dict:
    """The problem+json body of an error response, checked for the fields every error has."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == response.status_code
    return body


class Inbox:
    """The Mailpit inbox, read through its API as a user reads their mail."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=5)

    def messages(self, to: str) -> list[dict]:
        found = self.http.get("/api/v1/search", params={"query": f'to:"{to}"'}).json()
        return found["messages"]

    def wait_for(self, to: str, subject: str, count: int = 1, timeout: float = 15) -> str:
        """The text of the newest message to `to` whose subject contains `subject`."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [m for m in self.messages(to) if subject in m["Subject"]]
            if len(matching) >= count:
                newest = max(matching, key=lambda m: m["Created"])
                return self.http.get(f"/api/v1/message/{newest['ID']}").json()["Text"]
            assert time.monotonic() < deadline, f"no email '{subject}' to {to} in {timeout}s"
            time.sleep(0.1)


class Api:
    """A client of the platform through the gateway. Each request comes from a fresh address,
    as if from many users, so that the gateway's per-address limits stay out of the way of
    tests about something else (the rate-limit tests use a fixed address of their own)."""

    def __init__(self, gateway: str, inbox: Inbox) -> None:
        self.http = httpx.Client(base_url=gateway, timeout=10)
        self.inbox = inbox

    def request(self, method: str, path: str, token: str | None = None, **kwargs) -> httpx.Response:
        headers = {"X-Forwarded-For": client_address(), **kwargs.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs) -> httpx.Response:
        return self.request("GET", path, token, **kwargs)

    def post(self, path: str, json=None, token: str | None = None, **kwargs) -> httpx.Response:
        return self.request("POST", path, token, json=json, **kwargs)

    def patch(self, path: str, json=None, token: str | None = None) -> httpx.Response:
        return self.request("PATCH", path, token, json=json)

    def put(self, path: str, json=None, token: str | None = None) -> httpx.Response:
        return self.request("PUT", path, token, json=json)

    def register(self, verified: bool = True, password: str = PASSWORD, **fields) -> "Account":
        name = f"u{uuid.uuid4().hex[:12]}"
        body = {"email": f"{name}@example.com", "username": name, "password": password, **fields}
        response = self.post("/api/auth/register", body)
        assert response.status_code == 201, response.text
        account = Account(
            email=body["email"],
            username=body["username"],
            password=password,
            id=response.json()["id"],
        )
        if verified:
            self.verify(account)
        return account

    def email_code(self, account: "Account") -> str:
        text = self.inbox.wait_for(account.email, "Your Flashbid code")
        return re.search(r"\b(\d{6})\b", text).group(1)

    def verify(self, account: "Account") -> None:
        response = self.post(
            "/api/auth/verify-email", {"email": account.email, "code": self.email_code(account)}
        )
        assert response.status_code == 204, response.text

    def login(self, account: "Account", password: str | None = None) -> dict:
        response = self.post(
            "/api/auth/login", {"login": account.username, "password": password or account.password}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def token(self, account: "Account") -> str:
        return self.login(account)["access_token"]

    def admin_token(self) -> str:
        """The test stack's first admin (a fresh token: the tests outlive none)."""
        response = self.post("/api/auth/login", {"login": ADMIN[0], "password": ADMIN[1]})
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def delete(self, path: str, token: str | None = None) -> httpx.Response:
        return self.request("DELETE", path, token)

    def create_item(self, admin: str, **fields) -> dict:
        body = {"name": f"Item {uuid.uuid4().hex[:8]}", "category": "test", **fields}
        response = self.post("/api/catalog/admin/items", body, admin)
        assert response.status_code == 201, response.text
        return response.json()

    def create_event(self, admin: str, kind: str = "flash_sale", publish: bool = True, **fields):
        """A new event of `kind` on a new item, published unless told otherwise."""
        item = self.create_item(admin)
        response = self.post(
            "/api/catalog/admin/events", event_body(kind, item["id"], **fields), admin
        )
        assert response.status_code == 201, response.text
        event = response.json()
        if publish:
            response = self.post(f"/api/catalog/admin/events/{event['id']}/publish", None, admin)
            assert response.status_code == 200, response.text
            event = response.json()
        return event


@dataclass
class Account:
    email: str
    username: str
    password: str
    id: str


def client_address() -> str:
    """A fresh address in 10.0.0.0/8: the test gateway believes X-Forwarded-For from loopback."""
    return str(ipaddress.IPv4Address("10.0.0.0") + next(_addresses) % 2**24)


def event_body(kind: str, item_id: str, starts_in: float = 3600, lasts: float = 3600, **fields):
    """A valid event of `kind` offering `item_id`, starting `starts_in` seconds from now."""
    now = datetime.now(UTC)
    body = {
        "kind": kind,
        "title": f"Test {kind} {uuid.uuid4().hex[:8]}",
        "description": "Created by a test.",
        "currency": "EUR",
        "starts_at": (now + timedelta(seconds=starts_in)).isoformat(),
        "ends_at": (now + timedelta(seconds=starts_in + lasts)).isoformat(),
    }
    if kind == "flash_sale":
        body["offers"] = [{"item_id": item_id, "price": "19.99", "stock": 10, "per_user_limit": 2}]
    elif kind == "auction":
        body["offers"] = [{"item_id": item_id, "starting_price": "100.00", "increment": "5.00"}]
    else:
        body["offers"] = [{"item_id": item_id, "upset_price": "50.00", "inventory": 3}]
        body["scoring"] = {"formula": "weight", "alpha": 1.0, "beta": 10.0, "gamma": 1.0}
    return {**body, **fields}


# ------------------------------------------------------------------ reviews (added for them)


def poll(check, timeout: float = 10, every: float = 0.05):
    """The first truthy value of `check()`, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(every)
    return value


def open_event(api: Api, admin: str, kind: str, offers: list | None = None) -> dict:
    """A live event of `kind` (its `offers` replaced if given) that purchase or bidding holds
    in its latest version."""
    event = api.create_event(admin, kind, starts_in=3600)
    path = f"/api/catalog/admin/events/{event['id']}"
    if offers is not None:
        assert api.patch(path, {"offers": offers}, admin).status_code == 200
    opened = api.post(f"{path}/open", None, admin)
    assert opened.status_code == 200, opened.text
    poll(lambda: api.get(path, admin).json()["synced_version"] == opened.json()["version"])
    return opened.json()


def open_flash_sale(api: Api, admin: str, stock: int = 3, limit: int = 2) -> tuple[dict, str]:
    """A live flash sale of one offer at 25.00, and the offer's id."""
    item = api.create_item(admin)
    offer = {"item_id": item["id"], "price": "25.00", "stock": stock, "per_user_limit": limit}
    event = open_event(api, admin, "flash_sale", [offer])
    return event, event["offers"][0]["id"]


def place_order(api: Api, token: str | None, offer_id: str, quantity: int = 1, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    body = {"offer_id": offer_id, "quantity": quantity}
    return api.post("/api/purchase/orders", body, token, headers=headers)


def buy_item(api: Api, admin: str, buyer: str) -> str:
    """The id of an item `buyer` holds a confirmed order of, bought in a live flash sale."""
    event, offer_id = open_flash_sale(api, admin)
    order = place_order(api, buyer, offer_id)
    assert order.status_code == 201, order.text
    confirmed = api.post(f"/api/purchase/orders/{order.json()['id']}/confirm", None, buyer)
    assert confirmed.json()["status"] == "confirmed", confirmed.text
    return event["offers"][0]["item_id"]


# ------------------------------------------------------------------ live bidding (WebSocket)


class Watcher:
    """One browser's socket on an event; without a token, an anonymous visitor's."""

    def __init__(self, gateway: str, event_id: str, token: str | None = None, **headers) -> None:
        query = f"?token={token}" if token else ""
        url = f"{gateway.replace('http', 'ws', 1)}/ws/bidding/events/{event_id}{query}"
        headers = {"X-Forwarded-For": client_address(), **headers}
        self.connection = connect(url, additional_headers=headers)
        self.seen: list[dict] = []

    def __enter__(self) -> "Watcher":
        self.socket = self.connection.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.connection.__exit__(*exc)

    def wait_for(self, check, timeout: float = 10) -> dict:
        """The first message (seen before or arriving now) for which `check` is true. Each
        arrives as a text frame, as a browser's `message.data` string."""
        deadline = time.monotonic() + timeout
        for message in self.seen:
            if check(message):
                return message
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no such message; last ones: {self.seen[-3:]}"
            frame = self.socket.recv(timeout=left)
            assert isinstance(frame, str), f"a binary frame: {frame[:80]!r}"
            message = json.loads(frame)
            self.seen.append(message)
            if check(message):
                return message

    def send(self, message: dict) -> None:
        self.socket.send(json.dumps(message))

    def close_code(self, timeout: float = 10) -> int:
        """The code the server closes the socket with (the messages before it are kept)."""
        try:
            self.wait_for(lambda _: False, timeout)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code
        raise AssertionError("still open")


async def signing_key(profile):
    """Auth's current signing key, read from the test stack's database (tokens made to measure:
    expired, forged, short-lived)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from flashbid_auth.store import ensure_key

    engine = create_async_engine(profile.database_url("flashbid_auth"))
    async with engine.begin() as connection:
        key = await ensure_key(connection, "dev-only-key-encryption-secret")
    await engine.dispose()
    return key
