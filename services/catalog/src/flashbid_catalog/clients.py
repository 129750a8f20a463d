"""Catalog's calls to purchase (flash sales) and bidding (auctions, ranked sessions)."""

import asyncio
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
        """To the service that runs the event, and to purchase too when an auction or ranked
        session is cancelled (its winners' orders are void). Idempotent: a receiver keeps the
        highest version it has seen."""
        bases = {self.bases[event.kind]}
        if event.status == "cancelled":
            bases.add(self.bases["flash_sale"])
        responses = await asyncio.gather(
            *(
                self.http.put(
                    f"{base}/{event.id}",
                    content=msgspec.json.encode(event),
                    headers={"Content-Type": "application/json"},
                )
                for base in bases
            )
        )
        for response in responses:
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
