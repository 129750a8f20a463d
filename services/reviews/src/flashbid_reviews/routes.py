from typing import Literal
from uuid import UUID

from litestar import Response, delete, get, post, put
from litestar.datastructures import State

from flashbid_reviews.schemas import (
    CommentInput,
    CommentPage,
    CommentView,
    Moderated,
    OwnReview,
    ReviewInput,
    ReviewPage,
    ReviewView,
    Sort,
    SummaryView,
)
from flashbid_shared.params import Limit, Offset
from flashbid_shared.tokens import Principal, admin_required, user_required

PUBLIC = {"tags": ["public"]}
USER = {"tags": ["writers"], "guards": [user_required], "security": [{"bearer": []}]}
ADMIN = {"tags": ["admin"], "guards": [admin_required], "security": [{"bearer": []}]}
Moderation = Literal["hide", "unhide"]


# ----------------------------------------------------------------------------- reviews


@put("/items/{item_id:uuid}/review", operation_id="write_review", **USER)
async def write_review(
    state: State, principal: Principal, item_id: UUID, data: ReviewInput
) -> Response[ReviewView]:
    """Create (201) or replace (200) the caller's review of the item."""
    review, created = await state.ratings.write(
        principal.user_id, item_id, data.rating, data.comment
    )
    return Response(ReviewView.of(review), status_code=201 if created else 200)


@get("/items/{item_id:uuid}/review", operation_id="my_review", **USER)
async def my_review(state: State, principal: Principal, item_id: UUID) -> OwnReview:
    return OwnReview.of(await state.ratings.own(principal.user_id, item_id))


@delete("/items/{item_id:uuid}/review", operation_id="delete_review", **USER)
async def delete_review(state: State, principal: Principal, item_id: UUID) -> None:
    await state.ratings.delete(principal.user_id, item_id)


@get("/items/{item_id:uuid}/reviews", operation_id="list_reviews", **PUBLIC)
async def list_reviews(
    state: State, item_id: UUID, sort: Sort = "recent", limit: Limit = 20, offset: Offset = 0
) -> ReviewPage:
    """Newest first, or best rated first (`sort=rating`)."""
    found, total = await state.ratings.page(item_id, sort, limit, offset)
    return ReviewPage(
        items=[ReviewView.of(r) for r in found], total=total, limit=limit, offset=offset
    )


@get("/items/{item_id:uuid}/summary", operation_id="item_summary", **PUBLIC)
async def item_summary(state: State, item_id: UUID) -> SummaryView:
    """Average rating (null without reviews), count and the 1-5 histogram."""
    return SummaryView.of(await state.ratings.summary(item_id))


# ---------------------------------------------------------------------------- comments


@post("/events/{event_id:uuid}/comments", operation_id="post_comment", **USER)
async def post_comment(
    state: State, principal: Principal, event_id: UUID, data: CommentInput
) -> CommentView:
    return CommentView.of(await state.threads.post(principal.user_id, event_id, data.body))


@get("/events/{event_id:uuid}/comments", operation_id="list_comments", **PUBLIC)
async def list_comments(
    state: State, event_id: UUID, limit: Limit = 20, offset: Offset = 0
) -> CommentPage:
    """Top-level comments newest first, each with its replies nested (oldest first)."""
    threads, total = await state.threads.page(event_id, limit, offset)
    return CommentPage(
        items=[CommentView.of_thread(t) for t in threads], total=total, limit=limit, offset=offset
    )


@post("/comments/{comment_id:uuid}/replies", operation_id="reply", **USER)
async def reply(
    state: State, principal: Principal, comment_id: UUID, data: CommentInput
) -> CommentView:
    return CommentView.of(await state.threads.reply(principal.user_id, comment_id, data.body))


@delete("/comments/{comment_id:uuid}", operation_id="delete_comment", **USER)
async def delete_comment(state: State, principal: Principal, comment_id: UUID) -> None:
    """By its author or an administrator; shown as "[deleted]" while it has replies."""
    await state.threads.delete(principal.user_id, principal.is_admin, comment_id)


# ------------------------------------------------------------------------------- admin


@post(
    "/admin/reviews/{review_id:uuid}/{action:str}",
    operation_id="moderate_review",
    status_code=200,
    **ADMIN,
)
async def moderate_review(
    state: State, principal: Principal, review_id: UUID, action: Moderation
) -> Moderated:
    """A hidden review leaves the item's list and summary; `unhide` brings it back."""
    await state.ratings.moderate(principal.user_id, review_id, hidden=action == "hide")
    return Moderated(id=review_id, hidden=action == "hide")


@post(
    "/admin/comments/{comment_id:uuid}/{action:str}",
    operation_id="moderate_comment",
    status_code=200,
    **ADMIN,
)
async def moderate_comment(
    state: State, principal: Principal, comment_id: UUID, action: Moderation
) -> Moderated:
    """A hidden comment shows as "[hidden]" (no author, no text); the replies below it stay."""
    await state.threads.moderate(principal.user_id, comment_id, hidden=action == "hide")
    return Moderated(id=comment_id, hidden=action == "hide")


ROUTES = [
    write_review,
    my_review,
    delete_review,
    list_reviews,
    item_summary,
    post_comment,
    list_comments,
    reply,
    delete_comment,
    moderate_review,
    moderate_comment,
]
