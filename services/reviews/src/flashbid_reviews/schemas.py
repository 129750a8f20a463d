"""Reviews' request and response bodies. Text is returned exactly as it was written: the SPA
escapes it when it shows it."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from flashbid_reviews.domain import MAX_TEXT, UNKNOWN_AUTHOR, Comment, Review, Summary, Thread
from flashbid_shared import inputs

Text = Annotated[inputs.Text, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
Rating = Annotated[int, msgspec.Meta(ge=1, le=5)]
Sort = Literal["recent", "rating"]
DELETED = "[deleted]"
HIDDEN = "[hidden]"


class Input(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ReviewInput(Input, kw_only=True):
    rating: Rating
    comment: Text


class CommentInput(Input, kw_only=True):
    body: Text


class Author(msgspec.Struct, kw_only=True):
    display_name: str


class ReviewView(msgspec.Struct, kw_only=True):
    id: UUID
    item_id: UUID
    rating: int
    comment: str
    author: Author
    verified_purchase: bool | None  # null while purchase has not answered
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, review: Review) -> "ReviewView":
        return cls(
            id=review.id,
            item_id=review.item_id,
            rating=review.rating,
            comment=review.comment,
            author=Author(display_name=review.author_name or UNKNOWN_AUTHOR),
            verified_purchase=review.verified_purchase,
            created_at=review.created_at,
            updated_at=review.updated_at,
        )


class OwnReview(ReviewView, kw_only=True):
    """The caller's own review: also says whether a moderator hid it."""

    hidden: bool

    @classmethod
    def of(cls, review: Review) -> "OwnReview":
        view = ReviewView.of(review)
        return cls(**msgspec.structs.asdict(view), hidden=review.hidden)


class ReviewPage(msgspec.Struct, kw_only=True):
    items: list[ReviewView]
    total: int
    limit: int
    offset: int


class SummaryView(msgspec.Struct, kw_only=True):
    average: float | None  # null when nobody has rated the item
    count: int
    histogram: dict[str, int]

    @classmethod
    def of(cls, summary: Summary) -> "SummaryView":
        return cls(average=summary.average, count=summary.count, histogram=summary.histogram)


class CommentView(msgspec.Struct, kw_only=True):
    id: UUID
    event_id: UUID
    parent_id: UUID | None
    depth: int
    body: str  # "[deleted]" for a deleted comment that still has replies, "[hidden]"
    author: Author | None  # null for a deleted or hidden comment
    deleted: bool
    hidden: bool  # by a moderator: the replies below it are still shown
    created_at: datetime
    replies: list["CommentView"]

    @classmethod
    def of(cls, comment: Comment, replies: list["CommentView"] | None = None) -> "CommentView":
        deleted, hidden = comment.deleted, comment.hidden
        shown = not deleted and not hidden
        return cls(
            id=comment.id,
            event_id=comment.event_id,
            parent_id=comment.parent_id,
            depth=comment.depth,
            body=(comment.body or "") if shown else DELETED if deleted else HIDDEN,
            author=Author(display_name=comment.author_name or UNKNOWN_AUTHOR) if shown else None,
            deleted=deleted,
            hidden=hidden,
            created_at=comment.created_at,
            replies=replies or [],
        )

    @classmethod
    def of_thread(cls, thread: Thread) -> "CommentView":
        return cls.of(thread.comment, [cls.of_thread(reply) for reply in thread.replies])


class CommentPage(msgspec.Struct, kw_only=True):
    """Top-level comments, newest first, each with its replies nested, oldest first."""

    items: list[CommentView]
    total: int
    limit: int
    offset: int


class Moderated(msgspec.Struct, kw_only=True):
    id: UUID
    hidden: bool
