"""One Redis connection shared by every request of a replica, its commands pipelined: the
commands issued during one turn of the event loop leave in one write, and the replies, which
Redis sends in order, resolve them in order. The hot paths (a flash sale's admission, a ranked
bid) run their scripts through it: redis-py's pool spends about 100 us of CPU per command
here, this about 10 us, and Redis reads one packet for many commands.

A lost connection fails the commands in flight with `redis.exceptions.ConnectionError` (a
command is never sent twice: an admission must not run twice) and the next command connects
again. `listen` is the same lean reading for a subscription, on a connection of its own.
"""

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError, ResponseError

log = logging.getLogger(__name__)


class Script:
    """A Lua script, called by its SHA1 and sent whole only when Redis does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class _Connection(asyncio.Protocol):
    """A Redis connection read with hiredis: each reply, as it is complete, to `take`."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            self.take(reply)

    def take(self, reply: Any) -> None:
        raise NotImplementedError


class _Protocol(_Connection):
    def __init__(self) -> None:
        super().__init__()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.outgoing: list[bytes] = []

    def take(self, reply: Any) -> None:
        waiter = self.waiting.popleft()
        if not waiter.done():
            if isinstance(reply, ResponseError):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"Redis connection lost: {exc!r}"))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.transport is None:
            raise ConnectionError("Redis connection lost")
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self.waiting.append(waiter)
        if not self.outgoing:  # the first command of this turn: write them all at its end
            loop.call_soon(self.flush)
        self.outgoing.append(command)
        return waiter

    def flush(self) -> None:
        if self.transport is not None and self.outgoing:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()


class _Listener(_Connection):
    """A connection subscribed to a pattern: each message's channel and data to `on_message`."""

    def __init__(self, on_message: Callable[[bytes, bytes], None]) -> None:
        super().__init__()
        self.on_message = on_message
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def take(self, reply: Any) -> None:
        if isinstance(reply, ResponseError):  # a refused AUTH, SELECT or PSUBSCRIBE
            self._end(reply)
        elif reply[0] == b"pmessage":
            try:
                self.on_message(reply[2], reply[3])
            except Exception:
                log.exception("cannot take the message on %r", reply[2])

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if self.transport is not None:
            self.transport.close()


class RedisLine:
    def __init__(self, url: str) -> None:
        self.options = parse_url(url)
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()

    async def call(self, *args: Any) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            protocol = await self._connect()
        return await protocol.send(hiredis.pack_command(args))

    async def run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self.call("EVAL", script.source, len(keys), *keys, *args)

    async def listen(self, pattern: str, on_message: Callable[[bytes, bytes], None]) -> None:
        """Call `on_message(channel, data)` for every message published to a channel matching
        `pattern`, until the connection is lost: then ConnectionError. Every bid is a message:
        redis-py's PubSub took 9.7 us of CPU per message here, this 1 us (50,000 messages)."""
        hello = [*self._hello(), ("PSUBSCRIBE", pattern)]
        listener = await self._open(lambda: _Listener(on_message))
        assert listener.transport is not None
        listener.transport.write(b"".join(hiredis.pack_command(c) for c in hello))
        try:
            exc = await listener.lost
        finally:
            listener._end(None)
        raise ConnectionError(f"Redis subscription lost: {exc!r}")

    async def _connect(self) -> _Protocol:
        async with self._connecting:
            if self._protocol is not None and self._protocol.transport is not None:
                return self._protocol
            protocol = await self._open(_Protocol)
            replies = [protocol.send(hiredis.pack_command(c)) for c in self._hello()]
            await asyncio.gather(*replies)
            self._protocol = protocol
            return protocol

    async def _open(self, factory: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        try:
            if "path" in self.options:
                _, protocol = await loop.create_unix_connection(factory, self.options["path"])
            else:
                _, protocol = await loop.create_connection(
                    factory, self.options.get("host", "localhost"), self.options.get("port", 6379)
                )
        except OSError as exc:
            raise ConnectionError(f"cannot reach Redis: {exc}") from exc
        return protocol

    def _hello(self) -> list[tuple[Any, ...]]:
        """The commands that open a connection: AUTH and SELECT, as the URL asks."""
        hello: list[tuple[Any, ...]] = []
        if password := self.options.get("password"):
            username = self.options.get("username")
            hello.append(("AUTH", username, password) if username else ("AUTH", password))
        if db := self.options.get("db"):
            hello.append(("SELECT", db))
        return hello

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
