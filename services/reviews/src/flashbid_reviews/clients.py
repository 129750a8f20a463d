"""Reviews' calls to catalog (does this item or event exist?) and purchase (did this user buy
this item?), with short timeouts and caches: a page of reviews asks nobody once warm."""

import logging
import time
from collections.abc import Hashable
from typing import Generic, TypeVar
from uuid import UUID

import httpx
import msgspec

from flashbid_shared.contracts import Event, Purchased

log = logging.getLogger(__name__)
V = TypeVar("V")


class TtlCache(Generic[V]):
    """A dict whose entries expire; cleared whole if it grows too big (ids are unbounded)."""

    def __init__(self, max_size: int = 100_000) -> None:
        self.max_size = max_size
        self._entries: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: Hashable, value: V, ttl: float) -> None:
        if len(self._entries) >= self.max_size:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + ttl, value)


class Catalog:
    """Whether items and events exist: True, False, or None when catalog does not answer.
    A known one is remembered for minutes (they are not deleted once reviewed), an unknown one
    for seconds (it may be created any moment)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        catalog_url: str,
        *,
        timeout: float = 1.5,
        known_ttl: float = 300.0,
        unknown_ttl: float = 5.0,
    ) -> None:
        self.http, self.base, self.timeout = http, f"{catalog_url}/api/catalog", timeout
        self.known_ttl, self.unknown_ttl = known_ttl, unknown_ttl
        self._items: TtlCache[bool] = TtlCache()
        self._events: TtlCache[bool] = TtlCache()

    async def item_exists(self, item_id: UUID) -> bool | None:
        if (known := self._items.get(item_id)) is not None:
            return known
        response = await self._get(f"{self.base}/items/{item_id}")
        if response is None:
            return None
        exists = response.status_code == 200
        self._items.put(item_id, exists, self.known_ttl if exists else self.unknown_ttl)
        return exists

    async def event_exists(self, event_id: UUID) -> bool | None:
        """Published events only: a draft is nobody's business but the admins'."""
        if (known := self._events.get(event_id)) is not None:
            return known
        response = await self._get(f"{self.base}/internal/events/{event_id}")
        if response is None:
            return None
        exists = False
        if response.status_code == 200:
            try:
                exists = msgspec.json.decode(response.content, type=Event).status != "draft"
            except msgspec.DecodeError as exc:
                log.warning("catalog sent an event we cannot read: %r", exc)
                return None
        self._events.put(event_id, exists, self.known_ttl if exists else self.unknown_ttl)
        return exists

    async def _get(self, url: str) -> httpx.Response | None:
        """The answer if it is 200 or 404; None for anything else."""
        try:
            response = await self.http.get(url, timeout=self.timeout)
        except httpx.HTTPError as exc:
            log.warning("catalog did not answer %s: %r", url, exc)
            return None
        if response.status_code not in (200, 404):
            log.warning("catalog answered %s to %s", response.status_code, url)
            return None
        return response


class Purchase:
    """Whether a user has a confirmed order of an item. Only a yes is cached: a no may turn into
    a yes with the next order, and a review is written far less often than it is read."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        purchase_url: str,
        *,
        timeout: float = 1.0,
        yes_ttl: float = 600.0,
    ) -> None:
        self.http, self.timeout, self.yes_ttl = http, timeout, yes_ttl
        self.url = f"{purchase_url}/api/purchase/internal/purchases"
        self._bought: TtlCache[bool] = TtlCache()

    async def purchased(self, user_id: UUID, item_id: UUID) -> bool | None:
        """None when purchase does not answer in time: ask again later."""
        if self._bought.get((user_id, item_id)):
            return True
        try:
            response = await self.http.get(
                self.url,
                params={"user_id": str(user_id), "item_id": str(item_id)},
                timeout=self.timeout,
            )
            response.raise_for_status()
            purchased = msgspec.json.decode(response.content, type=Purchased).purchased
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            log.info("purchase did not answer for %s/%s: %r", user_id, item_id, exc)
            return None
        if purchased:
            self._bought.put((user_id, item_id), True, self.yes_ttl)
        return purchased
