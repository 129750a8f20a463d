"""bidding: events, lots, ranked sessions, bids, rankings, follow-up tasks

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0002"
down_revision = "0001"

NOW = sa.text("now()")


def timestamp(name: str, **kwargs) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)


def uuid(name: str, *args, **kwargs) -> sa.Column:
    return sa.Column(name, UUID(as_uuid=True), *args, **kwargs)


def upgrade() -> None:
    op.create_table(
        "events",
        uuid("id", primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        timestamp("starts_at", nullable=False),
        timestamp("ends_at", nullable=False),
        sa.Column("soft_close_seconds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("extension_seconds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("scoring", JSONB),
    )
    op.create_table(
        "lots",
        uuid("id", primary_key=True),
        uuid("event_id", sa.ForeignKey("events.id"), nullable=False),
        uuid("item_id", nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("starting_price", sa.Numeric, nullable=False),
        sa.Column("increment", sa.Text, nullable=False),
        sa.Column("reserve_price", sa.Numeric),
        sa.Column("buy_now_price", sa.Numeric),
        sa.Column("current_price", sa.Numeric),
        uuid("leader_id"),
        sa.Column("leader_name", sa.Text),
        sa.Column("leader_max", sa.Numeric),
        sa.Column("bid_count", sa.Integer, nullable=False, server_default="0"),
        timestamp("ends_at", nullable=False),
        sa.Column("extensions", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        timestamp("settled_at"),
        sa.CheckConstraint("status IN ('open', 'sold', 'unsold', 'cancelled')", name="lots_status"),
    )
    op.create_index("lots_event", "lots", ["event_id", "position"])
    op.create_index("lots_due", "lots", ["ends_at"], postgresql_where="status = 'open'")
    op.create_index("lots_leader", "lots", ["leader_id"], postgresql_where="status = 'sold'")
    op.create_table(
        "sessions",
        uuid("id", primary_key=True),
        uuid("event_id", sa.ForeignKey("events.id"), nullable=False),
        uuid("item_id", nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("upset_price", sa.Numeric, nullable=False),
        sa.Column("inventory", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("final_price", sa.Numeric),
        timestamp("settled_at"),
    )
    op.create_index("sessions_event", "sessions", ["event_id", "position"])
    op.create_table(
        "participants",
        uuid("event_id", primary_key=True),
        uuid("user_id", primary_key=True),
        timestamp("joined_at", nullable=False, server_default=NOW),
    )
    op.create_index("participants_user", "participants", ["user_id"])
    op.create_table(
        "lot_bids",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        uuid("lot_id", nullable=False),
        uuid("bidder_id", nullable=False),
        sa.Column("bidder_name", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric, nullable=False),
        sa.Column("automatic", sa.Boolean, nullable=False),
        timestamp("placed_at", nullable=False, server_default=sa.text("clock_timestamp()")),
    )
    op.create_index("lot_bids_lot", "lot_bids", ["lot_id", sa.text("id DESC")])
    op.create_table(
        "ranked_bids",
        uuid("offer_id", primary_key=True),
        uuid("user_id", primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("price", sa.Numeric, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        timestamp("placed_at", nullable=False),
    )
    op.create_table(
        "session_bids",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        uuid("offer_id", nullable=False),
        uuid("user_id", nullable=False),
        sa.Column("price", sa.Numeric, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        timestamp("placed_at", nullable=False),
    )
    op.create_index("session_bids_offer", "session_bids", ["offer_id"])
    op.create_table(
        "rankings",
        uuid("offer_id", primary_key=True),
        uuid("user_id", primary_key=True),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("price", sa.Numeric, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("won", sa.Boolean, nullable=False),
    )
    op.create_index("rankings_order", "rankings", ["offer_id", "rank"])
    op.create_index("rankings_winner", "rankings", ["user_id"], postgresql_where="won")
    op.create_table(
        "bid_keys",
        uuid("user_id", primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("response", JSONB, nullable=False),
        timestamp("created_at", nullable=False, server_default=NOW),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("key", sa.Text, nullable=False, unique=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        timestamp("due_at", nullable=False, server_default=NOW),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        timestamp("done_at"),
    )
    op.create_index("tasks_due", "tasks", ["due_at"], postgresql_where="done_at IS NULL")


def downgrade() -> None:
    for table in (
        "tasks", "bid_keys", "rankings", "session_bids", "ranked_bids", "lot_bids",
        "participants", "sessions", "lots", "events",
    ):  # fmt: skip
        op.drop_table(table)
