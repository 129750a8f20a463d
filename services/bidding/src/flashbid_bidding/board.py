"""The live state in Redis: each lot's latest state, each ranked session's leaderboard, and
the channel every replica listens on to push changes to its WebSocket watchers. All of it
can be rebuilt from PostgreSQL.

  bid:lot:<lot>            the lot's state (JSON)
  bid:{<offer>}:board      sorted set: score -> "<tie order>:<user>"
  bid:{<offer>}:member     hash: user -> their member in the board
  bid:{<offer>}:info       hash: user -> "<price>|<display name>"
  bid:event:<event>        pub/sub channel of the event's changes
  bid:rate:<user>          when the user's socket bids are next allowed (ms, Redis's clock)
"""

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import msgspec
from redis.asyncio import Redis

from flashbid_bidding.schemas import BoardLine, LotState
from flashbid_shared.redisline import RedisLine, Script

# Place or move a customer's entry; answers their 1-based rank, and the user pushed out of
# the winning top N by this move (if any), who is told they were outbid. The change is
# published to the event's channel in the same call.
UPSERT = Script("""
local board, members, info = KEYS[1], KEYS[2], KEYS[3]
local user, member, score, details, top = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('EXISTS', members) == 0 then return {0, ''} end  -- not loaded: rebuild first
local old = redis.call('HGET', members, user)
local before = nil
if old then
    before = redis.call('ZREVRANK', board, old)
    redis.call('ZREM', board, old)
end
redis.call('ZADD', board, score, member)
redis.call('HSET', members, user, member)
redis.call('HSET', info, user, details)
local rank = redis.call('ZREVRANK', board, member)
local pushed = ''
if rank < top and (before == nil or before >= top) and redis.call('ZCARD', board) > top then
    local out = redis.call('ZREVRANGE', board, top, top)[1]
    pushed = string.sub(out, string.find(out, ':') + 1)
end
local news = '{"type":"session","offer_id":"' .. ARGV[7] .. '"'
if pushed ~= '' then news = news .. ',"outbid":"' .. pushed .. '"' end
redis.call('PUBLISH', ARGV[6], news .. '}')
return {rank + 1, pushed}
""")


# The top `ARGV[1]` of a leaderboard with each line's details, in one round trip.
TOP = Script("""
local entries = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local users = {}
for i = 1, #entries, 2 do
    users[#users + 1] = string.sub(entries[i], string.find(entries[i], ':') + 1)
end
if #users == 0 then return {{}, {}} end
return {entries, redis.call('HMGET', KEYS[2], unpack(users))}
""")


# A leaky bucket of `ARGV[2]` bids that drains one every `ARGV[1]` ms (the generic cell rate
# algorithm: one key, the time the bucket is next empty, on Redis's clock, which every replica
# shares). Answers 0 if this bid is allowed, else the ms until one is.
RATE = Script("""
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local empty = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local wait = empty - now - (burst - 1) * interval
if wait > 0 then return wait end
redis.call('SET', KEYS[1], empty + interval, 'PX', empty + interval - now)
return 0
""")


def _session_keys(offer_id: UUID | str) -> list[str]:
    tag = f"bid:{{{offer_id}}}"
    return [f"{tag}:board", f"{tag}:member", f"{tag}:info"]


def channel(event_id: UUID | str) -> str:
    return f"bid:event:{event_id}"


class Board:
    """`line` runs the per-bid script and the leaderboard's, `redis` the rest."""

    def __init__(self, redis: Redis, line: RedisLine) -> None:
        self.redis, self.line = redis, line

    # --------------------------------------------------------------------------- lots

    async def save_lot(self, state: LotState) -> None:
        await self.redis.set(f"bid:lot:{state.lot_id}", msgspec.json.encode(state), ex=7 * 86400)

    async def lot(self, lot_id: UUID) -> LotState | None:
        raw = await self.redis.get(f"bid:lot:{lot_id}")
        return None if raw is None else msgspec.json.decode(raw, type=LotState)

    # ----------------------------------------------------------------------- sessions

    async def upsert(
        self,
        event_id: UUID,
        offer_id: UUID,
        user_id: UUID,
        member: str,
        score: float,
        details: str,
        top: int,
    ) -> tuple[int, str | None]:
        """(rank, pushed-out user); rank 0 if the board is not in Redis (rebuild it)."""
        rank, pushed = await self.line.run(
            UPSERT,
            _session_keys(offer_id),
            [
                str(user_id),
                f"{member}:{user_id}",
                score,
                details,
                top,
                channel(event_id),
                str(offer_id),
            ],
        )
        return int(rank), (pushed.decode() or None)

    async def leaderboard(self, offer_id: UUID, limit: int) -> list[BoardLine]:
        """The top `limit` lines, in one call (the hub renders one on each turn with news)."""
        board, _, info = _session_keys(offer_id)
        entries, details = await self.line.run(TOP, [board, info], [limit])
        lines = []
        for rank, (score, detail) in enumerate(zip(entries[1::2], details, strict=True), 1):
            price, name = (detail or b"0|?").decode().split("|", 1)
            lines.append(BoardLine(rank=rank, display_name=name, price=price, score=float(score)))
        return lines

    async def standing(self, offer_id: UUID, user_id: UUID) -> tuple[int, float, str] | None:
        """The customer's (rank, score, price), or None without a bid."""
        board, members, info = _session_keys(offer_id)
        member = await self.redis.hget(members, str(user_id))
        if member is None:
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrevrank(board, member)
            pipe.zscore(board, member)
            pipe.hget(info, str(user_id))
            rank, score, detail = await pipe.execute()
        if rank is None:
            return None
        return rank + 1, score, detail.decode().split("|", 1)[0]

    async def has_board(self, offer_id: UUID) -> bool:
        return bool(await self.redis.exists(_session_keys(offer_id)[1]))

    async def load_board(self, offer_id: UUID, entries: Iterable[tuple[UUID, str, float, str]]):
        """Replace a leaderboard: (user, member prefix, score, details) per customer."""
        keys = _session_keys(offer_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*keys)
            for user_id, member, score, details in entries:
                pipe.zadd(keys[0], {f"{member}:{user_id}": score})
                pipe.hset(keys[1], str(user_id), f"{member}:{user_id}")
                pipe.hset(keys[2], str(user_id), details)
            # an empty board still marks the session as loaded
            pipe.hset(keys[1], "-", "-")
            await pipe.execute()

    # ------------------------------------------------------------------------ limits

    async def take(self, user_id: UUID, rate: float, burst: int) -> float:
        """0 if the user may bid now (`burst` at once, then `rate` a second), else the
        seconds until they may: across replicas and sockets."""
        wait = await self.line.run(RATE, [f"bid:rate:{user_id}"], [round(1000 / rate), burst])
        return int(wait) / 1000

    # -------------------------------------------------------------------------- news

    async def publish(self, event_id: UUID, news: dict[str, Any]) -> None:
        await self.redis.publish(channel(event_id), msgspec.json.encode(news))
