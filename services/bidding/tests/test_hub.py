"""The WebSocket fan-out with fake sockets: coalescing, and dropping a watcher that stops
reading instead of buffering for it."""

import asyncio
import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from flashbid_bidding import hub


class Socket:
    """Records what is sent; `stuck` makes every send wait forever, like a peer that stopped
    reading once the TCP buffers are full."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck, self.sent, self.times = stuck, [], []
        self.scope: dict = {}  # no server's own send: the hub uses `send`

    async def send(self, event: dict) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.sent.append(sent(event))
        self.times.append(asyncio.get_running_loop().time())

    async def receive(self) -> dict:
        await asyncio.Event().wait()  # a watcher that never sends anything
        return {}


def sent(event: dict) -> dict:
    """The message a frame carries, without its `server_time` (checked to be there)."""
    assert event["type"] == "websocket.send" and event["bytes"] is None  # a text frame
    message = json.loads(event["text"])
    assert datetime.fromisoformat(message.pop("server_time")).tzinfo == UTC
    return message


def test_a_burst_reaches_a_watcher_as_a_few_pushes_ending_on_the_latest() -> None:
    async def render(event_id, news: dict) -> list[dict]:
        return [{"price": news["price"]}]

    async def run() -> tuple[list[dict], list[dict], str]:
        fanout = hub.Hub(line=None, render=render)  # type: ignore[arg-type]
        event_id, lot_id, bidder, other = uuid4(), uuid4(), uuid4(), uuid4()
        sockets = {bidder: Socket(), other: Socket()}
        for user, socket in sockets.items():
            fanout.add(event_id, hub.Watcher(socket.send, user))
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
        # each watcher's group has its turn: the last change may reach one a turn later
        while any({"price": 500} not in socket.sent for socket in sockets.values()):
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


def test_a_change_reaches_every_watcher_within_a_tick_in_groups_not_one_burst() -> None:
    async def render(event_id, news: dict) -> list[dict]:
        return [{"price": news["price"]}]

    async def run() -> tuple[float, list[float]]:
        fanout = hub.Hub(line=None, render=render)  # type: ignore[arg-type]
        event_id = uuid4()
        sockets = [Socket() for _ in range(5 * hub.GROUPS)]
        for socket in sockets:
            fanout.add(event_id, hub.Watcher(socket.send, uuid4()))
        pushing = asyncio.create_task(fanout.push())
        loop = asyncio.get_running_loop()
        changed = loop.time()
        news = {"type": "lot", "lot_id": str(uuid4()), "price": 7}
        fanout._note(f"bid:event:{event_id}".encode(), json.dumps(news).encode())
        deadline = changed + 5
        while not all(socket.sent for socket in sockets):
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        pushing.cancel()
        assert all(socket.sent == [{"price": 7}] for socket in sockets)
        return changed, sorted(socket.times[0] for socket in sockets)

    changed, arrivals = asyncio.run(run())
    assert arrivals[-1] - changed < 1.0  # about a tick (0.1 s), with room for a busy machine
    groups = [arrivals[n : n + 5] for n in range(0, len(arrivals), 5)]
    assert len({round(group[0], 3) for group in groups}) == hub.GROUPS  # ten pushes, not one
    assert arrivals[-1] - arrivals[0] >= 0.9 * hub.TICK * (hub.GROUPS - 1) / hub.GROUPS


def test_a_watcher_that_stops_reading_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "SEND_TIMEOUT", 0.2)

    async def run() -> tuple[bool, bool]:
        fanout = hub.Hub(line=None, render=None)  # type: ignore[arg-type]
        event_id = uuid4()
        watchdog = asyncio.create_task(fanout.watchdog())

        async def reply(_: dict) -> dict:
            return {}

        serving = asyncio.create_task(
            fanout.serve(Socket(stuck=True), event_id, uuid4(), {"type": "state"}, reply)
        )
        reason = await asyncio.wait_for(serving, 5)
        watchdog.cancel()
        return reason, event_id in fanout.watchers

    reason, still_watching = asyncio.run(run())
    assert reason == "too slow" and not still_watching


def test_a_frame_still_going_out_holds_the_next_which_are_coalesced_to_the_latest() -> None:
    """As granian's `send`: the frame leaves when called; its future is done at once unless
    the socket is backed up."""

    async def run() -> list[list[int]]:
        loop = asyncio.get_running_loop()
        sent: list[int] = []
        going_out: list[asyncio.Future[None]] = []

        def send(event: dict) -> asyncio.Future[None]:
            sent.append(json.loads(event["text"])["price"])
            done = loop.create_future()
            if not backed_up:
                done.set_result(None)
            going_out.append(done)
            return done

        watcher = hub.Watcher(send, uuid4())
        seen = []
        backed_up = False
        watcher.offer("board", hub.frame({"price": 1}))
        backed_up = True
        watcher.offer("board", hub.frame({"price": 2}))  # goes out, slowly
        for price in (3, 4, 5):  # held back meanwhile, each replacing the one before
            watcher.offer("board", hub.frame({"price": price}))
        seen.append(list(sent))
        backed_up = False
        going_out[-1].set_result(None)
        await asyncio.sleep(0)  # the done callback
        seen.append(list(sent))
        return seen

    while_backed_up, after = asyncio.run(run())
    assert while_backed_up == [1, 2]
    assert after == [1, 2, 5]


def test_a_watcher_whose_socket_failed_a_frame_leaves_at_the_next_push() -> None:
    async def run() -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        sent = []

        def send(event: dict) -> asyncio.Future[None]:
            sent.append(event)
            failed = loop.create_future()
            failed.set_exception(OSError("connection reset"))  # the peer went away
            return failed

        watcher = hub.Watcher(send, uuid4())
        watcher.offer("board", hub.frame({"price": 1}))
        watcher.offer("board", hub.frame({"price": 2}))
        return await asyncio.wait_for(watcher.gone, 1), len(sent)

    reason, frames = asyncio.run(run())
    assert reason == "closed"
    assert frames == 1  # nothing more is handed to a socket that failed
