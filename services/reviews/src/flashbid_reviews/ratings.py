"""Item reviews and their summaries: the use cases, between the routes and the store."""

import asyncio
import logging
import random
from datetime import timedelta
from typing import Protocol
from uuid import UUID

from flashbid_reviews import domain
from flashbid_reviews.clients import Catalog, Purchase, TtlCache
from flashbid_reviews.domain import Decision, Review, Summary
from flashbid_reviews.store import Decisions, Reviews, Summaries
from flashbid_shared.contracts import UserSummary

log = logging.getLogger(__name__)
PAGE_TTL = 60.0  # seconds a cached page of reviews is kept (checked before every use)
SETTLE_ROUNDS = 20  # a summary still moving after this many recounts is left to the sweeper


class Users(Protocol):
    async def get(self, user_id: UUID) -> UserSummary | None: ...


async def display_name(users: Users, user_id: UUID) -> str | None:
    """The author's name to store with what they write; None if auth does not answer now."""
    user = await users.get(user_id)
    return user.display_name if user is not None else None


def check_exists(exists: bool | None, missing: domain.DomainError, writing: bool) -> None:
    """Catalog's answer: unknown is refused; no answer refuses a write but lets a read through
    (what we hold about an item is worth showing while catalog is away)."""
    if exists is False:
        raise missing
    if exists is None and writing:
        raise domain.CatalogUnavailable("Catalog is not answering; try again shortly.")


