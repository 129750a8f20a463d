from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

Amount = Decimal  # checked by domain.check_amount (the currency decides its places)


class Input(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class LotBid(Input, kw_only=True):
    amount: Amount
    max_amount: Amount | None = None


class SessionBid(Input, kw_only=True):
    price: Amount


class Leader(msgspec.Struct, kw_only=True):
    display_name: str


class LotState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A lot as everyone sees it; `leader_id` stays on the server (watchers get `you_lead`)."""

    lot_id: UUID
    event_id: UUID
    status: str
    current_price: Decimal | None
    min_next_bid: Decimal
    bid_count: int
    leader: Leader | None
    ends_at: datetime
    reserve_met: bool
    buy_now_price: Decimal | None = None
    leader_id: UUID | None = None
    you_lead: bool = False

    def seen_by(self, user_id: UUID | None) -> "LotState":
        return msgspec.structs.replace(
            self, leader_id=None, you_lead=user_id is not None and self.leader_id == user_id
        )


class BidLine(msgspec.Struct, kw_only=True):
    bidder: Leader
    amount: Decimal
    automatic: bool
    placed_at: datetime


class BoardLine(msgspec.Struct, kw_only=True):
    rank: int
    display_name: str
    price: str
    score: float


class Standing(msgspec.Struct, kw_only=True):
    offer_id: UUID
    price: str | None
    score: float | None
    rank: int | None
    winning: bool
    inventory: int


class EventRef(msgspec.Struct, kw_only=True):
    id: UUID
    kind: str
    title: str
    status: str
    starts_at: datetime
    ends_at: datetime


class Won(msgspec.Struct, kw_only=True):
    event_id: UUID
    title: str
    offer_id: UUID
    item_id: UUID
    price: Decimal
    currency: str


class LotResult(msgspec.Struct, kw_only=True):
    lot_id: UUID
    status: str
    winner: Leader | None
    final_price: Decimal | None
    reserve_met: bool


class SessionResult(msgspec.Struct, kw_only=True):
    offer_id: UUID
    status: str
    inventory: int
    final_price: Decimal | None
    rankings: list[BoardLine]


class Results(msgspec.Struct, kw_only=True):
    event_id: UUID
    settled: bool
    lots: list[LotResult]
    sessions: list[SessionResult]
