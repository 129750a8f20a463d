"""Reviews' use cases against the real FerretDB, with real concurrency; catalog, purchase and
auth are fakes here (tests/integration/test_reviews_app.py has the real ones). Between them,
these tests run every query the reviews service makes."""

import asyncio
import random
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from flashbid_reviews import domain
from flashbid_reviews.ratings import Ratings
from flashbid_reviews.store import (
    Comments,
    Decisions,
    Reviews,
    Summaries,
    ensure_indexes,
    mongo_client,
)
from flashbid_reviews.threads import Threads
from flashbid_reviews.workers import repair
from flashbid_shared.contracts import UserSummary

pytestmark = pytest.mark.stack
ADMIN = uuid.uuid4()


class Catalog:
    """Everything exists."""

    async def item_exists(self, item_id: uuid.UUID) -> bool:
        return True

    async def event_exists(self, event_id: uuid.UUID) -> bool:
        return True


class Purchase:
    """Bought, not bought, or no answer (None), as the test sets it."""

    def __init__(self, answer: bool | None = False) -> None:
        self.answer = answer

    async def purchased(self, user_id: uuid.UUID, item_id: uuid.UUID) -> bool | None:
        return self.answer


class Users:
    def __init__(self, answering: bool = True) -> None:
        self.answering = answering

    async def get(self, user_id: uuid.UUID) -> UserSummary | None:
        if not self.answering:
            return None
        return UserSummary(
            id=user_id, display_name=f"user {str(user_id)[:4]}", weight=1.0,
            email_verified=True, is_active=True,
        )  # fmt: skip


class LateSummaries(Summaries):
    """A recount that reaches MongoDB a little late, as over a busy network: the window in which
    two writers' recounts cross is wide open, instead of a few microseconds."""

    async def put(self, item_id: uuid.UUID, summary: domain.Summary, at) -> None:
        await asyncio.sleep(random.uniform(0, 0.03))
        await super().put(item_id, summary, at)


class HeldSummaries(Summaries):
    """The first recount to be stored waits, once counted, until the test lets it go."""

    def __init__(self, db) -> None:
        super().__init__(db)
        self.waiting, self.go = asyncio.Event(), asyncio.Event()

    async def put(self, item_id: uuid.UUID, summary: domain.Summary, at) -> None:
        if not self.waiting.is_set():
            self.waiting.set()
            await self.go.wait()
        await super().put(item_id, summary, at)


@asynccontextmanager
async def scratch(
    profile,
    purchase: Purchase | None = None,
    users: Users | None = None,
    summaries: type[Summaries] = Summaries,
):
    """Ratings and Threads on a new database of the test stack's FerretDB, dropped after."""
    client = mongo_client(f"mongodb://127.0.0.1:{profile.ports['ferretdb']}/")
    db = client[f"scratch_{uuid.uuid4().hex[:12]}"]
    await ensure_indexes(db)
    users = users or Users()
    summaries = summaries(db)
    decisions = Decisions(db)
    ratings = Ratings(Reviews(db), summaries, decisions, Catalog(), purchase or Purchase(), users)
    threads = Threads(Comments(db), decisions, Catalog(), users)
    try:
        yield ratings, threads
    finally:
        await client.drop_database(db.name)
        await client.close()


async def recount(ratings: Ratings, item: uuid.UUID) -> domain.Summary:
    """The summary counted by hand from every review shown."""
    reviews, total = await ratings.page(item, "recent", 100, 0)
    assert len(reviews) == total
    return domain.summarize(Counter(r.rating for r in reviews))


# ----------------------------------------------------------------------------- reviews


def test_a_recount_stored_late_does_not_leave_the_summary_stale(profile) -> None:
    """The race a plain "recount and store" loses: A counts, B writes, counts and stores, and
    then A's older count lands on top of B's."""

    async def run() -> None:
        async with scratch(profile, summaries=HeldSummaries) as (ratings, _):
            item = uuid.uuid4()
            first = asyncio.create_task(ratings.write(uuid.uuid4(), item, 1, "A"))
            await ratings.summaries.waiting.wait()  # A has counted itself only
            await ratings.write(uuid.uuid4(), item, 5, "B")
            assert await ratings.summary(item) == domain.summarize({1: 1, 5: 1})
            ratings.summaries.go.set()
            await first
            assert await ratings.summary(item) == domain.summarize({1: 1, 5: 1})

    asyncio.run(run())


