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

    async def send(self, event: dict) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        assert event["type"] == "websocket.send"
        self.sent.append(json.loads(event["bytes"]))

    async def receive_data(self, mode: str) -> str:
        await asyncio.Event().wait()  # a watcher that never sends anything
        return ""


def test_a_burst_reaches_a_watcher_as_a_few_pushes_ending_on_the_latest() -> None:
    async def render(event_id, news: dict) -> list[dict]:
        return [{"price": news["price"]}]

    async def run() -> tuple[list[dict], list[dict], str]:
        fanout = hub.Hub(redis=None, render=render)  # type: ignore[arg-type]
        event_id, lot_id, bidder, other = uuid4(), uuid4(), uuid4(), uuid4()
        sockets = {bidder: Socket(), other: Socket()}
        for user, socket in sockets.items():
            fanout.add(event_id, watcher := hub.Watcher(socket, user))
            watcher.task = asyncio.create_task(watcher.pump())
        pushing = asyncio.create_task(fanout.push())
        channel = f"bid:event:{event_id}".encode()
        for price in range(1, 501):  # 500 changes of one lot in about half a second
            news = {"type": "lot", "lot_id": str(lot_id), "price": price}
            if price == 250:
                news["outbid"] = str(bidder)
            fanout._note(channel, json.dumps(news).encode())
            if price % 10 == 0:
                await asyncio.sleep(0.01)
        deadline = asyncio.get_running_loop().time() + 5
        while {"price": 500} not in sockets[other].sent:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        pushing.cancel()
        return sockets[bidder].sent, sockets[other].sent, str(lot_id)

    to_bidder, to_other, lot_id = asyncio.run(run())
    for sent in (to_bidder, to_other):
        assert len([m for m in sent if "price" in m]) <= 10  # about ten a second, not 500
        assert sent[-1] == {"price": 500}
    outbid = [m for m in to_bidder if m.get("type") == "outbid"]
    assert outbid == [{"type": "outbid", "lot_id": lot_id}]  # once, to the bidder concerned
    assert not [m for m in to_other if m.get("type") == "outbid"]


def test_a_watcher_that_stops_reading_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "SEND_TIMEOUT", 0.2)

    async def run() -> tuple[bool, bool]:
        fanout = hub.Hub(redis=None, render=None)  # type: ignore[arg-type]
        event_id = uuid4()
        watchdog = asyncio.create_task(fanout.watchdog())

        async def reply(_: dict) -> dict:
            return {}

        serving = asyncio.create_task(
            fanout.serve(Socket(stuck=True), event_id, uuid4(), {"type": "state"}, reply)
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(serving, 5)
        watchdog.cancel()
        return serving.done(), event_id in fanout.watchers

    done, still_watching = asyncio.run(run())
    assert done and not still_watching
