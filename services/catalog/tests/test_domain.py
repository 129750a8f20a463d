from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import msgspec
import pytest

from flashbid_catalog import domain
from flashbid_catalog.schemas import EventInput
from flashbid_shared import inputs
from flashbid_shared.contracts import Event, ItemRef, Offer

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ITEM = uuid4()


def event(kind: str = "flash_sale", **fields) -> EventInput:
    offers = {
        "flash_sale": [{"item_id": ITEM, "price": "10.00", "stock": 5, "per_user_limit": 2}],
        "auction": [{"item_id": ITEM, "starting_price": "100", "increment": "ladder"}],
        "ranked": [{"item_id": ITEM, "upset_price": "50", "inventory": 3}],
    }[kind]
    body = {
        "kind": kind,
        "title": "Spring sale",
        "starts_at": NOW + timedelta(hours=1),
        "ends_at": NOW + timedelta(hours=2),
        "offers": offers,
        **({"scoring": {"formula": "weight"}} if kind == "ranked" else {}),
        **fields,
    }
    return inputs.convert(body, EventInput)


def problems(data: EventInput, items=None) -> list[str]:
    try:
        domain.check_event(data, now=NOW, items={ITEM: False} if items is None else items)
    except domain.InvalidEvent as exc:
        return [f"{p['field']}: {p['message']}" for p in exc.fields["errors"]]
    return []


@pytest.mark.parametrize("kind", ["flash_sale", "auction", "ranked"])
def test_a_sensible_event_of_each_kind_passes(kind: str) -> None:
    assert problems(event(kind)) == []


def test_every_mistake_is_reported_at_once_with_its_field() -> None:
    wrong = event(
        currency="JPY",
        ends_at=NOW,
        offers=[{"item_id": uuid4(), "price": "10.50", "stock": 1, "per_user_limit": 3}],
    )
    found = problems(wrong)
    assert any(p.startswith("ends_at: must be after starts_at") for p in found)
    assert any(p.startswith("offers[0].item_id: no catalog item") for p in found)
    assert "offers[0].price: JPY has 0 decimal places; got 10.50" in found
    assert "offers[0].per_user_limit: cannot be more than the stock" in found


def test_a_start_in_the_past_is_refused_when_creating() -> None:
    late = event(starts_at=NOW - timedelta(minutes=1))
    assert any(p.startswith("starts_at: is in the past") for p in problems(late))


def test_an_archived_item_cannot_go_into_a_new_offer() -> None:
    assert problems(event(), items={ITEM: True}) == [f"offers[0].item_id: item {ITEM} is archived"]


@pytest.mark.parametrize(
    ("lot", "field"),
    [
        ({"starting_price": "100", "reserve_price": "90"}, "reserve_price"),
        (
            {"starting_price": "100", "reserve_price": "200", "buy_now_price": "150"},
            "buy_now_price",
        ),
        ({"starting_price": "100", "increment": "0"}, "increment"),
        ({"starting_price": "0"}, "starting_price"),
    ],
)
def test_auction_lots_must_make_sense(lot: dict, field: str) -> None:
    found = problems(event("auction", offers=[{"item_id": ITEM, **lot}]))
    assert [p for p in found if p.startswith(f"offers[0].{field}")], found


@pytest.mark.parametrize(
    "lot",
    [
        {"starting_price": "100", "increment": "a lot"},
        {"starting_price": "100", "increment": "1e1"},
        {"starting_price": "-1"},
        {"starting_price": 100},
        {"starting_price": "\uff11\uff10\uff10"},  # full-width 100
    ],
)
def test_amounts_that_are_not_strings_of_digits_are_not_an_event(lot: dict) -> None:
    with pytest.raises(msgspec.ValidationError):
        event("auction", offers=[{"item_id": ITEM, **lot}])


def test_ranked_scoring_must_count_the_price() -> None:
    zero = event("ranked", scoring={"formula": "time", "alpha": 0})
    assert problems(zero) == ["scoring.alpha: must be positive: the price has to count"]


@pytest.mark.parametrize(
    ("status", "action", "after"),
    [
        ("draft", "publish", "scheduled"),
        ("scheduled", "open", "live"),
        ("live", "close", "ended"),
        ("sold_out", "close", "ended"),
        ("live", "cancel", "cancelled"),
    ],
)
def test_allowed_transitions(status: str, action: str, after: str) -> None:
    assert domain.next_status(status, action, ends_at=NOW + timedelta(hours=1), now=NOW) == after


@pytest.mark.parametrize(
    ("status", "action"),
    [("draft", "open"), ("live", "publish"), ("ended", "cancel"), ("cancelled", "open")],
)
def test_refused_transitions(status: str, action: str) -> None:
    with pytest.raises(domain.InvalidTransition):
        domain.next_status(status, action, ends_at=NOW + timedelta(hours=1), now=NOW)


@pytest.mark.parametrize(
    ("status", "action"),
    [("scheduled", "publish"), ("live", "open"), ("ended", "close"), ("cancelled", "cancel")],
)
def test_a_repeated_transition_changes_nothing(status: str, action: str) -> None:
    assert domain.next_status(status, action, ends_at=NOW + timedelta(hours=1), now=NOW) is None


def test_an_event_whose_end_has_passed_cannot_be_published() -> None:
    with pytest.raises(domain.InvalidTransition, match="end has passed"):
        domain.next_status("draft", "publish", ends_at=NOW, now=NOW)


def test_only_drafts_and_scheduled_events_can_be_edited() -> None:
    domain.check_editable("draft")
    domain.check_editable("scheduled")
    for status in ("live", "sold_out", "ended", "cancelled"):
        with pytest.raises(domain.EventLocked):
            domain.check_editable(status)


def test_a_patch_merges_onto_the_current_definition() -> None:
    current = Event(
        id=uuid4(),
        kind="auction",
        title="Old",
        description="",
        status="draft",
        currency="EUR",
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        offers=[
            Offer(
                id=uuid4(),
                item_id=ITEM,
                item=ItemRef(id=ITEM, name="Watch", category="watches"),
                starting_price=Decimal("100.00"),
                increment="ladder",
                reserve_price=Decimal("150.00"),
            )
        ],
        version=1,
        created_at=NOW,
        updated_at=NOW,
        soft_close_seconds=120,
        extension_seconds=120,
    )
    merged = domain.merge(current, {"title": "New", "extension_seconds": 30})
    assert (merged.title, merged.extension_seconds, merged.soft_close_seconds) == ("New", 30, 120)
    assert merged.offers[0].reserve_price == Decimal("150.00")
    with pytest.raises(domain.InvalidEvent):
        domain.merge(current, {"offers": [{"item_id": str(ITEM), "price": "1", "stock": 1}]})
