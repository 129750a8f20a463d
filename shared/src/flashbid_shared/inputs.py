"""What every service takes from outside, checked by one rule: text, money, JSON bodies.

Text never holds control characters: PostgreSQL refuses NUL in text (and FerretDB's jsonb
under reviews), and the others have no business in a name, a login or a comment. `Line` is one
line (a name, a login, a search); `Text` is prose, where tabs and line breaks are welcome.

Money is a decimal string of ASCII digits ("249.99"): never a JSON number (a float's rounding),
an exponent ("1e1"), NaN or Infinity, nor digits of other scripts that Python's `Decimal` reads
(full-width "12" is 12 to it). The currency's places and the ranges are the domains' rules.
"""

import re
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import msgspec

T = TypeVar("T")

CONTROL = r"\x00-\x1f\x7f"  # C0 and DEL, for character classes
END = r"(?!\n)$"  # the very end: Python's `$` also matches before a final line break
LINE_PATTERN = rf"^[^{CONTROL}]*{END}"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # tab, line feed and return allowed
Line = Annotated[str, msgspec.Meta(pattern=LINE_PATTERN)]
Text = Annotated[str, msgspec.Meta(pattern=TEXT_PATTERN)]
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

AMOUNT = r"[0-9]{1,12}(?:\.[0-9]{1,12})?"  # for patterns of fields that also take words
MONEY_PATTERN = rf"^{AMOUNT}$"
_MONEY = re.compile(AMOUNT)
MONEY_WORDS = 'Expected an amount as a string of ASCII digits, such as "249.99"'


class Money(Decimal):
    """An amount a client sends. What is computed from it is a plain `Decimal`."""


def has_control(text: str) -> bool:
    """Whether `text` breaks the rule of `Text` (and so of `Line`)."""
    return _FORBIDDEN.search(text) is not None


def parse_money(value: object) -> Money:
    if isinstance(value, str) and _MONEY.fullmatch(value):
        return Money(value)
    raise ValueError(MONEY_WORDS)


def dec_hook(type_: type, value: Any) -> Any:
    """msgspec's hook for the types above (a ValueError is msgspec's ValidationError)."""
    if type_ is Money:
        return parse_money(value)
    raise NotImplementedError(f"{type_} is not an input type")


def decode(body: bytes, type_: type[T] | Any = Any) -> T:
    """`body` as `type_`, strictly: a quantity is 1, never "1" or 1.0; money as above.

    Raises `msgspec.DecodeError` for whatever is not JSON, also where msgspec raises others:
    bytes that are not UTF-8 (`UnicodeDecodeError`), nesting deeper than Python's recursion
    limit (`RecursionError`, about 1,000 levels; only `Any` values nest without a type)."""
    try:
        return msgspec.json.decode(body, type=type_, dec_hook=dec_hook)
    except UnicodeDecodeError:
        raise msgspec.DecodeError("JSON is malformed: the body is not UTF-8") from None
    except RecursionError:
        raise msgspec.DecodeError("JSON is malformed: nested too deeply") from None


def convert(value: Any, type_: type[T]) -> T:
    """`value` (builtins, e.g. an event merged with a patch) as `type_`, as strictly."""
    return msgspec.convert(value, type_, dec_hook=dec_hook)


def explain(message: str) -> str:
    """A validation message in words where it would name one of the patterns above."""
    for pattern, words in WORDS.items():
        message = message.replace(f"`str` matching regex {pattern!r}", words)
    return message


WORDS = {
    LINE_PATTERN: "one line of text without control characters",
    TEXT_PATTERN: "text without control characters",
}
