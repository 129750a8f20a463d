"""WebSocket fan-out. Every replica listens to the events' Redis channels and pushes to its
own watchers, so a watcher on any replica sees every bid. Changes are coalesced: at most ten
pushes a second per watcher, each the latest state; a watcher that stops reading is dropped
instead of buffered for. The watchers are pushed to in ten groups, one every hundredth of a
second: a change reaches each in at most a tenth of a second, and the pushes are spread over
it instead of leaving in one burst to every watcher (2,000 watchers: the last of a burst was
pushed to 100-150 ms after the first, and every bid in between waited behind it)."""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import WebSocket
from litestar.types import Send

from flashbid_bidding.board import channel
from flashbid_shared.lanes import server_send
from flashbid_shared.redisline import RedisLine

log = logging.getLogger(__name__)
TICK = 0.1  # seconds between two pushes to one watcher
GROUPS = 10  # the watchers' groups, pushed to one after the other, TICK / GROUPS apart
SEND_TIMEOUT = 5.0  # a watcher that cannot take a message in this long is dropped
BOARD_SIZE = 10
MAX_MESSAGE = 64 * 1024  # a client's message (a bid is under 200 bytes); larger closes (1009)
_clock = [0, ""]  # the last millisecond `server_time` was asked for, and its text


def server_time() -> str:
    """Now in RFC 3339, UTC, to the millisecond (made once per millisecond: a push to 2,000
    watchers asks for it about as often)."""
    ms = time.time_ns() // 1_000_000
    if ms != _clock[0]:
        moment = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
        _clock[:] = ms, moment.replace("+00:00", "Z")
    return _clock[1]  # type: ignore[return-value]


def frame(message: Any, now: str | None = None) -> dict[str, Any]:
    """The ASGI event that sends `message` (a JSON object's bytes, or what msgspec encodes) as
    one text frame, with the server's time as `server_time` (the time of the push: a change
    is encoded once and stamped once per group, see `Hub._offer`)."""
    data = message if isinstance(message, bytes) else msgspec.json.encode(message)
    more = "," if len(data) > 2 else ""
    text = f'{data[:-1].decode()}{more}"server_time":"{now or server_time()}"}}'
    return {"type": "websocket.send", "text": text, "bytes": None}


