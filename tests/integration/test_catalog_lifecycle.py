"""The catalog scheduler and sync loop against the real PostgreSQL: two replicas racing on
the same events move each one exactly once, and a push that fails is retried until it lands."""

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from flashbid_catalog import store
from flashbid_catalog.clients import Peers
from flashbid_catalog.lifecycle import Lifecycle
from flashbid_catalog.schemas import EventInput, ItemInput
from flashbid_shared import inputs
from tests_support import event_body

pytestmark = pytest.mark.stack


async def create_events(engine, count: int, *, starts_in: float, lasts: float) -> list[uuid.UUID]:
    """`count` scheduled flash sales (starting in the past if `starts_in` is negative)."""
    async with engine.begin() as connection:
        item = await store.create_item(connection, ItemInput(name="Lamp", category="home"))
        ids = []
        for _ in range(count):
            body = event_body("flash_sale", str(item.id), starts_in=starts_in, lasts=lasts)
            event_id = await store.create_event(connection, inputs.convert(body, EventInput))
            await connection.execute(
                store.events.update()
                .where(store.events.c.id == event_id)
                .values(status="scheduled")
            )
            ids.append(event_id)
    return ids


def test_two_schedulers_move_every_due_event_exactly_once(scratch_database) -> None:
    url = scratch_database("catalog")

    async def run() -> tuple[dict, list]:
        engines = [create_async_engine(url) for _ in range(2)]
        opening = await create_events(engines[0], 30, starts_in=-1, lasts=3600)
        ending = await create_events(engines[0], 30, starts_in=-7200, lasts=3600)

        async def replica(engine) -> None:
            for _ in range(20):
                async with engine.begin() as connection:
                    await store.advance(connection)

        await asyncio.gather(*(replica(engine) for engine in engines))
        async with engines[0].connect() as connection:
            rows = await connection.execute(sa.select(store.events.c.id, store.events.c.status))
            statuses = {event_id: status for event_id, status in rows}
            moves = (
                await connection.execute(
                    sa.select(store.transitions.c.event_id, store.transitions.c.to_status)
                )
            ).all()
        for engine in engines:
            await engine.dispose()
        return {"opening": opening, "ending": ending, "statuses": statuses}, moves

    found, moves = asyncio.run(run())
    assert all(found["statuses"][i] == "live" for i in found["opening"])
    assert all(found["statuses"][i] == "ended" for i in found["ending"])  # missed entirely
    assert len(moves) == 60
    assert len({event_id for event_id, _ in moves}) == 60  # once each


class Receiver:
    """A stand-in for purchase and bidding: records each PUT, fails the first `failures`."""

    def __init__(self, failures: int) -> None:
        self.failures, self.received = failures, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(503)
                else:
                    receiver.received.append((self.path, body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_change_reaches_purchase_after_failed_pushes(scratch_database) -> None:
    url = scratch_database("catalog")
    receiver = Receiver(failures=2)

    async def run() -> tuple[uuid.UUID, int, int]:
        engine = create_async_engine(url)
        [event_id] = await create_events(engine, 1, starts_in=-1, lasts=3600)
        async with engine.begin() as connection:
            await store.advance(connection)  # scheduled -> live, version 2
        async with httpx.AsyncClient() as http:
            lifecycle = Lifecycle(engine, Peers(http, receiver.url, receiver.url, 1.0))
            deadline = datetime.now(UTC) + timedelta(seconds=15)
            while not receiver.received:
                assert datetime.now(UTC) < deadline, "never delivered"
                await lifecycle.sync_once()
                await asyncio.sleep(0.05)
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    sa.select(store.events.c.version, store.events.c.synced_version)
                )
            ).one()
        await engine.dispose()
        return event_id, row.version, row.synced_version

    event_id, version, synced = asyncio.run(run())
    [(path, body)] = receiver.received
    assert path == f"/api/purchase/internal/events/{event_id}"
    assert (body["status"], body["version"]) == ("live", version)
    assert synced == version
    receiver.server.shutdown()
