"""events: catalog items, events with their offers, status transitions

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


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("image_url", sa.Text),
        timestamp("created_at", nullable=False, server_default=NOW),
        timestamp("archived_at"),
    )
    op.create_index("items_category", "items", ["category", "name"])
    op.create_table(
        "events",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        timestamp("starts_at", nullable=False),
        timestamp("ends_at", nullable=False),
        sa.Column("reservation_timeout_seconds", sa.Integer),
        sa.Column("soft_close_seconds", sa.Integer),
        sa.Column("extension_seconds", sa.Integer),
        sa.Column("scoring", JSONB),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("synced_version", sa.Integer, nullable=False, server_default="0"),
        timestamp("sync_due_at", nullable=False, server_default=NOW),
        sa.Column("sync_attempts", sa.Integer, nullable=False, server_default="0"),
        timestamp("created_at", nullable=False, server_default=NOW),
        timestamp("updated_at", nullable=False, server_default=NOW),
        sa.CheckConstraint("kind IN ('flash_sale', 'auction', 'ranked')", name="events_kind"),
        sa.CheckConstraint(
            "status IN ('draft', 'scheduled', 'live', 'sold_out', 'ended', 'cancelled')",
            name="events_status",
        ),
        sa.CheckConstraint("ends_at > starts_at", name="events_ends_after_start"),
    )
    op.create_index("events_created", "events", [sa.text("created_at DESC")])
    # What the scheduler and the sync loop look for many times a second.
    op.create_index(
        "events_due_start", "events", ["starts_at"], postgresql_where="status = 'scheduled'"
    )
    op.create_index(
        "events_due_end",
        "events",
        ["ends_at"],
        postgresql_where="status IN ('scheduled', 'live', 'sold_out')",
    )
    op.create_index(
        "events_unsynced",
        "events",
        ["sync_due_at"],
        postgresql_where="synced_version < version AND status <> 'draft'",
    )
    op.create_table(
        "offers",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "event_id",
            UUID(as_uuid=True),
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("item_id", UUID(as_uuid=True), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("price", sa.Numeric, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("per_user_limit", sa.Integer),
        sa.Column("increment", sa.Text),
        sa.Column("reserve_price", sa.Numeric),
        sa.Column("buy_now_price", sa.Numeric),
        sa.CheckConstraint("price > 0 AND quantity > 0", name="offers_positive"),
    )
    op.create_index("offers_event", "offers", ["event_id", "position"])
    op.create_index("offers_item", "offers", ["item_id"])
    op.create_table(
        "transitions",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "event_id",
            UUID(as_uuid=True),
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("from_status", sa.Text, nullable=False),
        sa.Column("to_status", sa.Text, nullable=False),
        timestamp("at", nullable=False, server_default=sa.text("clock_timestamp()")),
        timestamp("due_at"),
        sa.Column("actor", sa.Text, nullable=False),
    )
    op.create_index("transitions_event", "transitions", ["event_id", "id"])


def downgrade() -> None:
    for table in ("transitions", "offers", "events", "items"):
        op.drop_table(table)
