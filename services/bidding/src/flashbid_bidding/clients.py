"""Bidding's calls to catalog, purchase and auth."""

import logging
from uuid import UUID

import httpx
import msgspec

from flashbid_shared.contracts import Event, NotificationsTaken

log = logging.getLogger(__name__)
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

    async def award(self, order: dict) -> None:
        """A winner's reserved order in purchase (once per winner and offer)."""
        response = await self.http.post(self.orders, json=order)
        response.raise_for_status()

    async def notify(self, notifications: list[dict]) -> None:
        """Emails through auth, together. One that auth refuses (an unknown user or template)
        would be refused again: it is logged, not retried. A malformed one, which makes auth
        refuse the whole call, is found by sending each alone, so the others still go."""
        response = await self.http.post(self.notifications, json={"notifications": notifications})
        if response.status_code == 422:
            if len(notifications) == 1:
                log.error("auth refused a malformed email: %r", notifications[0])
            else:
                for notification in notifications:
                    await self.notify([notification])
            return
        response.raise_for_status()
        refused = msgspec.json.decode(response.content, type=NotificationsTaken).refused
        if refused:
            count, example = f"{len(refused)} of {len(notifications)}", notifications[refused[0]]
            log.warning("auth refused %s emails, the first: %r", count, example)
