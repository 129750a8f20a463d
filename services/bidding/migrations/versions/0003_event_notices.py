"""bidding: when each event's starting-soon and ended emails were queued

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("events", sa.Column("starting_noticed_at", sa.DateTime(timezone=True)))
    op.add_column("events", sa.Column("ended_noticed_at", sa.DateTime(timezone=True)))
    # events that ended before this column existed have had their emails queued
    op.execute("UPDATE events SET ended_noticed_at = now() WHERE ends_at <= now()")


def downgrade() -> None:
    op.drop_column("events", "ended_noticed_at")
    op.drop_column("events", "starting_noticed_at")
