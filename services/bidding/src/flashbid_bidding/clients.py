"""Bidding's calls to catalog, purchase and auth."""

import logging
from datetime import datetime
from uuid import UUID

import httpx
import msgspec

from flashbid_shared.contracts import Event, LotsEnd
from flashbid_shared.mail import notify

log = logging.getLogger(__name__)
OPEN = ("scheduled", "live")


class Peers:
    def __init__(
        self, http: httpx.AsyncClient, catalog_url: str, purchase_url: str, auth_url: str
    ) -> None:
        self.http = http
        self.events = f"{catalog_url}/api/catalog/internal/events"
        self.orders = f"{purchase_url}/api/purchase/internal/orders"
        self.auth_url = auth_url

    async def open_events(self) -> list[Event]:
        found = []
        for kind in ("auction", "ranked"):
            response = await self.http.get(
                self.events, params=[("kind", kind), *(("status", s) for s in OPEN)]
            )
            response.raise_for_status()
            found += msgspec.json.decode(response.content, type=list[Event])
        return found

    async def event(self, event_id: UUID) -> Event | None:
        response = await self.http.get(f"{self.events}/{event_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=Event)

    async def award(self, order: dict) -> None:
        """A winner's reserved order in purchase (once per winner and offer). A cancelled
        event's is refused for good (409): there is nothing to retry."""
        response = await self.http.post(self.orders, json=order)
        if response.status_code == 409:
            log.info("purchase refused the award %r: %s", order, response.text)
            return
        response.raise_for_status()

    async def report_lots_end(self, report: dict) -> None:
        """When a live auction's lots end, or that they all have closed (which ends it)."""
        end = LotsEnd(ends_at=datetime.fromisoformat(report["ends_at"]), closed=report["closed"])
        response = await self.http.put(
            f"{self.events}/{report['event_id']}/lots-end",
            content=msgspec.json.encode(end),
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()

    async def notify(self, notifications: list[dict]) -> None:
        await notify(self.http, self.auth_url, notifications)
