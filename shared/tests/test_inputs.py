"""The one rule of text and money that every service's inputs follow."""

from decimal import Decimal
from typing import Annotated

import msgspec
import pytest

from flashbid_shared import inputs
from flashbid_shared.inputs import Line, Money, Text


class Note(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[Line, msgspec.Meta(max_length=20)] = "t"
    body: Text = ""
    price: Money | None = None
    quantity: int = 1


def note(**fields) -> Note:
    return inputs.decode(msgspec.json.encode(fields), Note)


@pytest.mark.parametrize("text", ["Spring sale", "Café «crème» ☕", "a b", ""])
def test_ordinary_text_passes_both(text: str) -> None:
    assert note(title=text, body=text) == Note(title=text, body=text)


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f"])
def test_control_characters_are_refused_in_both(char: str) -> None:
    for field in ("title", "body"):
        with pytest.raises(msgspec.ValidationError, match=f"at `\\$.{field}`"):
            note(**{field: f"a{char}b"})
    assert inputs.has_control(f"a{char}b")


@pytest.mark.parametrize("char", ["\t", "\n", "\r"])
def test_tabs_and_line_breaks_are_text_but_not_a_line(char: str) -> None:
    assert note(body=f"one{char}two{char}").body == f"one{char}two{char}"
    assert not inputs.has_control(f"one{char}two")
    for bad in (f"one{char}two", f"one{char}"):  # Python's `$` would let a final "\n" by
        with pytest.raises(msgspec.ValidationError):
            note(title=bad)


def test_a_refusal_says_so_in_words() -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        note(title="a\x00")
    assert inputs.explain(str(refused.value)) == (
        "Expected one line of text without control characters - at `$.title`"
    )


@pytest.mark.parametrize("amount", ["0", "12", "249.99", "0.5", "000012.50", "999999999999.99"])
def test_money_is_a_string_of_ascii_digits(amount: str) -> None:
    price = note(price=amount).price
    assert price == Decimal(amount) and isinstance(price, Decimal)


@pytest.mark.parametrize(
    "amount",
    [
        12,
        12.5,
        True,
        "\uff11\uff12",  # full-width 12: Decimal reads it as 12
        "\u0661\u0662",  # Arabic-Indic 12
        "1e1",
        "1E+1",
        "NaN",
        "Infinity",
        "-Infinity",
        "-1",
        "+1",
        " 12",
        "12 ",
        "12\n",
        "1,50",
        ".5",
        "5.",
        "1_000",
        "",
        "1234567890123",  # more than 12 digits before the point
    ],
)
def test_anything_else_is_not_money(amount) -> None:
    with pytest.raises(msgspec.ValidationError, match="ASCII digits"):
        note(price=amount)


@pytest.mark.parametrize("quantity", ["1", 1.0, True])
def test_a_count_is_a_json_integer(quantity) -> None:
    with pytest.raises(msgspec.ValidationError, match="Expected `int`"):
        note(quantity=quantity)


@pytest.mark.parametrize(
    "body",
    [
        b'{"title": "a\xff"}',  # not UTF-8: msgspec raises UnicodeDecodeError
        b"[" * 5000 + b"]" * 5000,  # deeper than the recursion limit: RecursionError
        b'{"title": ',
    ],
)
def test_what_is_not_json_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        inputs.decode(body)
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        inputs.decode(body, Note)


def test_a_merged_body_converts_as_strictly() -> None:
    assert inputs.convert({"price": "3.50"}, Note).price == Decimal("3.50")
    for bad in ({"price": 3.5}, {"quantity": "2"}, {"title": "\x00"}):
        with pytest.raises(msgspec.ValidationError):
            inputs.convert(bad, Note)
