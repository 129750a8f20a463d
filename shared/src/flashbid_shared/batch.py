"""Group commit: writes that arrive together go out in one statement and one commit, so that
each is durable before its answer without a commit (and a hot row's lock) per request."""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """`await submit(item)` resolves with `write(batch)`'s answer for that item, or raises it
    when the answer is an exception. A batch holds each `key(item)` once; a second item with
    the same key waits for the next batch."""

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[list[R]]],
        key: Callable[[T], Hashable],
        max_size: int = 500,
    ) -> None:
        self.write, self.key, self.max_size = write, key, max_size
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def submit(self, item: T) -> R:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, seen, rest = [], set(), []
                for entry in self._queue:
                    k = self.key(entry[0])
                    if k in seen or len(batch) >= self.max_size:
                        rest.append(entry)
                    else:
                        seen.add(k)
                        batch.append(entry)
                self._queue = rest
                await self._flush(batch)
            if self._closing:
                return

    async def _flush(self, batch: list[tuple[T, "asyncio.Future[R]"]]) -> None:
        try:
            results = await self.write([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def close(self) -> None:
        """Stop once every item submitted so far is written and answered: a submitter is not
        left waiting, and a batch is not cut off in the middle of its write."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
