"""voided events (cancelled: their reserved orders void, no award after) and an email outbox

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0003"
down_revision = "0002"

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "voided_events",
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("key", sa.Text, nullable=False, unique=True),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done_at", sa.DateTime(timezone=True)),
    )
    op.create_index("notices_due", "notices", ["due_at"], postgresql_where="done_at IS NULL")


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_table("voided_events")
