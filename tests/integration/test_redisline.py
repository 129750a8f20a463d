"""The pipelined Redis connection of the hot paths, against the real Redis: concurrent commands
get their own replies, scripts survive a SCRIPT FLUSH, and a killed connection fails only the
commands in flight before the next one reconnects; a subscription hears what matches, in order,
and ends with ConnectionError when its connection is killed."""

import asyncio

import pytest
from redis.exceptions import ConnectionError, ResponseError

from flashbid_shared.database import redis_client
from flashbid_shared.redisline import RedisLine, Script

pytestmark = pytest.mark.stack
SCRATCH_REDIS_DB = 11

INCR_BY = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")


@pytest.fixture
def redis_url(profile):
    return f"redis://127.0.0.1:{profile.ports['redis']}/{SCRATCH_REDIS_DB}"


def run(redis_url, scenario):
    async def main():
        pool, line = redis_client(redis_url), RedisLine(redis_url)
        await pool.flushdb()
        try:
            return await scenario(pool, line)
        finally:
            await pool.flushdb()
            await line.aclose()
            await pool.aclose()

    return asyncio.run(main())


def test_concurrent_commands_each_get_their_own_reply(redis_url) -> None:
    async def scenario(pool, line):
        names = [f"k{n}" for n in range(2000)]
        replies = await asyncio.gather(
            *(line.call("SET", name, n) for n, name in enumerate(names)),
            *(line.call("INCRBY", "total", 1) for _ in names),
        )
        values = await asyncio.gather(*(line.call("GET", name) for name in names))
        return replies, values, await pool.get("total")

    replies, values, total = run(redis_url, scenario)
    assert replies[:2000] == [b"OK"] * 2000
    assert sorted(replies[2000:]) == list(range(1, 2001))  # every increment seen once
    assert values == [str(n).encode() for n in range(2000)]  # each GET its own key's value
    assert total == b"2000"  # in the database the URL names, where the pool reads it


def test_an_error_reply_fails_its_command_only(redis_url) -> None:
    async def scenario(pool, line):
        await line.call("SET", "text", "abc")
        return await asyncio.gather(
            line.call("INCR", "text"), line.call("INCR", "n"), return_exceptions=True
        )

    failed, counted = run(redis_url, scenario)
    assert isinstance(failed, ResponseError)
    assert counted == 1


def test_a_script_runs_again_after_redis_forgot_it(redis_url) -> None:
    async def scenario(pool, line):
        first = await line.run(INCR_BY, ["n"], [2])
        await pool.script_flush()
        return first, await line.run(INCR_BY, ["n"], [3])

    assert run(redis_url, scenario) == (2, 5)


def test_a_killed_connection_fails_what_was_in_flight_then_reconnects(redis_url) -> None:
    async def scenario(pool, line):
        await line.call("SET", "n", 1)
        await pool.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        deadline = asyncio.get_running_loop().time() + 5
        while True:  # the kill reaches us as a closed socket: the next commands fail, then work
            try:
                return await line.call("INCR", "n")
            except ConnectionError:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)

    assert run(redis_url, scenario) == 2


def test_a_subscription_hears_what_matches_its_pattern_and_ends_when_killed(redis_url) -> None:
    async def scenario(pool, line):
        heard, patterns = [], await pool.execute_command("PUBSUB", "NUMPAT")
        listening = asyncio.create_task(
            line.listen("test:event:*", lambda channel, data: heard.append((channel, data)))
        )
        deadline = asyncio.get_running_loop().time() + 5
        while await pool.execute_command("PUBSUB", "NUMPAT") == patterns:  # not yet subscribed
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        for n in range(100):
            await pool.publish("test:event:a" if n % 2 else "test:other", str(n))
        await pool.publish("test:event:b", "last")
        while not heard or heard[-1][1] != b"last":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        await pool.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(listening, 5)
        return heard

    heard = run(redis_url, scenario)
    expected = [(b"test:event:a", str(n).encode()) for n in range(1, 100, 2)]
    assert heard == [*expected, (b"test:event:b", b"last")]
