"""Catalog's request and response bodies. Events come in three kinds, told apart by `kind`."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from flashbid_shared import inputs
from flashbid_shared.contracts import Event, EventFigures, EventStatus, Scoring
from flashbid_shared.inputs import CONTROL, END, Money

Name = Annotated[inputs.Line, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[inputs.Text, msgspec.Meta(max_length=5000)]
Category = Annotated[str, msgspec.Meta(pattern=rf"^[a-z0-9][a-z0-9 &'-]{{0,63}}{END}")]
ImageUrl = Annotated[str, msgspec.Meta(pattern=rf"^https?://[^\s{CONTROL}]+{END}", max_length=2048)]
Currency = Annotated[str, msgspec.Meta(pattern=rf"^[A-Z]{{3}}{END}")]
Increment = Annotated[str, msgspec.Meta(pattern=rf"^(?:ladder|{inputs.AMOUNT}){END}")]
Moment = Annotated[datetime, msgspec.Meta(tz=True)]
Units = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=3600)]


class Input(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class Patch(Input, kw_only=True):
    """The fields to change, at least one (an UPDATE of nothing is not an edit)."""

    def __post_init__(self) -> None:
        if all(getattr(self, name) is UNSET for name in self.__struct_fields__):
            raise ValueError("Nothing to change: give at least one field")


# ------------------------------------------------------------------------------- items


class ItemInput(Input, kw_only=True):
    name: Name
    description: Text = ""
    category: Category
    image_url: ImageUrl | None = None


class ItemPatch(Patch, kw_only=True):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    image_url: ImageUrl | UnsetType | None = UNSET


class Item(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    description: str
    category: str
    image_url: str | None
    created_at: datetime
    archived: bool = False


class ItemPage(msgspec.Struct, kw_only=True):
    items: list[Item]
    total: int
    limit: int
    offset: int


# ------------------------------------------------------------------------------ events


class FlashOfferInput(Input, kw_only=True):
    item_id: UUID
    price: Money
    stock: Units
    per_user_limit: Units = 1


class LotInput(Input, kw_only=True):
    item_id: UUID
    starting_price: Money
    increment: Increment = "ladder"
    reserve_price: Money | None = None
    buy_now_price: Money | None = None


class SessionInput(Input, kw_only=True):
    item_id: UUID
    upset_price: Money
    inventory: Units


class EventFields(Input, kw_only=True):
    title: Name
    description: Text = ""
    currency: Currency = "EUR"
    starts_at: Moment
    ends_at: Moment


class FlashSaleInput(EventFields, kw_only=True, tag="flash_sale", tag_field="kind"):
    offers: Annotated[list[FlashOfferInput], msgspec.Meta(min_length=1, max_length=50)]
    reservation_timeout_seconds: Annotated[int, msgspec.Meta(ge=60, le=3600)] = 600


class AuctionInput(EventFields, kw_only=True, tag="auction", tag_field="kind"):
    offers: Annotated[list[LotInput], msgspec.Meta(min_length=1, max_length=200)]
    soft_close_seconds: Seconds = 120
    extension_seconds: Seconds = 120


class RankedInput(EventFields, kw_only=True, tag="ranked", tag_field="kind"):
    offers: Annotated[list[SessionInput], msgspec.Meta(min_length=1, max_length=50)]
    scoring: Scoring


EventInput = FlashSaleInput | AuctionInput | RankedInput


class EventPatch(Patch, kw_only=True):
    """Fields to change; `offers`, when given, replaces the whole list (the event's kind
    decides their shape). Checked again as a whole after the merge."""

    title: Name | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    starts_at: Moment | UnsetType = UNSET
    ends_at: Moment | UnsetType = UNSET
    offers: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=200)] | UnsetType = UNSET
    reservation_timeout_seconds: int | UnsetType = UNSET
    soft_close_seconds: int | UnsetType = UNSET
    extension_seconds: int | UnsetType = UNSET
    scoring: dict[str, Any] | UnsetType = UNSET


class EventPage(msgspec.Struct, kw_only=True):
    items: list[Event]
    total: int
    limit: int
    offset: int


class Transition(msgspec.Struct, kw_only=True):
    from_status: EventStatus
    to_status: EventStatus
    at: datetime
    due_at: datetime | None
    actor: str


class AdminEvent(msgspec.Struct, kw_only=True):
    event: Event
    transitions: list[Transition]
    synced_version: int


Sort = Literal["starts_at", "-starts_at", "ends_at", "title", "-created_at"]


class DashboardEvent(msgspec.Struct, kw_only=True):
    id: UUID
    kind: str
    title: str
    status: EventStatus
    starts_at: datetime
    ends_at: datetime
    figures: EventFigures | None
    figures_available: bool


class Dashboard(msgspec.Struct, kw_only=True):
    events_by_status: dict[str, int]
    events: list[DashboardEvent]
