from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from flashbid_bidding import domain

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ALICE, BOB, CAROL = uuid4(), uuid4(), uuid4()
D = Decimal
NO_SOFT_CLOSE = (timedelta(0), timedelta(0))


def lot(**fields) -> domain.Lot:
    values = {
        "id": uuid4(),
        "starting_price": D("100.00"),
        "increment": "5.00",
        "places": 2,
        "ends_at": NOW + timedelta(hours=1),
    }
    return domain.Lot(**{**values, **fields})


def bid(state, who, amount, max_amount=None, at=NOW, soft=NO_SOFT_CLOSE) -> domain.Placed:
    top = None if max_amount is None else D(max_amount)
    return domain.place_bid(state, who, D(amount), top, at, *soft)


@pytest.mark.parametrize(
    ("price", "step"),
    [("0.50", "0.05"), ("1", "0.25"), ("24.99", "0.50"), ("99", "1.00"), ("100", "2.50"),
     ("999.99", "10.00"), ("1000", "25.00"), ("7000", "100.00")],
)  # fmt: skip
def test_the_ladder_gives_ebays_increments(price: str, step: str) -> None:
    assert domain.increment(D(price), "ladder", 2) == D(step)


def test_a_fixed_increment_and_a_zero_decimal_currency() -> None:
    assert domain.increment(D("100"), "5.00", 2) == D("5.00")
    assert domain.increment(D("100"), "ladder", 0) == D("3")  # 2.50 yen rounds up to 3


def test_the_first_bid_is_at_least_the_starting_price_then_price_plus_increment() -> None:
    with pytest.raises(domain.BidTooLow) as low:
        bid(lot(), ALICE, "99.99")
    assert low.value.fields == {"min_next_bid": "100.00"}
    first = bid(lot(), ALICE, "100.00").lot
    assert (first.current_price, first.leader_id, first.min_next_bid) == (D("100"), ALICE, D("105"))
    with pytest.raises(domain.BidTooLow):
        bid(first, BOB, "104.99")


def test_a_proxy_bid_keeps_the_lead_for_the_least_needed() -> None:
    first = bid(lot(), ALICE, "100.00", "150.00").lot
    answered = bid(first, BOB, "120.00")
    assert answered.lot.leader_id == ALICE
    assert answered.lot.current_price == D("125.00")  # Bob's 120 plus one increment
    assert answered.outbid == BOB
    assert [(b, str(a), auto) for b, a, auto in answered.bids] == [
        (BOB, "120.00", False),
        (ALICE, "125.00", True),
    ]


def test_a_higher_maximum_takes_the_lead_at_one_increment_over_the_old_one() -> None:
    first = bid(lot(), ALICE, "100.00", "150.00").lot
    taken = bid(first, BOB, "110.00", "300.00")
    assert (taken.lot.leader_id, taken.lot.current_price, taken.outbid) == (BOB, D("155.00"), ALICE)


def test_of_two_equal_maxima_the_earlier_wins_at_that_maximum() -> None:
    first = bid(lot(), ALICE, "100.00", "150.00").lot
    tied = bid(first, BOB, "150.00")
    assert (tied.lot.leader_id, tied.lot.current_price) == (ALICE, D("150.00"))


def test_the_leader_may_only_raise_their_maximum() -> None:
    first = bid(lot(), ALICE, "100.00", "150.00").lot
    with pytest.raises(domain.AlreadyLeading):
        bid(first, ALICE, "200.00")
    with pytest.raises(domain.AlreadyLeading):
        bid(first, ALICE, "105.00", "140.00")
    raised = bid(first, ALICE, "105.00", "400.00").lot
    assert (raised.current_price, raised.leader_max) == (D("100.00"), D("400.00"))


def test_the_reserve_is_met_only_at_or_above_it_and_a_high_maximum_jumps_to_it() -> None:
    reserved = lot(reserve_price=D("200.00"))
    low = bid(reserved, ALICE, "100.00").lot
    assert not low.reserve_met
    jumped = bid(reserved, ALICE, "100.00", "250.00").lot
    assert (jumped.current_price, jumped.reserve_met) == (D("200.00"), True)


def test_a_bid_in_the_soft_close_window_extends_the_lot() -> None:
    soft = (timedelta(seconds=120), timedelta(seconds=60))
    state = lot(ends_at=NOW + timedelta(seconds=90))
    late = bid(state, ALICE, "100.00", at=NOW, soft=soft)
    assert late.extended and late.lot.ends_at == NOW + timedelta(seconds=150)
    early = bid(lot(ends_at=NOW + timedelta(seconds=600)), ALICE, "100.00", at=NOW, soft=soft)
    assert not early.extended


def test_no_bid_after_the_end() -> None:
    with pytest.raises(domain.EventNotLive):
        bid(lot(ends_at=NOW), ALICE, "100.00")


def test_buy_now_only_before_the_first_bid() -> None:
    offer = lot(buy_now_price=D("500.00"))
    assert domain.check_buy_now(offer, NOW) == D("500.00")
    with pytest.raises(domain.BuyNowUnavailable):
        domain.check_buy_now(bid(offer, ALICE, "100.00").lot, NOW)


def test_both_ranked_formulas() -> None:
    # seed 000: alpha*price + beta/(gamma + weight)
    assert domain.score("weight", 1.0, 10.0, 1.0, D("50"), 4.0, 99) == 52.0
    # seed 001: alpha*price + beta/(seconds + 1) + gamma*weight
    assert domain.score("time", 2.0, 100.0, 3.0, D("50"), 2.0, 9) == 100.0 + 10.0 + 6.0


def test_ranked_bids_start_at_the_upset_price_and_are_never_lowered() -> None:
    with pytest.raises(domain.BidTooLow):
        domain.check_session_bid(D("49.99"), D("50"), None)
    with pytest.raises(domain.BidTooLow):
        domain.check_session_bid(D("60"), D("50"), D("70"))
    domain.check_session_bid(D("70"), D("50"), D("70"))


def test_of_two_equal_scores_the_earlier_bid_ranks_first() -> None:
    earlier, later = domain.tie_order(NOW), domain.tie_order(NOW + timedelta(microseconds=1))
    assert sorted([later, earlier], reverse=True) == [earlier, later]  # read high to low


def test_amounts_follow_the_currency() -> None:
    assert domain.check_amount(D("60"), 2) == D("60.00")
    with pytest.raises(domain.InvalidAmount):
        domain.check_amount(D("1.005"), 2)
    with pytest.raises(domain.InvalidAmount):
        domain.check_amount(D("-1"), 2)
