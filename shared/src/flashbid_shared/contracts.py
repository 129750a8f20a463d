"""The msgspec types that cross service boundaries, used by both the client and the server."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import msgspec


class TokenGrant(msgspec.Struct, kw_only=True):
    """What `POST /api/auth/token` and `POST /api/auth/login` answer."""

    access_token: str
    expires_in: int
    token_type: str = "Bearer"
    refresh_token: str | None = None


class Jwk(msgspec.Struct, kw_only=True, omit_defaults=True):
    kty: str
    kid: str
    alg: str
    use: str = "sig"
    crv: str | None = None
    x: str | None = None
    n: str | None = None
    e: str | None = None


class Jwks(msgspec.Struct):
    keys: list[Jwk]


class UserLookup(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /internal/users/lookup` on auth."""

    ids: Annotated[list[UUID], msgspec.Meta(max_length=500)]


class UserSummary(msgspec.Struct, kw_only=True):
    id: UUID
    display_name: str
    weight: float
    email_verified: bool
    is_active: bool
    role: str = "customer"  # what an auth that does not say grants: no admin power


class UserSummaries(msgspec.Struct, kw_only=True):
    users: list[UserSummary]


USER_CHANGES_PAGE = 1_000  # at most this many users per answer: a full one means more to come


class UserChanges(msgspec.Struct, kw_only=True):
    """`GET /internal/users/changes?since=` on auth: the users whose summary changed after
    `since` (deactivated, demoted or promoted, verified, reweighted, renamed), and the `since`
    of the next call."""

    users: list[UserSummary]
    until: datetime


class Notification(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An email to a user from a template (`outbid`, `won`, `event_starting`,
    `event_ended`, `order_cancelled`); `data` fills the template."""

    user_id: UUID
    template: str
    data: dict[str, str] = msgspec.field(default_factory=dict)


class Notifications(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /internal/notifications` on auth: emails written together (a ranked storm's
    outbid emails are thousands, a minute after it)."""

    notifications: Annotated[list[Notification], msgspec.Meta(min_length=1, max_length=500)]


class NotificationsTaken(msgspec.Struct, kw_only=True):
    """The positions of the notifications not written: their user is unknown, or their
    template is (or lacks a field). Sending them again would not help."""

    refused: list[int]


# ------------------------------------------------------------------------ events (catalog)

# ISO 4217 minor units of the currencies a shop may sell in (catalog refuses others).
MINOR_UNITS = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "HUF": 2, "RON": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CNY": 2, "INR": 2, "BRL": 2, "MXN": 2,
    "ZAR": 2, "SGD": 2, "HKD": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3,
}  # fmt: skip


EventKind = Literal["flash_sale", "auction", "ranked"]
EventStatus = Literal["draft", "scheduled", "live", "sold_out", "ended", "cancelled"]


class ItemRef(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    category: str
    image_url: str | None = None


class Offer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One thing offered in an event; which fields are set depends on the event's kind:
    flash_sale: price, stock, per_user_limit; auction (a lot): starting_price, increment
    (an amount or "ladder"), reserve_price, buy_now_price; ranked: upset_price, inventory."""

    id: UUID
    item_id: UUID
    item: ItemRef | None = None
    price: Decimal | None = None
    stock: int | None = None
    per_user_limit: int | None = None
    starting_price: Decimal | None = None
    increment: str | None = None
    reserve_price: Decimal | None = None
    buy_now_price: Decimal | None = None
    upset_price: Decimal | None = None
    inventory: int | None = None


class Scoring(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Ranked sessions. weight: alpha*price + beta/(gamma + user_weight);
    time: alpha*price + beta/(seconds_since_start + 1) + gamma*user_weight."""

    formula: Literal["weight", "time"]
    alpha: Annotated[float, msgspec.Meta(ge=0, le=1e6)] = 1.0
    beta: Annotated[float, msgspec.Meta(ge=0, le=1e9)] = 0.0
    gamma: Annotated[float, msgspec.Meta(ge=0, le=1e6)] = 1.0


class Event(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An event as catalog publishes it, and as catalog pushes it to purchase (flash sales) or
    bidding (auctions, ranked sessions) on every change: `PUT /internal/events/{id}`.
    A receiver keeps the highest `version` it has seen, so late or repeated pushes are harmless.
    """

    id: UUID
    kind: EventKind
    title: str
    description: str
    status: EventStatus
    currency: str
    starts_at: datetime
    ends_at: datetime
    offers: list[Offer]
    version: int
    created_at: datetime
    updated_at: datetime
    reservation_timeout_seconds: int | None = None
    soft_close_seconds: int | None = None
    extension_seconds: int | None = None
    scoring: Scoring | None = None


class StockState(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`PUT /internal/events/{id}/stock-state` on catalog: purchase says whether a live flash
    sale has any unit left (`sold_out`), or has stock again after a cancellation."""

    sold_out: bool


class LotsEnd(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`PUT /internal/events/{id}/lots-end` on catalog: bidding says when a live auction's
    lots end (`ends_at`, the latest, which a late bid may have moved) and whether they all
    have closed (`closed`), which ends the event."""

    ends_at: datetime
    closed: bool


class EventFigures(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`GET /internal/events/{id}/figures` on purchase and bidding, for the admin dashboard."""

    orders: int | None = None
    units_sold: int | None = None
    revenue: Decimal | None = None
    conversion: float | None = None
    bids: int | None = None
    participants: int | None = None


# -------------------------------------------------------------------------------- purchase


class AwardOrder(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /internal/orders` on purchase: bidding's winner of a lot or a ranked session gets
    a reserved order at the winning price. Idempotent per (offer_id, user_id)."""

    event_id: UUID
    offer_id: UUID
    item_id: UUID
    user_id: UUID
    kind: Literal["auction", "ranked"]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1
    unit_price: Decimal
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    expires_at: datetime


class Order(msgspec.Struct, kw_only=True):
    id: UUID
    offer_id: UUID
    event_id: UUID
    item_id: UUID
    kind: str
    quantity: int
    unit_price: Decimal
    total: Decimal
    currency: str
    status: Literal["reserved", "confirmed", "cancelled", "expired"]
    expires_at: datetime
    created_at: datetime


class Purchased(msgspec.Struct, kw_only=True):
    """`GET /internal/purchases?user_id=&item_id=` on purchase: a confirmed order exists."""

    purchased: bool
