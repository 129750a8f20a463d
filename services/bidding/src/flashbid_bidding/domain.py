"""Bidding's rules: increments, proxy bids, reserve, soft close, ranked scores. No I/O."""

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from uuid import UUID

from flashbid_shared.errors import DomainError

# eBay's bid increments: (price from, increment).
LADDER = [
    (Decimal("0"), Decimal("0.05")),
    (Decimal("1"), Decimal("0.25")),
    (Decimal("5"), Decimal("0.50")),
    (Decimal("25"), Decimal("1.00")),
    (Decimal("100"), Decimal("2.50")),
    (Decimal("250"), Decimal("5.00")),
    (Decimal("500"), Decimal("10.00")),
    (Decimal("1000"), Decimal("25.00")),
    (Decimal("2500"), Decimal("50.00")),
    (Decimal("5000"), Decimal("100.00")),
]


class EventNotLive(DomainError):
    pass


class BidTooLow(DomainError):
    pass


class AlreadyLeading(DomainError):
    pass


class NotJoined(DomainError):
    pass


class NotAllowed(DomainError):
    pass


class NotFound(DomainError):
    pass


class BuyNowUnavailable(DomainError):
    pass


class IdempotencyMismatch(DomainError):
    pass


class InvalidAmount(DomainError):
    pass


MAX_AMOUNT = Decimal("100000000")


def check_amount(amount: Decimal, places: int) -> Decimal:
    """The amount in the currency's minor units ("60" is "60.00"), if it is a valid one."""
    if not amount.is_finite() or not 0 < amount <= MAX_AMOUNT:
        raise InvalidAmount(f"An amount is positive and at most {MAX_AMOUNT}.")
    if -amount.as_tuple().exponent > places:  # type: ignore[operator]
        raise InvalidAmount(f"Amounts in this currency have {places} decimal places at most.")
    return amount.quantize(Decimal(1).scaleb(-places))


def increment(price: Decimal, rule: str, places: int) -> Decimal:
    """The step above `price`: a fixed amount, or the ladder, never below the minor unit."""
    unit = Decimal(1).scaleb(-places)
    if rule == "ladder":
        step = next(inc for start, inc in reversed(LADDER) if price >= start)
    else:
        step = Decimal(rule)
    return max(step.quantize(unit, rounding=ROUND_CEILING), unit)


@dataclass(frozen=True)
class Lot:
    """An English auction lot as the rules see it."""

    id: UUID
    starting_price: Decimal
    increment: str
    places: int
    ends_at: datetime
    reserve_price: Decimal | None = None
    buy_now_price: Decimal | None = None
    current_price: Decimal | None = None
    leader_id: UUID | None = None
    leader_max: Decimal | None = None
    bid_count: int = 0
    extensions: int = 0

    @property
    def min_next_bid(self) -> Decimal:
        if self.current_price is None:
            return self.starting_price
        return self.current_price + increment(self.current_price, self.increment, self.places)

    @property
    def reserve_met(self) -> bool:
        return self.reserve_price is None or (
            self.current_price is not None and self.current_price >= self.reserve_price
        )


@dataclass(frozen=True)
class Placed:
    """What a bid did: the lot after it, the bids to record (the bidder's own, and the proxy's
    answer for the leader), who lost the lead, and whether the lot's end moved."""

    lot: Lot
    bids: list[tuple[UUID, Decimal, bool]] = field(default_factory=list)  # (bidder, amount, auto)
    outbid: UUID | None = None
    extended: bool = False