class Leave(Exception):
    """Raised by a watcher's message handler: the socket is closed, for `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Watcher:
    """One socket: what is waiting to be pushed to it, and the last frame handed to the server.

    Frames are handed to `send`, the server's own (see `lanes.server_send`), one at a time: the
    next goes once the one before is out. Granian's `send` hands the frame to its writer thread
    and returns a future, done once written. A push is a call, not a task woken per watcher, and
    the future is looked at when the next push comes (a tenth of a second later, long done)
    rather than called back: a callback per frame, from granian's thread, cost a third of a
    frame's CPU (18-20 us against 12). Only a push that finds the frame before still going out
    (several messages at once, or a socket backed up) waits for it, the rest coalesced."""

    def __init__(self, send: Send, user_id: UUID | None) -> None:
        self.send, self.user_id = send, user_id
        self.group = 0  # given by the hub
        self.pending: dict[str, Any] = {}
        self.sending: asyncio.Future[None] | None = None  # the last frame handed over
        self.sending_since = 0.0
        self.waited: asyncio.Future[None] | None = None  # the frame a callback waits for
        self.gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def offer(self, key: str, message: Any) -> None:
        """Replace whatever was waiting under `key`: only the latest state is ever sent.
        `message`: a frame (see `frame`), or a function of the watcher's user id (None for
        an anonymous watcher)."""
        self.pending[key] = message
        self.flush()

    def flush(self, _: Any = None) -> None:
        while self.pending and not self.gone.done():
            sending = self.sending
            if sending is not None and not sending.done():
                if self.waited is not sending:  # go on once it is out
                    self.waited = sending
                    sending.add_done_callback(self.flush)
                return
            if sending is not None and (sending.cancelled() or sending.exception()):
                self.leave("closed")
                return
            message = self.pending.pop(next(iter(self.pending)))
            if callable(message):  # differs per watcher (`you_lead`)
                message = frame(message(self.user_id))
            try:
                self.sending = asyncio.ensure_future(self.send(message))
            except Exception:  # the socket is closed: its route is ending
                self.leave("closed")
                return
            self.sending_since = self.gone.get_loop().time()

    def stuck(self, since: float) -> bool:
        """Whether a frame handed over before `since` is still going out."""
        return self.sending is not None and self.sending_since < since and not self.sending.done()

    def leave(self, reason: str) -> None:
        """Stop pushing to this socket; its route ends, and closes it for `reason` (`too
        slow`, `expired`, ...) unless the socket is gone (`closed`, `left`)."""
        if not self.gone.done():
            self.gone.set_result(reason)
        sending = self.sending
        if sending is not None and not sending.cancel() and not sending.cancelled():
            sending.exception()  # retrieved: a failed last frame is not logged as lost


class Hub:
    def __init__(
        self,
        line: RedisLine,
        render: Callable[[UUID, dict], Any],
        active: Callable[[UUID], Awaitable[bool]] | None = None,
    ) -> None:
        """`render(event_id, news)` turns a change into the message(s) to push: a dict, or a
        function of the watcher's user id for messages that differ per watcher. `active(user)`
        says whether a signed-in watcher's account is still active (see `follow_accounts`)."""
        self.line, self.render, self.active = line, render, active
        self.watchers: dict[UUID, set[Watcher]] = defaultdict(set)
        self.channels: dict[bytes, UUID] = {}  # the watched events, by their Redis channel
        # the same watchers by group, and by (event, user): an outbid goes to one bidder
        self.groups: list[dict[UUID, set[Watcher]]] = [defaultdict(set) for _ in range(GROUPS)]
        self.by_user: dict[tuple[UUID, str], set[Watcher]] = defaultdict(set)
        self.dirty: dict[UUID, dict[str, dict]] = defaultdict(dict)
        # what each group has not been pushed yet: rendered changes, and outbids by bidder
        self.changes: list[dict[UUID, dict[str, Any]]] = [{} for _ in range(GROUPS)]
        self.outbids: list[dict[tuple[UUID, str], dict[str, Any]]] = [{} for _ in range(GROUPS)]
        self.changed = asyncio.Event()
        self._joined = 0

    def add(self, event_id: UUID, watcher: Watcher) -> None:
        watcher.group, self._joined = self._joined % GROUPS, self._joined + 1
        self.channels[channel(event_id).encode()] = event_id
        self.watchers[event_id].add(watcher)
        self.groups[watcher.group][event_id].add(watcher)
        if watcher.user_id is not None:
            self.by_user[(event_id, str(watcher.user_id))].add(watcher)

    def remove(self, event_id: UUID, watcher: Watcher) -> None:
        _discard(self.watchers, event_id, watcher)
        _discard(self.groups[watcher.group], event_id, watcher)
        if watcher.user_id is not None:
            _discard(self.by_user, (event_id, str(watcher.user_id)), watcher)
        if event_id not in self.watchers:
            self.channels.pop(channel(event_id).encode(), None)

    async def listen(self) -> None:
        while True:
            try:
                await self.line.listen(channel("*"), self._note)
            except Exception as exc:  # Redis went away: listen again when it is back
                log.warning("event channel lost (%r); listening again", exc)
                await asyncio.sleep(1)

    def _note(self, channel: bytes, data: bytes) -> None:
        event_id = self.channels.get(channel)  # None: nobody watches this event here
        if event_id is None:
            return
        news = msgspec.json.decode(data)
        key = f"{news['type']}:{news.get('lot_id') or news.get('offer_id') or ''}"
        self.dirty[event_id][key] = news
        if outbid := news.get("outbid"):  # only to the bidder concerned
            target = {k: v for k, v in news.items() if k in ("lot_id", "offer_id")}
            message = msgspec.json.encode({"type": "outbid", **target})  # framed when pushed
            for outbids in self.outbids:
                outbids.setdefault((event_id, outbid), {})[f"outbid:{key}"] = message
        self.changed.set()

    async def push(self) -> None:
        """Every TICK / GROUPS while there is news: render each change once, then offer what
        the next group has not had to its watchers, and each outbid to its bidder's. Watchers
        push nothing else (but their replies), so each gets at most ten pushes a second."""
        loop, step = asyncio.get_running_loop(), TICK / GROUPS
        turn, due = 0, loop.time()
        while True:
            if not self.dirty and not any(self.changes) and not any(self.outbids):
                await self.changed.wait()
                due = max(due, loop.time())
            self.changed.clear()
            await self._render()
            self._offer(turn % GROUPS)
            # the turns keep their pace (rendering takes time), catching up one step at most
            turn, due = turn + 1, max(due + step, loop.time() - step)
            await asyncio.sleep(due - loop.time())

    async def _render(self) -> None:
        dirty, self.dirty = self.dirty, defaultdict(dict)
        for event_id, changes in dirty.items():
            for key, news in changes.items():
                try:
                    messages = await self.render(event_id, news)
                except Exception:
                    log.exception("cannot render %s", news)
                    continue
                for n, message in enumerate(messages):
                    if not callable(message):  # the same for all: encoded once
                        message = msgspec.json.encode(message)
                    for pending in self.changes:
                        pending.setdefault(event_id, {})[f"{key}:{n}"] = message

    def _offer(self, group: int) -> None:
        """Each encoded change is framed once for the group, stamped with the push's time."""
        changes, self.changes[group] = self.changes[group], {}
        outbids, self.outbids[group] = self.outbids[group], {}
        now = server_time()
        for (event_id, user), messages in outbids.items():
            for watcher in self.by_user.get((event_id, user), ()):
                if watcher.group == group:
                    for slot, message in messages.items():
                        watcher.offer(slot, frame(message, now))
        watchers = self.groups[group]
        for event_id, encoded in changes.items():
            messages = {s: m if callable(m) else frame(m, now) for s, m in encoded.items()}
            for watcher in list(watchers.get(event_id, ())):
                for slot, message in messages.items():
                    watcher.offer(slot, message)

    async def watchdog(self) -> None:
        """Drop the watchers whose push has not gone out in SEND_TIMEOUT: they stopped
        reading. One scan a second instead of a timer per push (a fifth of the CPU)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, SEND_TIMEOUT))
            late = loop.time() - SEND_TIMEOUT
            for watchers in list(self.watchers.values()):
                for watcher in list(watchers):
                    if watcher.stuck(late):
                        watcher.leave("too slow")

    async def follow_accounts(self, every: float = 1.0) -> None:
        """Drop the watchers of deactivated accounts, every `every` seconds: `active` answers
        from the users' cache, which auth's changes feed keeps up to date."""
        while True:
            await asyncio.sleep(every)
            if self.active is None:
                continue
            try:
                users = {w.user_id for ws in self.watchers.values() for w in ws if w.user_id}
                gone = {str(user) for user in users if not await self.active(user)}
                for (_, user), watchers in list(self.by_user.items()):
                    if user in gone:
                        for watcher in list(watchers):
                            watcher.leave("deactivated")
            except Exception:
                log.exception("cannot check the watchers' accounts")

    async def serve(self, socket: WebSocket, event_id: UUID, user_id: UUID | None, first: Any,
                    on_message: Callable[[bytes], Awaitable[Any]],
                    expires: float | None = None) -> str:  # fmt: skip
        """Run one watcher until it leaves; answer each of its messages (`on_message(data)`,
        a reply or `Leave`). Returns why it ended: `left` (the client closed), `closed`,
        `too slow` (it stopped reading), `too large` (a message over MAX_MESSAGE), `expired`
        (at `expires`, a time.time()), `deactivated`, or what a `Leave` said."""
        watcher = Watcher(server_send(socket), user_id)
        self.add(event_id, watcher)
        watcher.offer("state", frame(first))
        loop = asyncio.get_running_loop()
        expiry = None
        if expires is not None:
            expiry = loop.call_later(max(expires - time.time(), 0), watcher.leave, "expired")
        try:
            while not watcher.gone.done():
                receive = asyncio.ensure_future(socket.receive())
                await asyncio.wait({receive, watcher.gone}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    receive.cancel()
                    break
                event = receive.result()
                if event["type"] == "websocket.disconnect":
                    watcher.leave("left")
                    break
                data = event.get("bytes") or (event.get("text") or "").encode()
                if len(data) > MAX_MESSAGE:
                    watcher.leave("too large")
                    break
                try:
                    reply = await on_message(data)
                except Leave as leave:
                    watcher.leave(leave.reason)
                    break
                watcher.offer(f"reply:{id(reply)}", frame(reply))
            return watcher.gone.result()
        finally:
            if expiry is not None:
                expiry.cancel()
            self.remove(event_id, watcher)
            watcher.leave("left")


def _discard(groups: dict[Any, set[Watcher]], key: Any, watcher: Watcher) -> None:
    groups[key].discard(watcher)
    if not groups[key]:
        del groups[key]
