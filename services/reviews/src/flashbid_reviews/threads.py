"""Event comments: threads of nested replies. The use cases, between the routes and the store."""

from datetime import timedelta
from uuid import UUID

from flashbid_reviews import domain
from flashbid_reviews.clients import Catalog
from flashbid_reviews.domain import Action, Comment, Decision, Thread
from flashbid_reviews.ratings import Users, check_exists, display_name
from flashbid_reviews.store import Comments, Decisions


class Threads:
    def __init__(
        self, comments: Comments, decisions: Decisions, catalog: Catalog, users: Users
    ) -> None:
        self.comments, self.decisions = comments, decisions
        self.catalog, self.users = catalog, users

    async def check_event(self, event_id: UUID, writing: bool = False) -> None:
        exists = await self.catalog.event_exists(event_id)
        check_exists(exists, domain.EventNotFound("There is no such event."), writing)

    async def post(self, user_id: UUID, event_id: UUID, body: str) -> Comment:
        """A new top-level comment on the event."""
        domain.check_text(body, "body")
        await self.check_event(event_id, writing=True)
        comment = await self._new(user_id, event_id, body, parent=None)
        await self.comments.insert(comment)
        return comment

    async def reply(self, user_id: UUID, parent_id: UUID, body: str) -> Comment:
        domain.check_text(body, "body")
        parent = domain.can_reply_to(await self.comments.get(parent_id))
        comment = await self._new(user_id, parent.event_id, body, parent=parent)
        await self.comments.insert(comment)
        # The parent may have been deleted while we wrote: its deleter marks it deleted, then
        # looks for replies. Seen deleted here, we take our reply back; seen alive, the deleter
        # will see our reply and keep the parent as "[deleted]" above it.
        again = await self.comments.get(parent_id)
        if again is None or again.deleted:
            await self.comments.remove(comment.id)
            await self._prune(parent_id)
            raise domain.CommentNotFound("The comment was deleted meanwhile.")
        return comment

    async def _new(
        self, user_id: UUID, event_id: UUID, body: str, parent: Comment | None
    ) -> Comment:
        return Comment(
            id=domain.new_id(),
            event_id=event_id,
            parent_id=parent.id if parent else None,
            root_id=(parent.root_id or parent.id) if parent else None,
            depth=domain.reply_depth(parent) if parent else 0,
            user_id=user_id,
            author_name=await display_name(self.users, user_id),
            body=body,
            deleted=False,
            hidden=False,
            created_at=domain.now(),
        )

    async def delete(self, user_id: UUID, is_admin: bool, comment_id: UUID) -> None:
        """Gone, or "[deleted]" without author or text while replies hang below it."""
        comment = await self.comments.get(comment_id)
        if comment is None or comment.deleted:
            raise domain.CommentNotFound("There is no such comment.")
        domain.check_may_delete(comment, user_id, is_admin)
        await self._record(comment_id, "erase", user_id)
        await self.comments.erase(comment_id)
        await self._prune(comment_id)

    async def _record(self, comment_id: UUID, action: Action, by: UUID) -> None:
        await self.decisions.record(
            Decision(
                id=domain.new_id(),
                target="comment",
                target_id=comment_id,
                action=action,
                by=by,
                at=domain.now(),
            )
        )

    async def _prune(self, comment_id: UUID | None) -> None:
        """Removes a deleted comment that has no replies (left), then its parent if the same
        now holds for it, and so on up the thread."""
        while comment_id is not None:
            comment = await self.comments.get(comment_id)
            if comment is None or not comment.deleted:
                return
            if await self.comments.has_replies(comment_id):
                return
            if not await self.comments.remove(comment_id, only_if_deleted=True):
                return
            comment_id = comment.parent_id

    async def moderate(self, admin_id: UUID, comment_id: UUID, hidden: bool) -> None:
        """A hidden comment shows as "[hidden]", the replies below it as they are."""
        if await self.comments.get(comment_id) is None:
            raise domain.CommentNotFound("There is no such comment.")
        await self._record(comment_id, "hide" if hidden else "unhide", admin_id)
        if not await self.comments.set_hidden(comment_id, hidden):
            raise domain.CommentNotFound("There is no such comment.")

    async def recheck_decisions(self, window: float) -> int:
        """Puts back hides, unhides and deletions of the last `window` seconds that a
        concurrent update undid."""
        decisions = await self.decisions.fresh("comment")
        hides = {d.target_id: d for d in decisions if d.action != "erase"}
        erased = {d.target_id for d in decisions if d.action == "erase"}
        fixed = 0
        for decision in hides.values():
            comment = await self.comments.get(decision.target_id)
            wanted = decision.action == "hide"
            if comment is not None and comment.hidden != wanted:
                await self.comments.set_hidden(comment.id, wanted)
                fixed += 1
        for comment_id in erased:
            comment = await self.comments.get(comment_id)
            if comment is not None and not (comment.deleted and comment.body is None):
                await self.comments.erase(comment_id)
                await self._prune(comment_id)
                fixed += 1
        old = domain.now() - timedelta(seconds=window)
        await self.decisions.settled([d.id for d in decisions if d.at < old])
        return fixed

    async def page(self, event_id: UUID, limit: int, offset: int) -> tuple[list[Thread], int]:
        """A page of top-level comments with their whole threads: two queries, whatever the
        depth, and the tree is built here."""
        await self.check_event(event_id)
        roots, total = await self.comments.top_level(event_id, limit, offset)
        replies = await self.comments.replies(event_id, [root.id for root in roots])
        return domain.build_threads(roots, replies), total

    async def complete_pending(self) -> int:
        """Authors whose name auth could not tell when they wrote."""
        done = 0
        for comment in await self.comments.pending():
            if comment.user_id is None:
                continue
            if (author := await display_name(self.users, comment.user_id)) is not None:
                await self.comments.fill_in_author(comment.id, author)
                done += 1
        return done
