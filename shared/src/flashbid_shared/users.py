"""What other services know about users: auth's `/internal/users/lookup`, cached and batched
so that a burst of buyers or bidders becomes a few lookups, not one per request.

While `follow` keeps up with auth's changes feed (`/internal/users/changes`, asked every half
second), a change to a cached user (deactivated, demoted, verified, reweighted, renamed)
replaces its entry within about half a second, and entries live `kept` seconds; otherwise (auth
away) they live `ttl`, the longest a change can go unseen. An entry used in the last quarter of
its life is looked up again in the background, still answering from the cache meanwhile: the
bidders of a live auction, all first seen in its first seconds, would otherwise expire together
and each wait for auth on their next bid. An entry is never used past its life.

A `strict` answer (what admin power and writes are checked against) is never older than
`bound`: from the cache only while the feed has caught up within that time, else looked up
now; None if auth does not answer."""

import asyncio
import logging
import time
from collections.abc import Callable
from uuid import UUID

import httpx
import msgspec

from flashbid_shared.contracts import (
    USER_CHANGES_PAGE,
    UserChanges,
    UserLookup,
    UserSummaries,
    UserSummary,
)

log = logging.getLogger(__name__)


class UserDirectory:
    def __init__(
        self,
        http: httpx.AsyncClient,
        auth_url: str,
        ttl: float = 60.0,
        window: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
        kept: float = 900.0,
        bound: float = 1.0,
    ) -> None:
        self.http, self.url = http, f"{auth_url}/api/auth/internal/users/lookup"
        self.changes_url = f"{auth_url}/api/auth/internal/users/changes"
        self.ttl, self.window, self.clock, self.kept = ttl, window, clock, kept
        self.bound = bound
        self._cache: dict[UUID, tuple[float, UserSummary]] = {}  # when fetched, what
        self._covered_from = float("inf")  # entries fetched since are in the feed's sight
        self._followed_at = float("-inf")  # when the feed's last answer that caught up was asked
        self._grace = 1.5  # the feed is followed if it caught up this recently
        self._waiting: dict[UUID, asyncio.Future[UserSummary | None]] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # kept until done (asyncio holds weakly)

    async def get(self, user_id: UUID, *, strict: bool = False) -> UserSummary | None:
        """The user, or None if auth does not know them (or does not answer); `strict`: as
        auth had them at most `bound` seconds ago."""
        cached = self._cache.get(user_id)
        if cached:
            now = self.clock()
            covered = cached[0] >= self._covered_from
            if not strict or (covered and now - self._followed_at < self.bound):
                followed = covered and now - self._followed_at < self._grace
                life, age = (self.kept if followed else self.ttl), now - cached[0]
                if age < life:
                    if age > life * 0.75:
                        self._ask(user_id)
                    return cached[1]
        return await self.lookup(user_id)

    async def lookup(self, user_id: UUID) -> UserSummary | None:
        """The user as auth has them now (batched with the other lookups of the moment)."""
        return await asyncio.shield(self._ask(user_id))

    async def verified(self, user_id: UUID) -> bool:
        """Whether the user's address is verified. While the answer is no, auth is asked each
        time: their token says no until it is refreshed, and verifying must unlock it at once."""
        user = await self.get(user_id)
        if user is not None and not user.email_verified:
            user = await self.lookup(user_id)
        return user is not None and user.email_verified

    async def follow(self, every: float = 0.5) -> None:
        """Apply auth's changes to the cached users, every `every` seconds, until cancelled."""
        self._grace = 3 * every
        since = None
        while True:
            caught_up = True
            try:
                params = {"since": since.isoformat()} if since else {}
                asked = self.clock()  # what auth answers was true at least from then
                response = await self.http.get(self.changes_url, params=params)
                response.raise_for_status()
                changes = msgspec.json.decode(response.content, type=UserChanges)
                now = self.clock()
                # auth answers the last few seconds' changes again each time: one that raced a
                # lookup (which then cached the user as they were) is applied on the next round
                for user in changes.users:
                    if user.id in self._cache:
                        self._cache[user.id] = (now, user)
                if since is None:
                    self._covered_from = now
                since, caught_up = changes.until, len(changes.users) < USER_CHANGES_PAGE
                if caught_up:
                    self._followed_at = asked
            except (httpx.HTTPError, msgspec.DecodeError) as exc:
                log.warning("user changes not followed: %r", exc)
            if caught_up:
                await asyncio.sleep(every)

    def _ask(self, user_id: UUID) -> "asyncio.Future[UserSummary | None]":
        """The pending answer about this user, asked in the next batch if not already."""
        if user_id not in self._waiting:
            self._waiting[user_id] = asyncio.get_running_loop().create_future()
            if self._flush is None:
                self._flush = asyncio.get_running_loop().call_later(self.window, self._send)
        return self._waiting[user_id]

    def _send(self) -> None:
        batch, self._waiting, self._flush = self._waiting, {}, None
        task = asyncio.ensure_future(self._lookup(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lookup(self, batch: dict[UUID, "asyncio.Future[UserSummary | None]"]) -> None:
        found: dict[UUID, UserSummary] = {}
        try:
            ids = list(batch)
            for start in range(0, len(ids), 500):
                body = msgspec.json.encode(UserLookup(ids=ids[start : start + 500]))
                response = await self.http.post(
                    self.url, content=body, headers={"Content-Type": "application/json"}
                )
                response.raise_for_status()
                users = msgspec.json.decode(response.content, type=UserSummaries).users
                found.update((user.id, user) for user in users)
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            log.warning("user lookup failed for %d users: %r", len(batch), exc)
        fetched = self.clock()
        for user_id, future in batch.items():
            user = found.get(user_id)
            if user is not None:
                self._cache[user_id] = (fetched, user)
            if not future.done():
                future.set_result(user)
        if len(self._cache) > 100_000:
            self._cache.clear()
