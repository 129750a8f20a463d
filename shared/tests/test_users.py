"""The user directory: one lookup in auth for a burst of users, answers cached for `ttl`,
refreshed in the background near their end, never used past it; kept in step with auth's
changes feed while it is followed."""

import asyncio
import uuid

import httpx
import msgspec
import pytest

from flashbid_shared.users import UserDirectory

pytestmark = pytest.mark.anyio
TTL = 60.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeAuth:
    """Auth's lookup route (who was asked for in each call, weights as set now) and its
    changes feed (the users changed since the feed's last answer)."""

    def __init__(self) -> None:
        self.weights: dict[uuid.UUID, float] = {}
        self.calls: list[set[uuid.UUID]] = []
        self.changed: set[uuid.UUID] = set()
        self.feed_answers = 0
        self.down = False
        self.refused = 0
        self.unverified: set[uuid.UUID] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            self.refused += 1
            return httpx.Response(503)
        if request.url.path.endswith("/changes"):
            ids, self.changed = self.changed, set()
            self.feed_answers += 1
            return httpx.Response(
                200, json={"users": self.users(ids), "until": "2026-11-27T10:00:00Z"}
            )
        ids = {uuid.UUID(i) for i in msgspec.json.decode(request.content)["ids"]}
        self.calls.append(ids)
        return httpx.Response(200, json={"users": self.users(ids)})

    def users(self, ids: set[uuid.UUID]) -> list[dict]:
        return [
            {"id": str(i), "display_name": "Ada", "weight": self.weights[i],
             "email_verified": i not in self.unverified, "is_active": True}
            for i in ids if i in self.weights
        ]  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def setup():
    auth, clock = FakeAuth(), Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(auth)) as http:
        yield auth, clock, UserDirectory(http, "http://auth", ttl=TTL, window=0, clock=clock)


async def until(check) -> None:
    """Poll `check` (a plain or an async callable) until true, yielding between; 2 s at most."""
    async with asyncio.timeout(2):
        while True:
            if await result if asyncio.iscoroutine(result := check()) else result:
                return
            await asyncio.sleep(0)


async def cached_user(auth: FakeAuth, users: UserDirectory) -> uuid.UUID:
    """A user of weight 1.0, looked up once."""
    user = uuid.uuid4()
    auth.weights[user] = 1.0
    await users.get(user)
    return user


async def weight_of(users: UserDirectory, user: uuid.UUID, weight: float) -> bool:
    return (await users.get(user)).weight == weight


async def test_a_burst_of_users_is_one_lookup_then_cached(setup) -> None:
    auth, _, users = setup
    ids = [uuid.uuid4() for _ in range(3)]
    auth.weights |= dict.fromkeys(ids, 1.0)
    stranger = uuid.uuid4()

    found = await asyncio.gather(*(users.get(i) for i in [*ids, ids[0], stranger]))

    assert [u.id if u else None for u in found] == [*ids, ids[0], None]
    assert auth.calls == [{*ids, stranger}]
    assert (await users.get(ids[1])).weight == 1.0
    assert len(auth.calls) == 1


async def test_an_entry_near_its_end_answers_at_once_and_is_refreshed_behind(setup) -> None:
    auth, clock, users = setup
    user = await cached_user(auth, users)
    auth.weights[user] = 2.0

    clock.now += TTL * 0.5  # fresh: no lookup
    assert (await users.get(user)).weight == 1.0
    assert len(auth.calls) == 1

    clock.now += TTL * 0.3  # in its last quarter: the cached answer, without waiting
    answers = [await users.get(user) for _ in range(5)]
    assert [a.weight for a in answers] == [1.0] * 5
    assert len(auth.calls) == 1
    await until(lambda: len(auth.calls) == 2)  # one refresh for the five
    await until(lambda: weight_of(users, user, 2.0))

    clock.now += TTL * 0.9  # the refreshed entry lives a full ttl from its refresh
    assert (await users.get(user)).weight == 2.0
    assert len(auth.calls) == 2


async def test_an_expired_entry_is_never_used(setup) -> None:
    auth, clock, users = setup
    user = await cached_user(auth, users)
    auth.weights[user] = 3.0
    clock.now += TTL + 1

    assert (await users.get(user)).weight == 3.0
    assert len(auth.calls) == 2


async def test_auth_away_a_cached_user_is_still_known_until_expiry(setup) -> None:
    auth, clock, users = setup
    known = await cached_user(auth, users)
    auth.down = True

    assert await users.get(uuid.uuid4()) is None
    clock.now += TTL * 0.9  # each refresh fails: the entry stays until its end
    assert (await users.get(known)).weight == 1.0
    await until(lambda: auth.refused == 2)

    async def asked_again() -> bool:  # so the failed refresh is over, and the entry kept
        assert (await users.get(known)).weight == 1.0
        return auth.refused == 3

    await until(asked_again)
    clock.now += TTL * 0.2
    assert await users.get(known) is None


async def test_a_change_in_auth_reaches_a_followed_cache_within_a_round(setup) -> None:
    auth, clock, users = setup
    following = asyncio.create_task(users.follow(every=0.001))
    await until(lambda: auth.feed_answers > 0)
    user = await cached_user(auth, users)

    auth.weights[user], auth.changed = 2.0, {user}  # the admin reweights them
    await until(lambda: weight_of(users, user, 2.0))
    assert len(auth.calls) == 1  # from the feed, not a lookup

    answers = auth.feed_answers
    clock.now += TTL * 5  # long past the ttl, and the feed still answering: kept
    await until(lambda: auth.feed_answers > answers)
    assert (await users.get(user)).weight == 2.0
    assert len(auth.calls) == 1

    auth.down = True  # the feed away: the entry lives its ttl no longer
    clock.now += 1
    assert await users.get(user) is None
    following.cancel()


async def test_a_strict_answer_is_cached_only_while_the_feed_vouches_for_it(setup) -> None:
    auth, clock, users = setup
    following = asyncio.create_task(users.follow(every=0.001))
    await until(lambda: auth.feed_answers > 0)
    user = await cached_user(auth, users)

    assert (await users.get(user, strict=True)).weight == 1.0
    assert len(auth.calls) == 1  # the feed caught up less than a second ago: from the cache

    auth.down = True  # the feed away: past its bound, a strict answer is looked up, and fails
    clock.now += users.bound
    assert await users.get(user, strict=True) is None
    assert (await users.get(user)).weight == 1.0  # a lenient one lives its ttl
    auth.down = False
    auth.weights[user] = 2.0
    assert (await users.get(user, strict=True)).weight == 2.0
    assert len(auth.calls) == 2
    following.cancel()


async def test_an_unverified_user_is_asked_about_again_until_verified(setup) -> None:
    auth, _, users = setup
    user = uuid.uuid4()
    auth.weights[user], auth.unverified = 1.0, {user}
    assert await users.verified(user) is False
    assert len(auth.calls) == 2  # the cached "no" is asked again each time

    auth.unverified = set()  # they verify: their next request knows it
    assert await users.verified(user) is True
    assert await users.verified(user) is True
    assert len(auth.calls) == 3  # asked once more, then from the cache
