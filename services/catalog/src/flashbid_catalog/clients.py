"""Catalog's calls to purchase (flash sales) and bidding (auctions, ranked sessions)."""

import logging

import httpx
import msgspec

from flashbid_shared.contracts import Event, EventFigures

log = logging.getLogger(__name__)


class Peers:
    """The service that runs each kind of event, reached with catalog's service token."""

    def __init__(
        self, http: httpx.AsyncClient, purchase_url: str, bidding_url: str, figures_timeout: float
    ) -> None:
        self.http, self.figures_timeout = http, figures_timeout
        self.bases = {
            "flash_sale": f"{purchase_url}/api/purchase/internal/events",
            "auction": f"{bidding_url}/api/bidding/internal/events",
            "ranked": f"{bidding_url}/api/bidding/internal/events",
        }

    async def push(self, event: Event) -> None:
        """Idempotent: the receiver keeps the highest version it has seen."""
        response = await self.http.put(
            f"{self.bases[event.kind]}/{event.id}",
            content=msgspec.json.encode(event),
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()

    async def figures(self, event: Event) -> EventFigures | None:
        """The event's sales or bidding figures, or None if its service does not answer."""
        try:
            response = await self.http.get(
                f"{self.bases[event.kind]}/{event.id}/figures", timeout=self.figures_timeout
            )
            response.raise_for_status()
            return msgspec.json.decode(response.content, type=EventFigures)
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            log.info("no figures for event %s: %r", event.id, exc)
            return None
