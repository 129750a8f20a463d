"""The limit on a user's socket bids against the real Redis: shared by every replica."""

import asyncio
import time
import uuid

import pytest

from flashbid_bidding.board import Board
from flashbid_shared.redisline import RedisLine

pytestmark = pytest.mark.stack
SCRATCH_REDIS_DB = 10


def test_two_replicas_share_each_users_bucket(profile) -> None:
    url = f"redis://127.0.0.1:{profile.ports['redis']}/{SCRATCH_REDIS_DB}"

    async def main() -> tuple[list[float], list[float], float]:
        lines = [RedisLine(url), RedisLine(url)]  # one connection per replica
        replicas = [Board(None, line) for line in lines]  # type: ignore[arg-type]
        user, other = uuid.uuid4(), uuid.uuid4()
        started = time.monotonic()
        waits = await asyncio.gather(*(board.take(user, 5.0, 10) for board in replicas * 10))
        elapsed = time.monotonic() - started
        others = await asyncio.gather(*(board.take(other, 5.0, 10) for board in replicas))
        for line in lines:
            await line.aclose()
        return list(waits), list(others), elapsed

    waits, others, elapsed = asyncio.run(main())
    allowed = [w for w in waits if w == 0]
    assert 10 <= len(allowed) <= 10 + 5 * elapsed + 1, (waits, elapsed)  # 20 tries, 10 at once
    assert all(0 < w <= 0.2 for w in waits if w), waits  # the next one drains in 1/5 s
    assert others == [0, 0]  # another user's bucket is their own
