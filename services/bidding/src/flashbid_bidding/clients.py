"""Bidding's calls to catalog, purchase and auth."""

from uuid import UUID

import httpx
import msgspec

from flashbid_shared.contracts import Event

OPEN = ("scheduled", "live")


class Peers:
    def __init__(
        self, http: httpx.AsyncClient, catalog_url: str, purchase_url: str, auth_url: str
    ) -> None:
        self.http = http
        self.events = f"{catalog_url}/api/catalog/internal/events"
        self.orders = f"{purchase_url}/api/purchase/internal/orders"
        self.notifications = f"{auth_url}/api/auth/internal/notifications"

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

    async def perform(self, kind: str, payload: dict) -> None:
        """A settlement follow-up: `award` (an order in purchase) or `notify` (an email)."""
        url = self.orders if kind == "award" else self.notifications
        response = await self.http.post(url, json=payload)
        response.raise_for_status()
