"""orders: flash-sale events and offers with their stock, holdings, orders, idempotency keys

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"

NOW = sa.text("now()")


def timestamp(name: str, **kwargs) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)


def upgrade() -> None:
    op.create_table(
        "sale_events",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        timestamp("starts_at", nullable=False),
        timestamp("ends_at", nullable=False),
        sa.Column("reservation_timeout_seconds", sa.Integer, nullable=False),
        sa.Column("reported_sold_out", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "offers",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), sa.ForeignKey("sale_events.id"), nullable=False),
        sa.Column("item_id", UUID(as_uuid=True), nullable=False),
        sa.Column("unit_price", sa.Numeric, nullable=False),
        sa.Column("per_user_limit", sa.Integer, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("remaining", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("confirmed", sa.Integer, nullable=False, server_default="0"),
        # The invariant, checked by PostgreSQL at every statement.
        sa.CheckConstraint(
            "remaining >= 0 AND reserved >= 0 AND confirmed >= 0 "
            "AND remaining + reserved + confirmed = stock",
            name="offers_stock_balance",
        ),
    )
    op.create_index("offers_event", "offers", ["event_id"])
    op.create_table(
        "holdings",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("offer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("per_user_limit", sa.Integer, nullable=False),
        sa.CheckConstraint(
            "quantity >= 0 AND quantity <= per_user_limit", name="holdings_within_limit"
        ),
    )
    op.create_table(
        "orders",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("offer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("item_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.Numeric, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        timestamp("expires_at", nullable=False),
        timestamp("created_at", nullable=False, server_default=NOW),
        timestamp("updated_at", nullable=False, server_default=NOW),
        sa.CheckConstraint(
            "status IN ('reserved', 'confirmed', 'cancelled', 'expired')", name="orders_status"
        ),
        sa.CheckConstraint("quantity > 0", name="orders_quantity"),
    )
    op.create_index("orders_user", "orders", ["user_id", sa.text("created_at DESC")])
    op.create_index("orders_event", "orders", ["event_id", "status"])
    op.create_index(
        "orders_expiring", "orders", ["expires_at"], postgresql_where="status = 'reserved'"
    )
    op.create_index(
        "orders_one_award",
        "orders",
        ["offer_id", "user_id"],
        unique=True,
        postgresql_where="kind <> 'flash_sale'",
    )
    op.create_index(
        "orders_bought", "orders", ["user_id", "item_id"], postgresql_where="status = 'confirmed'"
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        timestamp("created_at", nullable=False, server_default=NOW),
    )
    op.create_index("idempotency_keys_age", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    for table in ("idempotency_keys", "orders", "holdings", "offers", "sale_events"):
        op.drop_table(table)
