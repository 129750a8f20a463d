from decimal import Decimal
from typing import Annotated
from uuid import UUID

import msgspec

from flashbid_shared.contracts import Order


class OrderRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    offer_id: UUID
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1


class OrderPage(msgspec.Struct, kw_only=True):
    items: list[Order]
    total: int
    limit: int
    offset: int


class StockLine(msgspec.Struct, kw_only=True):
    offer_id: UUID
    stock: int
    remaining: int


class OfferStats(msgspec.Struct, kw_only=True):
    offer_id: UUID
    stock: int
    remaining: int
    reserved: int
    confirmed: int
    orders: int
    revenue: Decimal


class Stats(msgspec.Struct, kw_only=True):
    """An event's figures. `conversion`: the share of orders made that were confirmed;
    `cancelled`: the event was cancelled (its reserved orders void, counted nowhere)."""

    event_id: UUID
    cancelled: bool
    stock: int
    remaining: int
    reserved: int
    confirmed: int
    orders: int
    units_sold: int
    revenue: Decimal
    conversion: float
    offers: list[OfferStats]