class Ratings:
    def __init__(
        self,
        reviews: Reviews,
        summaries: Summaries,
        decisions: Decisions,
        catalog: Catalog,
        purchase: Purchase,
        users: Users,
    ) -> None:
        self.reviews, self.summaries, self.decisions = reviews, summaries, decisions
        self.catalog, self.purchase, self.users = catalog, purchase, users
        self._pages: TtlCache[tuple[str, tuple[list[Review], int]]] = TtlCache(10_000)

    async def check_item(self, item_id: UUID, writing: bool = False) -> None:
        exists = await self.catalog.item_exists(item_id)
        check_exists(exists, domain.ItemNotFound("There is no such item."), writing)

    async def write(
        self, user_id: UUID, item_id: UUID, rating: int, comment: str
    ) -> tuple[Review, bool]:
        """The user's review of the item, created or replaced, and whether it is new."""
        domain.check_text(comment, "comment")
        await self.check_item(item_id, writing=True)
        verified, author, held = await asyncio.gather(
            self.purchase.purchased(user_id, item_id),
            display_name(self.users, user_id),
            self.decisions.latest_on_review_of(item_id, user_id),
        )
        at = domain.now()
        review = Review(
            id=domain.new_id(),
            item_id=item_id,
            user_id=user_id,
            rating=rating,
            comment=comment,
            author_name=author,
            verified_purchase=verified,
            hidden=held is not None and held.action == "hide",  # a new one too: sticks to them
            created_at=at,
            updated_at=at,
        )
        mark = await self.summaries.mark(item_id, at)
        written, created = await self._save(review)
        await self._settle(item_id, [mark])
        return written, created

    async def _save(self, review: Review) -> tuple[Review, bool]:
        # An insert or a replace, whichever applies; they alternate only while the same user
        # deletes the review at the same moment from elsewhere.
        for _ in range(5):
            if await self.reviews.insert(review):
                return review, True
            if (replaced := await self.reviews.replace(review)) is not None:
                return replaced, False
        raise domain.StoreUnavailable("The review kept changing; try again.", retry_after=1)

    async def delete(self, user_id: UUID, item_id: UUID) -> None:
        mark = await self.summaries.mark(item_id, domain.now())
        deleted = await self.reviews.delete(item_id, user_id)
        await self._settle(item_id, [mark])
        if not deleted:
            raise domain.ReviewNotFound("You have not reviewed this item.")

    async def moderate(self, admin_id: UUID, review_id: UUID, hidden: bool) -> None:
        review = await self.reviews.get(review_id)
        if review is None:
            raise domain.ReviewNotFound("There is no such review.")
        await self.decisions.record(
            Decision(
                id=domain.new_id(),
                target="review",
                target_id=review_id,
                action="hide" if hidden else "unhide",
                by=admin_id,
                at=domain.now(),
                item_id=review.item_id,
                author_id=review.user_id,
            )
        )
        if not await self._set_hidden(review.item_id, review_id, hidden):
            raise domain.ReviewNotFound("There is no such review.")

    async def _set_hidden(self, item_id: UUID, review_id: UUID, hidden: bool) -> bool:
        mark = await self.summaries.mark(item_id, domain.now())
        found = await self.reviews.set_hidden(review_id, hidden)
        await self._settle(item_id, [mark])
        return found

    async def recheck_decisions(self, window: float) -> int:
        """Puts back hides and unhides of the last `window` seconds that an edit undid."""
        decisions = await self.decisions.fresh("review")
        latest = {decision.target_id: decision for decision in decisions}
        fixed = 0
        for decision in latest.values():
            review = await self.reviews.get(decision.target_id)
            wanted = decision.action == "hide"
            if review is not None and review.hidden != wanted:
                await self._set_hidden(review.item_id, review.id, wanted)
                fixed += 1
        old = domain.now() - timedelta(seconds=window)
        await self.decisions.settled([d.id for d in decisions if d.at < old])
        return fixed

    async def own(self, user_id: UUID, item_id: UUID) -> Review:
        review = await self.reviews.of_user(item_id, user_id)
        if review is None:
            raise domain.ReviewNotFound("You have not reviewed this item.")
        return review

    async def page(
        self, item_id: UUID, sort: str, limit: int, offset: int
    ) -> tuple[list[Review], int]:
        """A page of the item's shown reviews and their number. Pages are cached in-process,
        labelled with the summary's version read *before* the page: every change to the item's
        reviews stores a new summary version when it settles (before the writer is answered),
        so a cached page is used only while nothing has changed since, in any replica. One
        small read instead of a query and a count."""
        await self.check_item(item_id)
        version = await self.summaries.version(item_id)
        key = (item_id, sort, limit, offset)
        cached = self._pages.get(key)
        if cached is not None and version is not None and cached[0] == version:
            return cached[1]
        found = await self.reviews.page(item_id, sort, limit, offset)
        if version is not None:
            self._pages.put(key, (version, found), PAGE_TTL)
        return found

    async def summary(self, item_id: UUID) -> Summary:
        await self.check_item(item_id)
        found = await self.summaries.get(item_id)
        if found is None:  # never reviewed (or its first writer is not done yet)
            return domain.summarize(await self.reviews.rating_counts(item_id))
        return found

    # ------------------------------------------------------------------ the summary

    async def refresh_summary(self, item_id: UUID) -> bool:
        """Recounts the item's summary until what is stored matches a recount made after it.

        Without transactions, two writers' recounts may be stored in the wrong order. But each
        writer stores after its own write, reads back, and recounts again; so the last store of
        all is followed by a read that sees it and a recount that sees every write: if they
        differ, that writer stores again, so the last store cannot be a stale one. True once
        settled; False if the item kept changing for SETTLE_ROUNDS rounds."""
        counts = await self.reviews.rating_counts(item_id)
        for attempt in range(SETTLE_ROUNDS):
            await self.summaries.put(item_id, domain.summarize(counts), domain.now())
            stored = await self.summaries.get(item_id)
            counts = await self.reviews.rating_counts(item_id)
            if stored == domain.summarize(counts):
                return True
            # writers racing on one item: spread them out, so that one settles it for all
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        return False

    async def _settle(self, item_id: UUID, marks: list[str]) -> None:
        if await self.refresh_summary(item_id):
            await self.summaries.unmark(marks)
        else:
            log.warning("summary of item %s still moving; the sweeper will finish it", item_id)

    async def sweep(self, grace: float) -> int:
        """Recounts the summaries whose writer left a mark `grace` seconds ago or earlier and
        never removed it (it crashed, or MongoDB went away mid-request)."""
        stale = await self.summaries.marked_before(domain.now() - timedelta(seconds=grace))
        for item_id, marks in stale.items():
            await self._settle(item_id, marks)
        return len(stale)

    # ---------------------------------------------------------- answers that came late

    async def complete_pending(self) -> int:
        """Fills in what purchase or auth could not tell when the review was written."""
        done = 0
        for review in await self.reviews.pending():
            verified = review.verified_purchase
            if verified is None:
                verified = await self.purchase.purchased(review.user_id, review.item_id)
            author = review.author_name or await display_name(self.users, review.user_id)
            if (verified, author) != (review.verified_purchase, review.author_name):
                await self.reviews.fill_in(review, verified, author)
                await self._settle(review.item_id, [])  # a new version: cached pages go stale
                done += verified is not None and author is not None
        return done
