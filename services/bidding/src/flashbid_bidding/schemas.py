from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from flashbid_shared.inputs import Money as Amount  # the currency's places: domain.check_amount


class Input(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class LotBid(Input, kw_only=True):
    amount: Amount
    max_amount: Amount | None = None

    def __post_init__(self) -> None:
        if self.max_amount is not None and self.max_amount < self.amount:
            raise ValueError("max_amount cannot be below amount")


class SessionBid(Input, kw_only=True):
    price: Amount


class Leader(msgspec.Struct, kw_only=True):
    display_name: str


class LotView(msgspec.Struct, kw_only=True):
    """A lot as a bidder sees it: `you_lead` is about the caller."""

    lot_id: UUID
    event_id: UUID
    status: str
    current_price: Decimal | None
    min_next_bid: Decimal
    bid_count: int
    leader: Leader | None
    you_lead: bool
    ends_at: datetime
    reserve_met: bool
    buy_now_price: Decimal | None


class LotState(msgspec.Struct, kw_only=True):
    """A lot as the server keeps it (in Redis too): with its leader's id."""

    lot_id: UUID
    event_id: UUID
    status: str
    current_price: Decimal | None
    min_next_bid: Decimal
    bid_count: int
    leader: Leader | None
    leader_id: UUID | None
    ends_at: datetime
    reserve_met: bool
    buy_now_price: Decimal | None

    def seen_by(self, user_id: UUID | None) -> LotView:
        fields = msgspec.structs.asdict(self)
        leader_id = fields.pop("leader_id")
        return LotView(**fields, you_lead=user_id is not None and leader_id == user_id)


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


class EventRefPage(msgspec.Struct, kw_only=True):
    items: list[EventRef]
    total: int
    limit: int
    offset: int


class WonPage(msgspec.Struct, kw_only=True):
    items: list[Won]
    total: int
    limit: int
    offset: int


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
    """`settled` once every lot and session is; `cancelled` when the event was (no winners)."""

    event_id: UUID
    settled: bool
    cancelled: bool
    lots: list[LotResult]
    sessions: list[SessionResult]


# ------------------------------------------------------------- WebSocket client messages


class BidMessage(Input, tag_field="type", tag="bid", kw_only=True):
    """A bid sent over the WebSocket: on a lot (`lot_id`, `amount`, `max_amount`) or in a
    ranked session (`offer_id`, `price`), with the rules and codes of the HTTP routes."""

    lot_id: UUID | None = None
    amount: Amount | None = None
    max_amount: Amount | None = None
    offer_id: UUID | None = None
    price: Amount | None = None

    def __post_init__(self) -> None:
        if None not in (self.amount, self.max_amount) and self.max_amount < self.amount:  # type: ignore[operator]
            raise ValueError("max_amount cannot be below amount")
        lot, ranked = (self.lot_id, self.amount, self.max_amount), (self.offer_id, self.price)
        if not (None not in lot[:2] and ranked == (None, None)) and not (
            None not in ranked and lot == (None, None, None)
        ):
            raise ValueError(
                "A bid has `lot_id` and `amount` (and `max_amount`), or `offer_id` and `price`"
            )


class PingMessage(Input, tag_field="type", tag="ping", kw_only=True):
    """Answered `pong` at once: its `server_time` and the round trip give the clock offset."""


ClientMessage = BidMessage | PingMessage  # told apart by `type`
