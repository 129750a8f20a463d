"""The WebSocket fan-out with fake sockets: coalescing, and dropping a watcher that stops
reading instead of buffering for it."""

import asyncio
import json
from uuid import uuid4

import pytest

from flashbid_bidding import hub


class Socket:
    """Records what is sent; `stuck` makes every send wait forever, like a peer that stopped
    reading once the TCP buffers are full."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck, self.sent = stuck, []

    async def send_bytes(self, data: bytes) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.sent.append(json.loads(data))

    async def receive_data(self, mode: str) -> str:
        await asyncio.Event().wait()  # a watcher that never sends anything
        return ""


def test_a_burst_reaches_a_watcher_as_a_few_pushes_ending_on_the_latest() -> None:
    async def run() -> list[dict]:
        socket = Socket()
        watcher = hub.Watcher(socket, uuid4())
        pump = asyncio.create_task(watcher.pump())
        for price in range(1, 501):  # 500 changes of one lot, as fast as they come
            watcher.offer("lot:1", {"price": price})
            if price % 50 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(hub.TICK * 2)
        pump.cancel()
        return socket.sent

    sent = asyncio.run(run())
    assert len(sent) <= 10
    assert sent[-1] == {"price": 500}


def test_a_watcher_that_stops_reading_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "SEND_TIMEOUT", 0.2)

    async def run() -> tuple[bool, bool]:
        fanout = hub.Hub(redis=None, render=None)  # type: ignore[arg-type]
        event_id = uuid4()

        async def reply(_: dict) -> dict:
            return {}

        serving = asyncio.create_task(
            fanout.serve(Socket(stuck=True), event_id, uuid4(), {"type": "state"}, reply)
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(serving, 5)
        return serving.done(), event_id in fanout.watchers

    done, still_watching = asyncio.run(run())
    assert done and not still_watching
