"""Reviews' collections on the MongoDB wire protocol.

Locally that is FerretDB 1.24: no transactions, and an update is a read followed by a write of
the whole document, so concurrent `$inc`s lose counts (200 at once left a counter at 25 to 120)
and an update of one field can write back another field's old value. What stays atomic there:
an insert against a unique index, a delete, and the whole-document write itself (the last writer
wins). Summaries rest on those alone (`Ratings.refresh_summary`); flags set by moderators and
deletions are read back, and re-checked for a while (`Decisions`).

FerretDB 1.24 also scans the whole collection for every query (its indexes are not used for
filters) and evaluates `$in` and ranges itself on what it fetched: queries here start with a
plain equality, which it turns into SQL. The indexes serve MongoDB."""

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

import msgspec
from litestar import Litestar
from litestar.datastructures import State
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from flashbid_reviews import domain
from flashbid_reviews.domain import Comment, Decision, Review, Summary, new_id

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

INDEXES = {
    "reviews": [
        IndexModel([("item_id", ASCENDING), ("user_id", ASCENDING)], unique=True),
        IndexModel([("item_id", ASCENDING), ("hidden", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel(
            [
                ("item_id", ASCENDING),
                ("hidden", ASCENDING),
                ("rating", DESCENDING),
                ("created_at", DESCENDING),
            ]
        ),
        IndexModel([("pending", ASCENDING)]),
    ],
    "comments": [
        IndexModel([("event_id", ASCENDING), ("depth", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("event_id", ASCENDING), ("root_id", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel([("parent_id", ASCENDING)]),
        IndexModel([("pending", ASCENDING)]),
    ],
    "summary_marks": [IndexModel([("at", ASCENDING)])],
    "decisions": [
        IndexModel([("fresh", ASCENDING), ("target", ASCENDING)]),
        IndexModel([("target_id", ASCENDING)]),
        IndexModel([("item_id", ASCENDING), ("author_id", ASCENDING)]),
    ],
}
MAX_REPLIES = 2000  # replies loaded with one page of threads; a longer thread is cut there


def translated(call: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """MongoDB not answering becomes `StoreUnavailable` (503), the one error table's business."""

    @functools.wraps(call)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await call(*args, **kwargs)
        except ConnectionFailure as exc:  # also AutoReconnect and ServerSelectionTimeoutError
            log.warning("MongoDB unavailable: %r", exc)
            raise domain.StoreUnavailable(
                "Reviews are unavailable for a moment; try again shortly.", retry_after=2
            ) from exc

    return guarded


async def _update_and_check(
    collection: AsyncCollection, doc_id: str, update: dict[str, Any], shows: dict[str, Any]
) -> bool:
    """Applies `update` until the document, read back, `shows` its effect; False if there is no
    such document. FerretDB 1.x updates by reading the document and writing it back whole, so a
    concurrent update of another field of it (an author's edit, a moderator's hide) can put the
    old value of ours back. MongoDB needs a single round."""
    for _ in range(3):
        if (await collection.update_one({"_id": doc_id}, update)).matched_count == 0:
            return False
        doc = await collection.find_one({"_id": doc_id}, dict.fromkeys(shows, 1))
        if doc is None:
            return False
        if all(doc.get(field) == value for field, value in shows.items()):
            return True
    log.warning("%s %s: an update kept being undone", collection.name, doc_id)
    return True


async def ensure_indexes(db: AsyncDatabase) -> None:
    # Only the missing ones: FerretDB 1.24 drops the connection on a createIndexes that repeats
    # an existing index, where MongoDB answers ok.
    for collection, indexes in INDEXES.items():
        existing = await db[collection].index_information()
        missing = [index for index in indexes if index.document["name"] not in existing]
        if missing:
            await db[collection].create_indexes(missing)


async def _ensure_indexes_until_done(db: AsyncDatabase) -> None:
    """MongoDB may be down when we start; the service still starts and catches up."""
    delay = 0.5
    while True:
        try:
            await ensure_indexes(db)
            return
        except Exception as exc:
            log.warning("indexes not created yet: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


def mongo_client(url: str) -> AsyncMongoClient:
    """One client for the process's life: it reconnects by itself when MongoDB comes back, and
    gives up on an operation after two seconds so that a request fails fast (503) meanwhile."""
    return AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        socketTimeoutMS=10_000,
        tz_aware=True,
    )


@asynccontextmanager
async def mongo(app: Litestar) -> AsyncIterator[None]:
    settings = app.state.settings
    client = mongo_client(settings.mongo_url)
    app.state.mongo = client[settings.mongo_database]
    indexing = asyncio.create_task(_ensure_indexes_until_done(app.state.mongo))
    try:
        yield
    finally:
        indexing.cancel()
        await client.close()


async def ping_mongo(state: State) -> None:
    await state.mongo.command("ping")


def _id(value: UUID) -> str:
    return str(value)


# ----------------------------------------------------------------------------- reviews


def _review(doc: dict[str, Any]) -> Review:
    return Review(
        id=UUID(doc["_id"]),
        item_id=UUID(doc["item_id"]),
        user_id=UUID(doc["user_id"]),
        rating=doc["rating"],
        comment=doc["comment"],
        author_name=doc.get("author_name"),
        verified_purchase=doc.get("verified_purchase"),
        hidden=doc.get("hidden", False),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


SORTS = {
    "recent": [("created_at", DESCENDING), ("_id", DESCENDING)],
    "rating": [("rating", DESCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)],
}


class Reviews:
    def __init__(self, db: AsyncDatabase) -> None:
        self.reviews = db.reviews

    @translated
    async def insert(self, review: Review) -> bool:
        """False if the user has reviewed the item already (the unique index says so)."""
        doc = {
            "_id": _id(review.id),
            "item_id": _id(review.item_id),
            "user_id": _id(review.user_id),
            "rating": review.rating,
            "comment": review.comment,
            "author_name": review.author_name,
            "verified_purchase": review.verified_purchase,
            "hidden": review.hidden,
            "created_at": review.created_at,
            "updated_at": review.updated_at,
        }
        if review.author_name is None or review.verified_purchase is None:
            doc["pending"] = True
        try:
            await self.reviews.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    @translated
    async def replace(self, review: Review) -> Review | None:
        """Rewrites the user's review of the item (keeping its id, creation time and whether a
        moderator hid it); None if there is none (deleted meanwhile)."""
        pending = review.author_name is None or review.verified_purchase is None
        update: dict[str, Any] = {
            "$set": {
                "rating": review.rating,
                "comment": review.comment,
                "author_name": review.author_name,
                "verified_purchase": review.verified_purchase,
                "updated_at": review.updated_at,
                **({"pending": True} if pending else {}),
            }
        }
        if not pending:
            update["$unset"] = {"pending": ""}
        doc = await self.reviews.find_one_and_update(
            {"item_id": _id(review.item_id), "user_id": _id(review.user_id)},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return _review(doc) if doc else None

    @translated
    async def of_user(self, item_id: UUID, user_id: UUID) -> Review | None:
        doc = await self.reviews.find_one({"item_id": _id(item_id), "user_id": _id(user_id)})
        return _review(doc) if doc else None

    @translated
    async def get(self, review_id: UUID) -> Review | None:
        doc = await self.reviews.find_one({"_id": _id(review_id)})
        return _review(doc) if doc else None

    @translated
    async def delete(self, item_id: UUID, user_id: UUID) -> bool:
        deleted = await self.reviews.delete_one({"item_id": _id(item_id), "user_id": _id(user_id)})
        return deleted.deleted_count == 1

    @translated
    async def set_hidden(self, review_id: UUID, hidden: bool) -> bool:
        return await _update_and_check(
            self.reviews, _id(review_id), {"$set": {"hidden": hidden}}, {"hidden": hidden}
        )

    @translated
    async def page(
        self, item_id: UUID, sort: str, limit: int, offset: int
    ) -> tuple[list[Review], int]:
        visible = {"item_id": _id(item_id), "hidden": False}
        docs, total = await asyncio.gather(
            self.reviews.find(visible).sort(SORTS[sort]).skip(offset).limit(limit).to_list(),
            self.reviews.count_documents(visible),
        )
        return [_review(doc) for doc in docs], total

    @translated
    async def rating_counts(self, item_id: UUID) -> dict[int, int]:
        """How many visible reviews of the item give each rating, counted afresh."""
        cursor = await self.reviews.aggregate(
            [
                {"$match": {"item_id": _id(item_id), "hidden": False}},
                {"$group": {"_id": "$rating", "n": {"$sum": 1}}},
            ]
        )
        return {row["_id"]: row["n"] for row in await cursor.to_list()}

    @translated
    async def pending(self, limit: int = 100) -> list[Review]:
        """Reviews saved while purchase or auth did not answer."""
        docs = await self.reviews.find({"pending": True}).limit(limit).to_list()
        return [_review(doc) for doc in docs]

    @translated
    async def fill_in(
        self, review: Review, verified_purchase: bool | None, author_name: str | None
    ) -> None:
        """What was missing, unless the review was rewritten meanwhile (which asked afresh)."""
        update: dict[str, Any] = {
            "$set": {"verified_purchase": verified_purchase, "author_name": author_name}
        }
        if verified_purchase is not None and author_name is not None:
            update["$unset"] = {"pending": ""}
        await self.reviews.update_one(
            {"_id": _id(review.id), "updated_at": review.updated_at}, update
        )


# --------------------------------------------------------------------------- summaries


class Summaries:
    """One document per item with its histogram, and the marks of writes in progress.

    A writer marks the item before it changes a review and removes its mark once the summary is
    right again; a mark left behind (a crash, MongoDB gone mid-request) tells the sweeper which
    summary to recount."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.summaries, self.marks = db.summaries, db.summary_marks

    @translated
    async def get(self, item_id: UUID) -> Summary | None:
        doc = await self.summaries.find_one({"_id": _id(item_id)})
        if doc is None:
            return None
        return domain.summarize({int(k): v for k, v in doc["histogram"].items()})

    @translated
    async def version(self, item_id: UUID) -> str | None:
        """Changes with every store of the summary, so with every change to the item's reviews:
        what a cached page of them is checked against."""
        doc = await self.summaries.find_one({"_id": _id(item_id)}, {"version": 1})
        return doc.get("version") if doc else None

    @translated
    async def put(self, item_id: UUID, summary: Summary, at: datetime) -> None:
        doc = {"histogram": summary.histogram, "updated_at": at, "version": new_id().hex}
        try:
            await self.summaries.replace_one({"_id": _id(item_id)}, doc, upsert=True)
        except DuplicateKeyError:  # two first summaries at once: FerretDB upserts by inserting
            await self.summaries.replace_one({"_id": _id(item_id)}, doc)

    @translated
    async def mark(self, item_id: UUID, at: datetime) -> str:
        mark = str(new_id())
        await self.marks.insert_one({"_id": mark, "item_id": _id(item_id), "at": at})
        return mark

    @translated
    async def unmark(self, marks: list[str]) -> None:
        for mark in marks:
            await self.marks.delete_one({"_id": mark})

    @translated
    async def marked_before(self, moment: datetime, limit: int = 500) -> dict[UUID, list[str]]:
        """Items with marks older than `moment` (their writer is gone), and those marks."""
        docs = await self.marks.find({"at": {"$lt": moment}}).limit(limit).to_list()
        found: dict[UUID, list[str]] = {}
        for doc in docs:
            found.setdefault(UUID(doc["item_id"]), []).append(doc["_id"])
        return found


# ---------------------------------------------------------------------------- comments


def _comment(doc: dict[str, Any]) -> Comment:
    return Comment(
        id=UUID(doc["_id"]),
        event_id=UUID(doc["event_id"]),
        parent_id=UUID(doc["parent_id"]) if doc.get("parent_id") else None,
        root_id=UUID(doc["root_id"]) if doc.get("root_id") else None,
        depth=doc["depth"],
        user_id=UUID(doc["user_id"]) if doc.get("user_id") else None,
        author_name=doc.get("author_name"),
        body=doc.get("body"),
        deleted=doc.get("deleted", False),
        hidden=doc.get("hidden", False),
        created_at=doc["created_at"],
    )


class Comments:
    def __init__(self, db: AsyncDatabase) -> None:
        self.comments = db.comments

    @translated
    async def insert(self, comment: Comment) -> None:
        doc = {
            "_id": _id(comment.id),
            "event_id": _id(comment.event_id),
            "parent_id": _id(comment.parent_id) if comment.parent_id else None,
            "root_id": _id(comment.root_id) if comment.root_id else None,
            "depth": comment.depth,
            "user_id": _id(comment.user_id) if comment.user_id else None,
            "author_name": comment.author_name,
            "body": comment.body,
            "deleted": False,
            "hidden": False,
            "created_at": comment.created_at,
        }
        if comment.author_name is None:
            doc["pending"] = True
        await self.comments.insert_one(doc)

    @translated
    async def get(self, comment_id: UUID) -> Comment | None:
        doc = await self.comments.find_one({"_id": _id(comment_id)})
        return _comment(doc) if doc else None

    @translated
    async def top_level(self, event_id: UUID, limit: int, offset: int) -> tuple[list[Comment], int]:
        """A page of the event's top-level comments (hidden ones too: their replies are shown),
        newest first, and how many there are."""
        shown = {"event_id": _id(event_id), "depth": 0}
        order = [("created_at", DESCENDING), ("_id", DESCENDING)]
        docs, total = await asyncio.gather(
            self.comments.find(shown).sort(order).skip(offset).limit(limit).to_list(),
            self.comments.count_documents(shown),
        )
        return [_comment(doc) for doc in docs], total

    @translated
    async def replies(self, event_id: UUID, root_ids: list[UUID]) -> list[Comment]:
        """Every reply in the threads of these top-level comments, in one query."""
        if not root_ids:
            return []
        found = self.comments.find(
            {"event_id": _id(event_id), "root_id": {"$in": [_id(r) for r in root_ids]}}
        )
        order = [("created_at", ASCENDING), ("_id", ASCENDING)]
        docs = await found.sort(order).limit(MAX_REPLIES).to_list()
        return [_comment(doc) for doc in docs]

    @translated
    async def erase(self, comment_id: UUID) -> None:
        """Deleted, but kept as a place holder for its replies: no author, no text."""
        await _update_and_check(
            self.comments,
            _id(comment_id),
            {
                "$set": {"deleted": True},
                "$unset": {"body": "", "author_name": "", "user_id": "", "pending": ""},
            },
            {"deleted": True, "body": None},
        )

    @translated
    async def has_replies(self, comment_id: UUID) -> bool:
        return await self.comments.find_one({"parent_id": _id(comment_id)}, {"_id": 1}) is not None

    @translated
    async def remove(self, comment_id: UUID, only_if_deleted: bool = False) -> bool:
        query: dict[str, Any] = {"_id": _id(comment_id)}
        if only_if_deleted:
            query["deleted"] = True
        return (await self.comments.delete_one(query)).deleted_count == 1

    @translated
    async def set_hidden(self, comment_id: UUID, hidden: bool) -> bool:
        return await _update_and_check(
            self.comments, _id(comment_id), {"$set": {"hidden": hidden}}, {"hidden": hidden}
        )

    @translated
    async def pending(self, limit: int = 100) -> list[Comment]:
        docs = await self.comments.find({"pending": True}).limit(limit).to_list()
        return [_comment(doc) for doc in docs]

    @translated
    async def fill_in_author(self, comment_id: UUID, author_name: str) -> None:
        await self.comments.update_one(
            {"_id": _id(comment_id), "deleted": False},
            {"$set": {"author_name": author_name}, "$unset": {"pending": ""}},
        )


# --------------------------------------------------------------------------- decisions


class Decisions:
    """Moderators' hides and unhides and authors' deletions, kept as records (also the
    moderation history). For a while after each, the repair loop checks that it still holds:
    on FerretDB an author's edit at the same moment can write the old state back."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.decisions = db.decisions

    @translated
    async def record(self, decision: Decision) -> None:
        doc = msgspec.to_builtins(decision)
        doc["_id"] = doc.pop("id")
        doc["at"] = decision.at
        await self.decisions.insert_one({**doc, "fresh": True})

    @translated
    async def fresh(self, target: str, limit: int = 500) -> list[Decision]:
        """Decisions still being checked, oldest first."""
        docs = await self.decisions.find({"fresh": True, "target": target}).limit(limit).to_list()
        found = [msgspec.convert({**doc, "id": doc["_id"]}, Decision) for doc in docs]
        return sorted(found, key=lambda d: str(d.id))

    @translated
    async def latest_on_review_of(self, item_id: UUID, author_id: UUID) -> Decision | None:
        """The last hide or unhide of any review the author wrote of the item."""
        docs = (
            await self.decisions.find(
                {"target": "review", "item_id": _id(item_id), "author_id": _id(author_id)}
            )
            .sort([("_id", DESCENDING)])  # UUIDv7: in the order they were made
            .limit(1)
            .to_list()
        )
        return msgspec.convert({**docs[0], "id": docs[0]["_id"]}, Decision) if docs else None

    @translated
    async def settled(self, decision_ids: list[UUID]) -> None:
        for decision_id in decision_ids:
            await self.decisions.update_one({"_id": _id(decision_id)}, {"$unset": {"fresh": ""}})