def test_the_summary_matches_a_recount_after_racing_writes_replaces_deletes_and_hides(
    profile,
) -> None:
    async def run() -> None:
        async with scratch(profile, summaries=LateSummaries) as (ratings, _):
            item = uuid.uuid4()
            users = [uuid.uuid4() for _ in range(24)]

            async def churn(user: uuid.UUID, n: int) -> None:
                # every user writes, most rewrite their review at once, some delete it
                await ratings.write(user, item, random.randint(1, 5), "first")
                await asyncio.gather(
                    *(ratings.write(user, item, random.randint(1, 5), f"v{i}") for i in range(3))
                )
                if n % 3 == 0:
                    await ratings.delete(user, item)

            await asyncio.gather(*(churn(user, n) for n, user in enumerate(users)))
            assert await ratings.summaries.get(item) == await recount(ratings, item)

            # then a second storm: deletes, hides, unhides and new reviews all at once
            reviews, _ = await ratings.page(item, "recent", 100, 0)
            assert len(reviews) == 16
            for review in reviews[10:12]:
                await ratings.moderate(ADMIN, review.id, hidden=True)
            storm = [ratings.delete(r.user_id, item) for r in reviews[:5]]
            storm += [ratings.moderate(ADMIN, r.id, hidden=True) for r in reviews[5:10]]
            storm += [ratings.moderate(ADMIN, r.id, hidden=False) for r in reviews[10:12]]
            storm += [ratings.write(uuid.uuid4(), item, 5, "late") for _ in range(10)]
            await asyncio.gather(*storm)
            summary = await ratings.summaries.get(item)
            assert summary == await recount(ratings, item)
            assert summary.count == 16 - 5 - 5 + 10
            assert await ratings.summary(item) == summary
            assert await ratings.summaries.marked_before(domain.now()) == {}  # all settled

    asyncio.run(run())


def test_one_review_per_user_and_item_even_when_the_same_user_saves_at_once(profile) -> None:
    async def run() -> None:
        async with scratch(profile) as (ratings, _):
            item, user = uuid.uuid4(), uuid.uuid4()
            saved = await asyncio.gather(
                *(ratings.write(user, item, rating, f"take {rating}") for rating in (1, 2, 3, 4, 5))
            )
            assert sum(created for _, created in saved) == 1
            assert len({review.id for review, _ in saved}) == 1
            assert (await ratings.page(item, "recent", 10, 0))[1] == 1
            own = await ratings.own(user, item)
            assert own.comment == f"take {own.rating}"
            summary = await ratings.summary(item)
            assert (summary.count, summary.histogram[str(own.rating)]) == (1, 1)

            rewritten, created = await ratings.write(user, item, 3, "changed my mind")
            assert not created
            assert (rewritten.id, rewritten.created_at) == (own.id, own.created_at)
            assert rewritten.updated_at >= own.updated_at
            assert (await ratings.summary(item)).histogram["3"] == 1

            await ratings.delete(user, item)
            with pytest.raises(domain.ReviewNotFound):
                await ratings.delete(user, item)
            with pytest.raises(domain.ReviewNotFound):
                await ratings.own(user, item)
            assert (await ratings.summary(item)).count == 0

    asyncio.run(run())


def test_pages_sort_by_recent_or_rating_and_leave_hidden_reviews_out(profile) -> None:
    async def run() -> None:
        async with scratch(profile) as (ratings, _):
            item = uuid.uuid4()
            written = [
                (await ratings.write(uuid.uuid4(), item, rating, f"r{n}"))[0]
                for n, rating in enumerate([3, 5, 1, 4, 5, 2])
            ]
            await ratings.write(uuid.uuid4(), uuid.uuid4(), 5, "another item")
            recent, total = await ratings.page(item, "recent", 4, 0)
            assert total == 6
            assert [r.comment for r in recent] == ["r5", "r4", "r3", "r2"]
            rest, _ = await ratings.page(item, "recent", 4, 4)
            assert [r.comment for r in rest] == ["r1", "r0"]
            best, _ = await ratings.page(item, "rating", 10, 0)
            assert [r.rating for r in best] == [5, 5, 4, 3, 2, 1]
            assert [r.comment for r in best[:2]] == ["r4", "r1"]  # ties: newest first

            await ratings.moderate(ADMIN, written[1].id, hidden=True)
            shown, total = await ratings.page(item, "recent", 10, 0)
            assert total == 5 and written[1].id not in {r.id for r in shown}
            assert (await ratings.summary(item)).histogram["5"] == 1
            assert (await ratings.own(written[1].user_id, item)).hidden
            # the author rewriting it does not undo the moderator's decision
            await ratings.write(written[1].user_id, item, 5, "again")
            assert (await ratings.page(item, "recent", 10, 0))[1] == 5
            with pytest.raises(domain.ReviewNotFound):
                await ratings.moderate(ADMIN, uuid.uuid4(), hidden=True)

    asyncio.run(run())


