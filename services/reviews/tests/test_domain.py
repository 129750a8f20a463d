import time
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from flashbid_reviews import domain
from flashbid_reviews.domain import Comment, build_threads
from flashbid_reviews.schemas import CommentInput, CommentView, ReviewInput

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
EVENT = uuid.uuid4()


def comment(
    parent: Comment | None = None, minute: int = 0, *, deleted=False, hidden=False
) -> Comment:
    return Comment(
        id=uuid.uuid4(),
        event_id=EVENT,
        parent_id=parent.id if parent else None,
        root_id=(parent.root_id or parent.id) if parent else None,
        depth=parent.depth + 1 if parent else 0,
        user_id=None if deleted else uuid.uuid4(),
        author_name=None if deleted else "Ada",
        body=None if deleted else f"said at {minute}",
        deleted=deleted,
        hidden=hidden,
        created_at=T0 + timedelta(minutes=minute),
    )


def shape(threads) -> list:
    """(body, [deleted] or [hidden], [replies...]) all the way down, as the view shows it."""
    return [(CommentView.of(t.comment).body, shape(t.replies)) for t in threads]


# --------------------------------------------------------------------------------- text


@pytest.mark.parametrize("text", ["x", "  spaced  ", "<script>alert(1)</script>", "é" * 2000])
def test_text_is_accepted_as_written(text: str) -> None:
    domain.check_text(text, "body")


@pytest.mark.parametrize(
    ("text", "why"),
    [("", "empty"), (" \n\t ", "empty"), ("x" * 2001, "longer"), ("a\x00b", "control")],
)
def test_blank_oversize_and_binary_text_is_refused(text: str, why: str) -> None:
    with pytest.raises(domain.InvalidText, match=why) as refused:
        domain.check_text(text, "comment")
    assert refused.value.fields == {"field": "comment"}


def test_request_bodies_are_bounded_and_strict() -> None:
    decode = msgspec.json.decode
    assert decode(b'{"rating": 5, "comment": "ok"}', type=ReviewInput).rating == 5
    for bad in (
        b'{"rating": 0, "comment": "ok"}',
        b'{"rating": 6, "comment": "ok"}',
        b'{"rating": 4.5, "comment": "ok"}',
        b'{"rating": 5}',
        b'{"rating": 5, "comment": ""}',
        b'{"rating": 5, "comment": "ok", "user_id": "someone else"}',
    ):
        with pytest.raises(msgspec.ValidationError):
            decode(bad, type=ReviewInput)
    with pytest.raises(msgspec.ValidationError):
        decode(b'{"body": "' + b"x" * 2001 + b'"}', type=CommentInput)


# ------------------------------------------------------------------------------ summary


def test_a_summary_has_every_rating_in_its_histogram_and_a_rounded_average() -> None:
    summary = domain.summarize({5: 2, 4: 1})
    assert summary.histogram == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 2}
    assert (summary.count, summary.average) == (3, 4.67)


def test_an_item_without_reviews_has_no_average() -> None:
    summary = domain.summarize({})
    assert (summary.count, summary.average) == (0, None)
    assert set(summary.histogram.values()) == {0}


# ----------------------------------------------------------------------------- comments


def test_replies_nest_below_their_parents_oldest_first_at_any_depth() -> None:
    root = comment(minute=0)
    first, second = comment(root, 5), comment(root, 2)
    deep = [first]
    for minute in range(6, 6 + domain.MAX_DEPTH - 1):
        deep.append(comment(deep[-1], minute))
    other_root = comment(minute=1)
    threads = build_threads([other_root, root], [*reversed(deep), second])

    assert [t.comment.id for t in threads] == [other_root.id, root.id]  # the page's order
    assert [t.comment.id for t in threads[1].replies] == [second.id, first.id]
    node, depth = threads[1].replies[1], 1
    while node.replies:
        node, depth = node.replies[0], depth + 1
    assert (node.comment.id, depth) == (deep[-1].id, domain.MAX_DEPTH)


