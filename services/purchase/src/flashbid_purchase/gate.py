"""The admission gate in Redis: one Lua script decides each order attempt, so that the buyers
who lose are refused without touching PostgreSQL. PostgreSQL stays the source of truth; this
state can be rebuilt from it at any time.

Keys share the offer's hash tag, so the script touches one cluster slot:
  pur:{O}:stock  hash  remaining, limit, stock, event
  pur:{O}:live   "1" while the sale is open (expires by itself at the event's end)
  pur:{O}:held   hash  user id -> units reserved or bought
  pur:{O}:idem:<user>:<key>  fingerprint of an admitted request (Idempotency-Key)
"""

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from redis.asyncio import Redis

from flashbid_purchase.domain import IDEMPOTENCY_TTL, Outcome
from flashbid_shared.redisline import RedisLine, Script

ADMIT = Script("""
local stock, live, held = KEYS[1], KEYS[2], KEYS[3]
local user, qty = ARGV[1], tonumber(ARGV[2])
if KEYS[4] then
    local seen = redis.call('GET', KEYS[4])
    if seen then return {'seen', seen} end
end
local remaining = redis.call('HGET', stock, 'remaining')
if not remaining then return {'unknown'} end
if redis.call('EXISTS', live) == 0 then return {'event_not_live'} end
local mine = tonumber(redis.call('HGET', held, user) or '0')
if mine + qty > tonumber(redis.call('HGET', stock, 'limit')) then return {'limit_reached'} end
if tonumber(remaining) < qty then return {'sold_out'} end
redis.call('HINCRBY', stock, 'remaining', -qty)
redis.call('HINCRBY', held, user, qty)
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[4]) end
return {'ok'}
""")

# Give back what an admission took (a refused write, a cancellation, an expiry).
RELEASE = Script("""
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('HINCRBY', KEYS[1], 'remaining', ARGV[2])
end
if tonumber(redis.call('HINCRBY', KEYS[2], ARGV[1], -tonumber(ARGV[2]))) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[1])
end
if KEYS[3] then redis.call('DEL', KEYS[3]) end
""")


def _keys(offer_id: UUID | str) -> tuple[str, str, str]:
    tag = f"pur:{{{offer_id}}}"
    return f"{tag}:stock", f"{tag}:live", f"{tag}:held"


def _idem(offer_id: UUID | str, user_id: str, key: str) -> str:
    return f"pur:{{{offer_id}}}:idem:{user_id}:{key}"


def _offers_of(event_id: UUID | str) -> str:
    return f"pur:event:{event_id}:offers"


class Gate:
    """`line` runs the per-order scripts, `redis` the rest."""

    def __init__(self, redis: Redis, line: RedisLine) -> None:
        self.redis, self.line = redis, line

    async def admit(
        self, offer_id: UUID, user_id: str, quantity: int, key: str | None, fingerprint: str
    ) -> tuple[Outcome, str | None]:
        keys = [*_keys(offer_id)]
        args: list[str | int] = [user_id, quantity]
        if key:
            keys.append(_idem(offer_id, user_id, key))
            args += [fingerprint, IDEMPOTENCY_TTL]
        result = await self.line.run(ADMIT, keys, args)
        outcome = result[0].decode()
        return outcome, (result[1].decode() if len(result) > 1 else None)  # type: ignore[return-value]

    async def release(
        self, offer_id: UUID, user_id: str, quantity: int, key: str | None = None
    ) -> None:
        keys = [_keys(offer_id)[0], _keys(offer_id)[2]]
        if key:
            keys.append(_idem(offer_id, user_id, key))
        await self.line.run(RELEASE, keys, [user_id, quantity])

    async def load(
        self,
        event_id: UUID,
        offers: Iterable[tuple[UUID, int, int, int]],
        holdings: Iterable[tuple[UUID, UUID, int]],
        live_until: datetime | None,
        *,
        replace: bool,
    ) -> None:
        """Publish an event's offers (id, stock, remaining, limit). `replace` overwrites the
        counts (a rebuild from PostgreSQL); otherwise counts already here are kept, since
        admissions may be in flight. `live_until` opens the sale until then, None closes it."""
        offers = list(offers)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(_offers_of(event_id))
            for offer_id, stock, remaining, limit in offers:
                stock_key, live_key, held_key = _keys(offer_id)
                pipe.sadd(_offers_of(event_id), str(offer_id))
                pipe.hset(stock_key, mapping={"limit": limit, "stock": stock})
                if replace:
                    pipe.hset(stock_key, "remaining", remaining)
                    pipe.delete(held_key)
                else:
                    pipe.hsetnx(stock_key, "remaining", remaining)
                if live_until is None:
                    pipe.delete(live_key)
                else:
                    pipe.set(live_key, 1, pxat=int(live_until.timestamp() * 1000))
            if replace:
                for user_id, offer_id, quantity in holdings:
                    if quantity > 0:
                        pipe.hset(_keys(offer_id)[2], str(user_id), quantity)
            await pipe.execute()

    async def is_loaded(self, offer_ids: Iterable[UUID]) -> bool:
        async with self.redis.pipeline(transaction=False) as pipe:
            for offer_id in offer_ids:
                pipe.exists(_keys(offer_id)[0])
            return all(await pipe.execute())

    async def stock(self, event_id: UUID) -> list[tuple[str, int, int]] | None:
        """(offer id, stock, remaining) per offer, or None if the event is not loaded."""
        offer_ids = sorted(m.decode() for m in await self.redis.smembers(_offers_of(event_id)))
        if not offer_ids:
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            for offer_id in offer_ids:
                pipe.hmget(_keys(offer_id)[0], "stock", "remaining")
            rows = await pipe.execute()
        if any(stock is None or remaining is None for stock, remaining in rows):
            return None
        return [
            (offer_id, int(stock), max(0, int(remaining)))
            for offer_id, (stock, remaining) in zip(offer_ids, rows, strict=True)
        ]