def place_bid(
    lot: Lot,
    bidder: UUID,
    amount: Decimal,
    max_amount: Decimal | None,
    now: datetime,
    soft_close: timedelta,
    extension: timedelta,
) -> Placed:
    """eBay's proxy bidding: the leader pays the least that keeps the lead, up to their
    maximum; of two equal maxima the earlier wins."""
    if now >= lot.ends_at:
        raise EventNotLive("Bidding on this lot has ended.")
    top = max(amount, max_amount or amount)
    if bidder == lot.leader_id:
        if max_amount is None or lot.leader_max is None or max_amount <= lot.leader_max:
            raise AlreadyLeading(
                "You already lead; only raising your maximum is possible.",
                leader_max=str(lot.leader_max) if lot.leader_max is not None else None,
            )
        return Placed(_reserve_jump(replace(lot, leader_max=max_amount)))
    minimum = lot.min_next_bid
    if amount < minimum:
        raise BidTooLow(f"The lowest bid now is {minimum}.", min_next_bid=str(minimum))

    step = lambda price: increment(price, lot.increment, lot.places)  # noqa: E731
    if lot.leader_id is None or lot.leader_max is None:
        after = replace(lot, current_price=amount, leader_id=bidder, leader_max=top)
        placed = Placed(after, [(bidder, amount, False)])
    elif top > lot.leader_max:
        price = max(amount, min(top, lot.leader_max + step(lot.leader_max)))
        after = replace(lot, current_price=price, leader_id=bidder, leader_max=top)
        bids = [(lot.leader_id, lot.leader_max, True)] if lot.leader_max > lot.current_price else []  # type: ignore[operator]
        placed = Placed(after, [*bids, (bidder, price, False)], outbid=lot.leader_id)
    else:  # the leader's proxy answers, up to their maximum
        price = min(lot.leader_max, top + step(top))
        after = replace(lot, current_price=price)
        placed = Placed(
            after, [(bidder, amount, False), (lot.leader_id, price, True)], outbid=bidder
        )

    after = _reserve_jump(replace(placed.lot, bid_count=lot.bid_count + len(placed.bids)))
    if lot.ends_at - now <= soft_close and extension > timedelta(0):
        after = replace(after, ends_at=lot.ends_at + extension, extensions=lot.extensions + 1)
        return replace(placed, lot=after, extended=True)
    return replace(placed, lot=after)


def _reserve_jump(lot: Lot) -> Lot:
    """A leader whose maximum reaches the reserve pays at least the reserve (as eBay does)."""
    if (
        lot.reserve_price is not None
        and lot.leader_max is not None
        and lot.current_price is not None
        and lot.current_price < lot.reserve_price <= lot.leader_max
    ):
        return replace(lot, current_price=lot.reserve_price)
    return lot


def check_buy_now(lot: Lot, now: datetime) -> Decimal:
    if now >= lot.ends_at:
        raise EventNotLive("Bidding on this lot has ended.")
    if lot.buy_now_price is None or lot.bid_count > 0:
        raise BuyNowUnavailable("Buy now is only possible before the first bid.")
    return lot.buy_now_price


# ------------------------------------------------------------------------------ ranked


def score(
    formula: str,
    alpha: float,
    beta: float,
    gamma: float,
    price: Decimal,
    user_weight: float,
    seconds_since_start: float,
) -> float:
    """seed 000 (`weight`): alpha*price + beta/(gamma + weight);
    seed 001 (`time`): alpha*price + beta/(seconds since start + 1) + gamma*weight."""
    if formula == "weight":
        value = alpha * float(price) + beta / (gamma + user_weight)
    else:
        value = (
            alpha * float(price) + beta / (max(seconds_since_start, 0.0) + 1) + gamma * user_weight
        )
    if not math.isfinite(value):
        raise NotAllowed("This bid cannot be scored.")
    return round(value, 6)


def check_session_bid(price: Decimal, upset_price: Decimal, current: Decimal | None) -> None:
    if price < upset_price:
        raise BidTooLow(f"The lowest bid is {upset_price}.", min_next_bid=str(upset_price))
    if current is not None and price < current:
        raise BidTooLow(
            f"Your bid is already {current}; a bid can only be raised.", min_next_bid=str(current)
        )


def tie_order(placed_at: datetime) -> str:
    """A sorted-set member prefix that puts the earlier of two equal scores first when the set
    is read from the highest score down (members of equal score sort in reverse)."""
    return f"{10**16 - int(placed_at.timestamp() * 1_000_000):017d}"