def test_a_replica_never_serves_a_cached_page_after_another_replica_changed_it(profile) -> None:
    async def run() -> None:
        purchase = Purchase(answer=None)
        async with scratch(profile, purchase) as (one, _):
            db = one.reviews.reviews.database
            other = Ratings(Reviews(db), Summaries(db), Decisions(db), Catalog(), purchase, Users())
            item = uuid.uuid4()
            first, _ = await one.write(uuid.uuid4(), item, 3, "first")
            assert [r.comment for r in (await one.page(item, "recent", 10, 0))[0]] == ["first"]
            await other.write(uuid.uuid4(), item, 4, "second")
            page, total = await one.page(item, "recent", 10, 0)
            assert ([r.comment for r in page], total) == (["second", "first"], 2)
            await other.moderate(ADMIN, first.id, hidden=True)
            assert [r.comment for r in (await one.page(item, "recent", 10, 0))[0]] == ["second"]
            purchase.answer = True  # the verified flags come in through the other replica
            assert await other.complete_pending() == 2
            page, _ = await one.page(item, "recent", 10, 0)
            assert [r.verified_purchase for r in page] == [True]

    asyncio.run(run())


def test_moderation_and_deletion_hold_against_edits_of_the_same_moment(profile) -> None:
    """FerretDB writes an updated document back whole, so an author's edit at the moment a
    moderator hides the review can write `hidden: false` back (and a hide, a deleted comment's
    text). The repair loop's next round puts every recent decision back in force."""

    async def run() -> None:
        async with scratch(profile) as (ratings, threads):
            event, author = uuid.uuid4(), uuid.uuid4()
            hidden_reviews, erased_comments = [], []
            for _ in range(4):
                item = uuid.uuid4()
                review, _ = await ratings.write(author, item, 1, "rude")
                edits = [ratings.write(author, item, 1 + n % 5, f"edit {n}") for n in range(8)]
                hide = ratings.moderate(ADMIN, review.id, hidden=True)
                await asyncio.gather(*edits[:4], hide, *edits[4:])
                hidden_reviews.append((item, review))

                comment = await threads.post(author, event, "regrettable")
                await threads.reply(uuid.uuid4(), comment.id, "keeps it as [deleted]")
                await asyncio.gather(
                    threads.moderate(ADMIN, comment.id, hidden=True),
                    threads.delete(author, False, comment.id),
                )
                erased_comments.append(comment)

            await repair(ratings, threads, grace=10)  # what the loop does every few seconds
            for item, _ in hidden_reviews:
                assert (await ratings.own(author, item)).hidden
                assert (await ratings.summary(item)).count == 0
            for comment in erased_comments:
                stored = await threads.comments.get(comment.id)
                assert (stored.deleted, stored.hidden, stored.body) == (True, True, None)
            assert len(await ratings.decisions.fresh("review")) == 4  # checked for a while yet
            await ratings.recheck_decisions(window=0)
            await threads.recheck_decisions(window=0)
            assert await ratings.decisions.fresh("comment") == []

    asyncio.run(run())


def test_a_summary_left_unsettled_by_a_lost_writer_is_recounted_by_the_sweeper(profile) -> None:
    async def run() -> None:
        async with scratch(profile) as (ratings, _):
            item = uuid.uuid4()
            await ratings.write(uuid.uuid4(), item, 4, "settled")
            # a writer that marks the item, writes its review and dies before the recount
            at = domain.now() - timedelta(seconds=30)
            await ratings.summaries.mark(item, at)
            lost, _ = await ratings.write(uuid.uuid4(), uuid.uuid4(), 1, "template")
            lost.id, lost.item_id, lost.user_id = uuid.uuid4(), item, uuid.uuid4()
            assert await ratings.reviews.insert(lost)
            assert (await ratings.summary(item)).count == 1  # stale

            await ratings.summaries.mark(item, domain.now())  # a writer still at work
            assert await ratings.sweep(grace=10) == 1
            assert await ratings.summary(item) == domain.summarize({4: 1, 1: 1})
            assert list(await ratings.summaries.marked_before(domain.now())) == [item]
            assert await ratings.sweep(grace=10) == 0

    asyncio.run(run())


def test_answers_purchase_and_auth_could_not_give_are_filled_in_later(profile) -> None:
    async def run() -> None:
        purchase, users = Purchase(answer=None), Users(answering=False)
        async with scratch(profile, purchase, users) as (ratings, threads):
            item, user, event = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            review, _ = await ratings.write(user, item, 5, "bought it, I think")
            assert (review.verified_purchase, review.author_name) == (None, None)
            comment = await threads.post(user, event, "hello")
            assert await ratings.complete_pending() == 0  # still nobody answers

            purchase.answer, users.answering = True, True
            assert await ratings.complete_pending() == 1
            assert await threads.complete_pending() == 1
            [shown], _ = await ratings.page(item, "recent", 10, 0)
            assert (shown.verified_purchase, shown.author_name) == (True, f"user {str(user)[:4]}")
            [thread], _ = await threads.page(event, 10, 0)
            assert thread.comment.id == comment.id and thread.comment.author_name
            assert await ratings.reviews.pending() == [] and await threads.comments.pending() == []

    asyncio.run(run())