def test_a_deleted_reply_stays_only_while_a_shown_reply_hangs_below_it() -> None:
    root = comment(minute=0, deleted=True)
    kept = comment(root, 1, deleted=True)
    leaf = comment(kept, 2)
    gone = comment(root, 3, deleted=True)
    lone_root = comment(minute=4, deleted=True)  # a root stays: the page counted it
    threads = build_threads([lone_root, root], [leaf, kept, gone])
    assert shape(threads) == [
        ("[deleted]", []),
        ("[deleted]", [("[deleted]", [("said at 2", [])])]),
    ]


def test_a_hidden_comment_hides_itself_alone_and_keeps_the_replies_below_it() -> None:
    root = comment(minute=0)
    hidden = comment(root, 1, hidden=True)
    below_hidden = comment(hidden, 2)
    shown = comment(root, 3)
    deleted = comment(root, 4, deleted=True)
    only_hidden_below = comment(deleted, 5, hidden=True)
    hidden_root = comment(minute=9, hidden=True)
    threads = build_threads(
        [root, hidden_root],
        [hidden, below_hidden, shown, deleted, only_hidden_below, comment(hidden_root, 10)],
    )
    assert shape(threads) == [
        (
            "said at 0",
            [
                ("[hidden]", [("said at 2", [])]),
                ("said at 3", []),
                ("[deleted]", [("[hidden]", [])]),
            ],
        ),
        ("[hidden]", [("said at 10", [])]),
    ]
    view = CommentView.of(hidden)
    assert (view.author, view.hidden, view.deleted) == (None, True, False)


def test_orphans_and_replies_too_deep_are_left_out() -> None:
    root = comment(minute=0)
    missing_parent = comment(comment(root, 1), 2)  # its parent is not in the replies
    chain = [root]
    for minute in range(10, 10 + domain.MAX_DEPTH + 1):
        chain.append(comment(chain[-1], minute))
    threads = build_threads([root], [missing_parent, *chain[1:]])
    depth, node = 0, threads[0]
    while node.replies:
        [node] = node.replies
        depth += 1
    assert depth == domain.MAX_DEPTH  # the one below MAX_DEPTH is not shown


def test_a_reply_goes_at_most_max_depth_deep() -> None:
    parent = comment()
    for _ in range(domain.MAX_DEPTH):
        parent = comment(parent)
    with pytest.raises(domain.ThreadTooDeep):
        domain.reply_depth(parent)
    assert domain.reply_depth(comment()) == 1


def test_nobody_replies_to_a_deleted_hidden_or_missing_comment() -> None:
    for gone in (None, comment(deleted=True), comment(hidden=True)):
        with pytest.raises(domain.CommentNotFound):
            domain.can_reply_to(gone)
    alive = comment()
    assert domain.can_reply_to(alive) is alive


def test_only_the_author_or_an_admin_deletes_a_comment() -> None:
    mine = comment()
    domain.check_may_delete(mine, mine.user_id, is_admin=False)
    domain.check_may_delete(mine, uuid.uuid4(), is_admin=True)
    with pytest.raises(domain.NotAuthor):
        domain.check_may_delete(mine, uuid.uuid4(), is_admin=False)


def test_a_deleted_comment_is_shown_without_author_or_text() -> None:
    root = comment(deleted=True)
    [thread] = build_threads([root], [comment(root, 1)])
    view = msgspec.to_builtins(CommentView.of_thread(thread))
    assert (view["body"], view["author"], view["deleted"]) == ("[deleted]", None, True)
    assert view["replies"][0]["author"] == {"display_name": "Ada"}
    assert view["replies"][0]["parent_id"] == str(root.id)


def test_times_are_kept_to_the_millisecond_as_mongodb_stores_them() -> None:
    assert domain.now().microsecond % 1000 == 0


def test_ids_are_uuid7_and_sort_in_the_order_they_were_made() -> None:
    ids = [domain.new_id() for _ in range(10_000)]  # many share a millisecond
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert sorted(ids, key=str) == ids and len(set(ids)) == len(ids)
    assert abs((ids[0].int >> 80) - time.time() * 1000) < 5_000  # its milliseconds
