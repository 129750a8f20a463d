"""Catalog's rules: what a valid event is, and which status changes are allowed. No I/O."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from flashbid_catalog.schemas import AuctionInput, EventInput, FlashSaleInput, RankedInput
from flashbid_shared import inputs
from flashbid_shared.contracts import MINOR_UNITS, Event, EventStatus
from flashbid_shared.errors import DomainError

MAX_PRICE = Decimal("10000000")
MIN_DURATION, MAX_DURATION = timedelta(minutes=1), timedelta(days=60)
EDITABLE: frozenset[EventStatus] = frozenset({"draft", "scheduled"})
# action -> (statuses it applies to, the status it leads to)
ACTIONS: dict[str, tuple[frozenset[str], EventStatus]] = {
    "publish": (frozenset({"draft"}), "scheduled"),
    "open": (frozenset({"scheduled"}), "live"),
    "close": (frozenset({"live", "sold_out"}), "ended"),
    "cancel": (frozenset({"draft", "scheduled", "live", "sold_out"}), "cancelled"),
}
LADDER = "ladder"


class InvalidEvent(DomainError):
    pass


class EventNotFound(DomainError):
    pass


class ItemNotFound(DomainError):
    pass


class EventLocked(DomainError):
    pass


class InvalidTransition(DomainError):
    pass


class NotConfirmed(DomainError):
    """The change is made here, but a service that runs the event has not taken it yet."""


def money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]))


def check_event(
    event: EventInput, *, now: datetime, items: Mapping[UUID, bool], creating: bool = True
) -> None:
    """Everything a careless admin could get wrong, all at once. `items` maps the known item
    ids to whether they are archived (an archived item cannot go into a new offer)."""
    problems: list[dict[str, str]] = []

    def problem(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    def check_money(field: str, amount: Decimal | None) -> None:
        if amount is None:
            return
        places = MINOR_UNITS.get(event.currency)
        if not amount.is_finite() or amount <= 0 or amount > MAX_PRICE:
            problem(field, f"must be a positive amount up to {MAX_PRICE}")
        elif places is not None and -amount.as_tuple().exponent > places:  # type: ignore[operator]
            problem(field, f"{event.currency} has {places} decimal places; got {amount}")

    if event.currency not in MINOR_UNITS:
        problem("currency", f"unknown currency; use one of {', '.join(sorted(MINOR_UNITS))}")
    if event.ends_at <= event.starts_at:
        problem("ends_at", "must be after starts_at")
    elif not MIN_DURATION <= event.ends_at - event.starts_at <= MAX_DURATION:
        problem("ends_at", "an event lasts between one minute and 60 days")
    if creating and event.starts_at < now - timedelta(seconds=5):
        problem("starts_at", "is in the past; to start an event now, publish it and `open` it")

    for index, offer in enumerate(event.offers):
        at = f"offers[{index}]"
        if offer.item_id not in items:
            problem(f"{at}.item_id", f"no catalog item {offer.item_id}")
        elif items[offer.item_id] and creating:
            problem(f"{at}.item_id", f"item {offer.item_id} is archived")
        if isinstance(event, FlashSaleInput):
            check_money(f"{at}.price", offer.price)
            if offer.per_user_limit > offer.stock:
                problem(f"{at}.per_user_limit", "cannot be more than the stock")
        elif isinstance(event, AuctionInput):
            check_money(f"{at}.starting_price", offer.starting_price)
            if offer.increment != LADDER:
                try:
                    check_money(f"{at}.increment", Decimal(offer.increment))
                except ArithmeticError:
                    problem(f"{at}.increment", 'must be an amount such as "5.00", or "ladder"')
            check_money(f"{at}.reserve_price", offer.reserve_price)
            check_money(f"{at}.buy_now_price", offer.buy_now_price)
            if offer.reserve_price is not None and offer.reserve_price < offer.starting_price:
                problem(f"{at}.reserve_price", "cannot be below the starting price")
            floor = max(offer.starting_price, offer.reserve_price or offer.starting_price)
            if offer.buy_now_price is not None and offer.buy_now_price <= floor:
                problem(f"{at}.buy_now_price", "must be above the starting and reserve prices")
        else:
            check_money(f"{at}.upset_price", offer.upset_price)

    if isinstance(event, AuctionInput) and event.soft_close_seconds and not event.extension_seconds:
        problem("extension_seconds", "must be positive when soft_close_seconds is")
    if isinstance(event, RankedInput) and event.scoring.alpha <= 0:
        problem("scoring.alpha", "must be positive: the price has to count")
    if problems:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise InvalidEvent(detail, errors=problems)


def next_status(
    status: str, action: str, *, ends_at: datetime, now: datetime
) -> EventStatus | None:
    """The status `action` leads to, or None when the event is there already (a retry)."""
    allowed, target = ACTIONS[action]
    if status == target:
        return None
    if status not in allowed:
        raise InvalidTransition(f"Cannot {action} an event that is {status}.", event_status=status)
    if action in ("publish", "open") and ends_at <= now:
        raise InvalidTransition(f"Cannot {action}: the event's end has passed; edit ends_at.")
    return target


def check_editable(status: str) -> None:
    if status not in EDITABLE:
        raise EventLocked(
            f"An event that is {status} can no longer be edited.", event_status=status
        )


def as_input(event: Event) -> dict[str, Any]:
    """The body that would create `event` as it is now: the base a PATCH is merged onto."""
    shape = msgspec.to_builtins(event)
    offers = [
        {k: v for k, v in offer.items() if k not in ("id", "item")} for offer in shape["offers"]
    ]
    fields = {f.encode_name for f in msgspec.structs.fields(EVENT_TYPES[event.kind])}
    return {
        "kind": event.kind,
        **{k: v for k, v in shape.items() if k in fields and k != "offers"},
        "offers": offers,
    }


def merge(event: Event, changes: Mapping[str, Any]) -> EventInput:
    try:
        return inputs.convert({**as_input(event), **changes}, EventInput)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(str(exc)) from None


EVENT_TYPES: dict[str, type[msgspec.Struct]] = {
    "flash_sale": FlashSaleInput,
    "auction": AuctionInput,
    "ranked": RankedInput,
}
