"""The reviews app in-process, with the test stack's auth, catalog, purchase and FerretDB, when
MongoDB or purchase is away and then comes back."""

import asyncio
import contextlib
import socket
import threading
import time
import uuid

import pytest
from litestar.testing import AsyncTestClient
from pymongo import AsyncMongoClient

from flashbid_reviews.app import create_app
from flashbid_reviews.settings import Settings
from tests_support import buy_item, problem

pytestmark = pytest.mark.stack


class Door:
    """A port where nothing answers until `open()`; then it forwards to `target_port`: a peer
    that is down at first and comes back later at the same address. Threads, not asyncio: the
    test client runs the app on a loop of its own and blocks ours while it does."""

    def __init__(self, target_port: int) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.target_port = target_port
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []

    def open(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.listener.settimeout(0.1)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for connection in self.sockets:
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while listener.fileno() != -1:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_copy, args=(source, sink), daemon=True).start()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


async def until(check, within: float = 20.0):
    """The first truthy value of `await check()`, polled until `within` seconds have passed."""
    async with asyncio.timeout(within):
        while True:
            if value := await check():
                return value
            await asyncio.sleep(0.1)


def settings_for(profile, database: str, **fields) -> Settings:
    defaults = {
        "mongo_url": f"mongodb://127.0.0.1:{profile.ports['ferretdb']}/",
        "auth_url": profile.url("auth"),
        "catalog_url": profile.url("catalog"),
        "purchase_url": profile.url("purchase"),
        "repair_interval": 0.1,
        "log_level": "WARNING",
    }
    return Settings(mongo_database=database, **{**defaults, **fields})


@contextlib.asynccontextmanager
async def dropped_after(profile, database: str):
    yield
    client: AsyncMongoClient = AsyncMongoClient(f"mongodb://127.0.0.1:{profile.ports['ferretdb']}/")
    await client.drop_database(database)
    await client.close()


def test_without_mongodb_reviews_answers_503_and_recovers_when_it_returns(profile, api) -> None:
    item = api.create_item(api.admin_token())["id"]
    writer = {"Authorization": f"Bearer {api.token(api.register())}"}
    database = f"scratch_{uuid.uuid4().hex[:12]}"

    async def run() -> None:
        mongo = Door(profile.ports["ferretdb"])
        settings = settings_for(profile, database, mongo_url=f"mongodb://127.0.0.1:{mongo.port}/")
        async with dropped_after(profile, database), AsyncTestClient(create_app(settings)) as app:
            started = time.monotonic()
            listed = await app.get(f"/api/reviews/items/{item}/reviews")
            assert (listed.status_code, problem(listed)["code"]) == (503, "store_unavailable")
            assert listed.headers["retry-after"] == "2"
            assert time.monotonic() - started < 5  # fails fast, not after a long hang
            review = {"rating": 4, "comment": "written while MongoDB is away"}
            put = await app.put(f"/api/reviews/items/{item}/review", json=review, headers=writer)
            assert (put.status_code, problem(put)["code"]) == (503, "store_unavailable")
            ready = await app.get("/api/reviews/health/ready")
            assert (ready.status_code, problem(ready)["checks"]) == (503, {"mongo": "unavailable"})
            assert (await app.get("/api/reviews/health/live")).status_code == 200

            mongo.open()  # MongoDB is back, at the same address
            try:
                await until(lambda: _status(app.get("/api/reviews/health/ready"), 200), within=30)
                put = await app.put(
                    f"/api/reviews/items/{item}/review", json=review, headers=writer
                )
                assert put.status_code == 201, put.text
                listed = await app.get(f"/api/reviews/items/{item}/reviews")
                assert listed.json()["total"] == 1
                summary = await app.get(f"/api/reviews/items/{item}/summary")
                assert summary.json()["histogram"]["4"] == 1
            finally:
                mongo.close()

    asyncio.run(run())


async def _status(request, status: int) -> bool:
    return (await request).status_code == status


def test_a_review_saved_while_purchase_is_away_gets_its_verified_flag_later(profile, api) -> None:
    admin = api.admin_token()
    buyer = api.token(api.register())
    bought = buy_item(api, admin, buyer)
    database = f"scratch_{uuid.uuid4().hex[:12]}"

    async def run() -> None:
        purchase = Door(profile.ports["purchase"])
        settings = settings_for(profile, database, purchase_url=f"http://127.0.0.1:{purchase.port}")
        async with dropped_after(profile, database), AsyncTestClient(create_app(settings)) as app:
            path = f"/api/reviews/items/{bought}"
            started = time.monotonic()
            put = await app.put(
                f"{path}/review",
                json={"rating": 5, "comment": "Arrived quickly."},
                headers={"Authorization": f"Bearer {buyer}"},
            )
            assert put.status_code == 201, put.text
            assert time.monotonic() - started < 3  # purchase's silence costs a second at most
            assert put.json()["verified_purchase"] is None
            purchase.open()
            try:
                verified = await until(lambda: _verified(app.get(f"{path}/reviews")), within=20)
                assert verified == [True]
            finally:
                purchase.close()

    asyncio.run(run())


async def _verified(request) -> list | None:
    flags = [review["verified_purchase"] for review in (await request).json()["items"]]
    return flags if None not in flags else None
