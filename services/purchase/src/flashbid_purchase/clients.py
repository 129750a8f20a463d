"""Purchase's calls to catalog."""

from uuid import UUID

import httpx
import msgspec

from flashbid_shared.contracts import Event, StockState

OPEN = ("scheduled", "live", "sold_out")


class Catalog:
    def __init__(self, http: httpx.AsyncClient, catalog_url: str) -> None:
        self.http, self.base = http, f"{catalog_url}/api/catalog/internal/events"

    async def open_flash_sales(self) -> list[Event]:
        response = await self.http.get(
            self.base, params=[("kind", "flash_sale"), *(("status", s) for s in OPEN)]
        )
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=list[Event])

    async def event(self, event_id: UUID) -> Event | None:
        response = await self.http.get(f"{self.base}/{event_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=Event)

    async def report_stock(self, event_id: UUID, sold_out: bool) -> None:
        response = await self.http.put(
            f"{self.base}/{event_id}/stock-state",
            content=msgspec.json.encode(StockState(sold_out=sold_out)),
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()
