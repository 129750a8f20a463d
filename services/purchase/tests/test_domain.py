import pytest

from flashbid_purchase import domain


def test_a_key_is_bound_to_the_offer_and_the_quantity() -> None:
    assert domain.fingerprint("offer-1", 2) == domain.fingerprint("offer-1", 2)
    assert domain.fingerprint("offer-1", 2) != domain.fingerprint("offer-1", 1)
    assert domain.fingerprint("offer-1", 2) != domain.fingerprint("offer-2", 2)


def test_an_unverified_buyer_is_refused_only_when_the_setting_asks() -> None:
    with pytest.raises(domain.NotAllowed, match="Verify your email"):
        domain.check_buyer(email_verified=False, require_verified=True)
    domain.check_buyer(email_verified=False, require_verified=False)
    domain.check_buyer(email_verified=True, require_verified=True)


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        ("sold_out", domain.SoldOut),
        ("limit_reached", domain.LimitReached),
        ("event_not_live", domain.EventNotLive),
    ],
)
def test_each_refusal_of_the_gate_has_its_error(outcome: str, error: type) -> None:
    refused = domain.refuse(outcome)
    assert isinstance(refused, error) and refused.detail
    assert domain.refuse(outcome) is not refused  # a fresh error each time


def test_an_order_that_cannot_move_says_its_status() -> None:
    error = domain.cannot("confirm", "expired")
    assert error.detail == "Cannot confirm an order that is expired."
    assert error.fields == {"order_status": "expired"}
