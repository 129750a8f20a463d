"""Reviews' rules: what a review and a comment may say, what a summary is, how a thread is put
together from flat comments. No I/O."""

import os
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import msgspec

from flashbid_shared import inputs
from flashbid_shared.errors import DomainError

MAX_TEXT = 2000  # characters, for a review's comment and for an event comment
MAX_DEPTH = 5  # a top-level comment is depth 0; replies nest up to five levels below it
RATINGS = (1, 2, 3, 4, 5)
UNKNOWN_AUTHOR = "Flashbid user"  # shown until auth has told us the author's display name


class ItemNotFound(DomainError):
    pass


class EventNotFound(DomainError):
    pass


class ReviewNotFound(DomainError):
    pass


class CommentNotFound(DomainError):
    pass


class NotAuthor(DomainError):
    pass


class InvalidText(DomainError):
    pass


class ThreadTooDeep(DomainError):
    pass


class CatalogUnavailable(DomainError):
    """Catalog did not answer whether an item or event exists, so a write cannot be checked."""


class StoreUnavailable(DomainError):
    """MongoDB does not answer."""


class Review(msgspec.Struct, kw_only=True):
    id: UUID
    item_id: UUID
    user_id: UUID
    rating: int
    comment: str
    author_name: str | None
    verified_purchase: bool | None  # None: purchase has not answered yet
    hidden: bool
    created_at: datetime
    updated_at: datetime


class Summary(msgspec.Struct, kw_only=True):
    average: float | None  # None when nobody has rated the item
    count: int
    histogram: dict[str, int]


class Comment(msgspec.Struct, kw_only=True):
    id: UUID
    event_id: UUID
    parent_id: UUID | None
    root_id: UUID | None  # the top-level comment of the thread; None for a top-level comment
    depth: int
    user_id: UUID | None  # None once deleted
    author_name: str | None
    body: str | None  # None once deleted
    deleted: bool
    hidden: bool
    created_at: datetime


Action = Literal["hide", "unhide", "erase"]


class Decision(msgspec.Struct, kw_only=True):
    """A moderator hid or unhid a review or comment, or a comment's author (or an admin)
    deleted it. A review's also names its item and author: a hide holds for what the author
    writes about the item after deleting the hidden review."""

    id: UUID
    target: Literal["review", "comment"]
    target_id: UUID
    action: Action
    by: UUID
    at: datetime
    item_id: UUID | None = None
    author_id: UUID | None = None


class Thread(msgspec.Struct, kw_only=True):
    comment: Comment
    replies: list["Thread"]


_last_stamp = 0


def new_id() -> UUID:
    """A UUIDv7 (RFC 9562): the milliseconds since 1970, then a counter for ids made in the
    same millisecond, then random bits. So ids sort in the order they were made (in one
    process; to the millisecond across replicas), and break ties between equal times."""
    global _last_stamp
    stamp = max((time.time_ns() // 1_000_000) << 12, _last_stamp + 1)
    _last_stamp = stamp
    random_bits = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    millis, counter = stamp >> 12, stamp & 0xFFF
    return UUID(int=millis << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | random_bits)


def now() -> datetime:
    """BSON dates keep milliseconds: what we answer is what a later read returns."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def check_text(text: str, field: str) -> None:
    """Stored as given (the SPA escapes it), but never blank and never with control bytes."""
    if not text.strip():
        raise InvalidText(f"The {field} must not be empty.", field=field)
    if len(text) > MAX_TEXT:
        raise InvalidText(f"The {field} is longer than {MAX_TEXT} characters.", field=field)
    if inputs.has_control(text):  # FerretDB's jsonb refuses NUL: the shared rule of text
        raise InvalidText(f"The {field} contains control characters.", field=field)


def summarize(counts: Mapping[int, int]) -> Summary:
    """The summary of an item from how many visible reviews give each rating."""
    histogram = {str(rating): int(counts.get(rating, 0)) for rating in RATINGS}
    count = sum(histogram.values())
    total = sum(rating * histogram[str(rating)] for rating in RATINGS)
    return Summary(
        average=round(total / count, 2) if count else None, count=count, histogram=histogram
    )


def reply_depth(parent: Comment) -> int:
    if parent.depth + 1 > MAX_DEPTH:
        raise ThreadTooDeep(
            f"Replies nest at most {MAX_DEPTH} levels deep; reply higher up the thread.",
            max_depth=MAX_DEPTH,
        )
    return parent.depth + 1


def can_reply_to(parent: Comment | None) -> Comment:
    if parent is None or parent.deleted or parent.hidden:
        raise CommentNotFound("There is no such comment.")
    return parent


def check_may_delete(comment: Comment, user_id: UUID, is_admin: bool) -> None:
    if not is_admin and comment.user_id != user_id:
        raise NotAuthor("Only its author or an administrator may delete a comment.")


def build_threads(roots: Iterable[Comment], replies: Iterable[Comment]) -> list[Thread]:
    """Threads in the order of `roots` (each of them: they are what a page counts), replies
    oldest first at every level.

    A hidden comment stays in its place (as "[hidden]", the view's business) with the replies
    below it: a moderator hides that comment, not the others' answers to it. A deleted reply
    stays (as "[deleted]") only while some reply below it is still shown. Replies whose parent
    is not there (deleted meanwhile) are not shown.
    """
    children: dict[UUID, list[Comment]] = defaultdict(list)
    for reply in sorted(replies, key=lambda c: (c.created_at, str(c.id))):
        if reply.parent_id is not None:
            children[reply.parent_id].append(reply)

    def grow(comment: Comment, depth: int) -> Thread | None:
        if depth > MAX_DEPTH:
            return None
        below = [t for child in children.get(comment.id, ()) if (t := grow(child, depth + 1))]
        if comment.deleted and not below and depth > 0:
            return None
        return Thread(comment=comment, replies=below)

    return [thread for root in roots if (thread := grow(root, 0))]
