"""Purchase's rules: who may buy, what an admission outcome means, how orders move. No I/O."""

import hashlib
from typing import Literal

from flashbid_shared.errors import DomainError

Outcome = Literal["ok", "event_not_live", "sold_out", "limit_reached", "unknown", "seen"]
LIVE_STATUSES = frozenset({"live", "sold_out"})  # sold out may end: a cancellation frees stock
IDEMPOTENCY_TTL = 48 * 3600  # Stripe keeps keys 24 h; we keep them twice as long


class EventNotLive(DomainError):
    pass


class SoldOut(DomainError):
    pass


class LimitReached(DomainError):
    pass


class OfferNotFound(DomainError):
    pass


class OrderNotFound(DomainError):
    pass


class OrderState(DomainError):
    pass


class IdempotencyMismatch(DomainError):
    pass


class RequestInProgress(DomainError):
    pass


class NotAllowed(DomainError):
    pass


class UnknownEvent(DomainError):
    pass


class EventCancelled(DomainError):
    pass


REFUSALS: dict[str, tuple[type[DomainError], str]] = {
    "event_not_live": (EventNotLive, "The sale is not open."),
    "sold_out": (SoldOut, "Sold out."),
    "limit_reached": (LimitReached, "You have reached the limit per customer for this offer."),
}


def refuse(outcome: str) -> DomainError:
    error, message = REFUSALS[outcome]
    return error(message)


def fingerprint(offer_id: str, quantity: int) -> str:
    """What an idempotency key is bound to: the same key with another body is refused."""
    return hashlib.blake2b(f"{offer_id}:{quantity}".encode(), digest_size=8).hexdigest()


def check_buyer(email_verified: bool, require_verified: bool) -> None:
    if require_verified and not email_verified:
        raise NotAllowed("Verify your email address before buying.", reason="email_unverified")


def cannot(action: str, status: str) -> OrderState:
    return OrderState(f"Cannot {action} an order that is {status}.", order_status=status)