# ---------------------------------------------------------------------------- comments


def test_threads_nest_replies_paginate_top_level_and_keep_deleted_parents(profile) -> None:
    async def run() -> None:
        async with scratch(profile) as (_, threads):
            event, ada, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            first = await threads.post(ada, event, "first")
            chain = [first]
            for depth in range(1, domain.MAX_DEPTH + 1):
                writer = bob if depth % 2 else ada
                chain.append(await threads.reply(writer, chain[-1].id, f"d{depth}"))
            with pytest.raises(domain.ThreadTooDeep):
                await threads.reply(ada, chain[-1].id, "too deep")
            sibling = await threads.reply(bob, first.id, "sibling")
            tops = [await threads.post(bob, event, f"top {n}") for n in range(3)]
            await threads.post(ada, uuid.uuid4(), "another event")

            page, total = await threads.page(event, 2, 0)
            assert total == 4
            assert [t.comment.body for t in page] == ["top 2", "top 1"]
            [last], _ = await threads.page(event, 2, 3)
            assert [r.comment.body for r in last.replies] == ["d1", "sibling"]
            node, depth = last.replies[0], 1
            while node.replies:
                [node] = node.replies
                depth += 1
            assert (node.comment.body, depth) == (f"d{domain.MAX_DEPTH}", domain.MAX_DEPTH)

            with pytest.raises(domain.NotAuthor):
                await threads.delete(bob, False, chain[2].id)
            await threads.delete(ada, False, chain[2].id)  # has replies: stays as [deleted]
            [last], _ = await threads.page(event, 1, 3)
            kept = last.replies[0].replies[0]
            assert kept.comment.deleted and kept.comment.body is None
            assert kept.comment.author_name is None and kept.replies
            with pytest.raises(domain.CommentNotFound):
                await threads.reply(bob, chain[2].id, "to a deleted comment")
            with pytest.raises(domain.CommentNotFound):
                await threads.delete(ada, False, chain[2].id)

            # deleting the replies below it, deepest first, removes the deleted one too
            for comment in reversed(chain[3:]):
                await threads.delete(uuid.uuid4(), True, comment.id)  # an admin
            assert await threads.comments.get(chain[2].id) is None
            [last], _ = await threads.page(event, 1, 3)
            assert [r.comment.body for r in last.replies] == ["d1", "sibling"]
            assert last.replies[0].replies == []

            await threads.delete(bob, False, tops[0].id)  # no replies: gone
            assert (await threads.page(event, 10, 0))[1] == 3
            await threads.moderate(ADMIN, sibling.id, hidden=True)
            await threads.moderate(ADMIN, first.id, hidden=True)
            page, total = await threads.page(event, 10, 0)
            assert total == len(page) == 3  # hidden, it stays in place with its replies
            hidden = page[-1]
            assert (hidden.comment.id, hidden.comment.hidden) == (first.id, True)
            assert [(r.comment.body, r.comment.hidden) for r in hidden.replies] == [
                ("d1", False),
                ("sibling", True),
            ]
            with pytest.raises(domain.CommentNotFound):
                await threads.reply(ada, first.id, "to a hidden comment")
            await threads.moderate(ADMIN, first.id, hidden=False)
            [*_, back], _ = await threads.page(event, 10, 0)
            assert not back.comment.hidden
            assert [r.comment.hidden for r in back.replies] == [False, True]  # sibling still
            with pytest.raises(domain.CommentNotFound):
                await threads.moderate(ADMIN, uuid.uuid4(), hidden=True)

    asyncio.run(run())


def test_a_reply_racing_the_deletion_of_its_parent_never_hangs_in_the_void(profile) -> None:
    async def run() -> None:
        async with scratch(profile) as (_, threads):
            event, author = uuid.uuid4(), uuid.uuid4()
            outcomes = Counter()
            for _ in range(8):
                parent = await threads.post(author, event, "going away")

                async def reply(parent=parent) -> None:
                    try:
                        await threads.reply(uuid.uuid4(), parent.id, "quick")
                        outcomes["replied"] += 1
                    except domain.CommentNotFound:
                        outcomes["refused"] += 1

                await asyncio.gather(threads.delete(author, False, parent.id), reply(), reply())
            page, total = await threads.page(event, 100, 0)
            for thread in page:  # a parent that stayed has its replies, as [deleted]
                assert thread.comment.deleted and thread.replies
            shown = sum(len(t.replies) for t in page)
            assert shown == outcomes["replied"] and len(page) == total
            stored = await threads.comments.comments.count_documents({"depth": 1})
            assert stored == shown  # every reply stored was accepted, and none is orphaned

    asyncio.run(run())
