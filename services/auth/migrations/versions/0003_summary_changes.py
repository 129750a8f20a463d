"""users: when what other services know of a user last changed (their change feed)

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("users", sa.Column("summary_changed_at", sa.DateTime(timezone=True)))
    op.create_index(
        "users_summary_changed_at",
        "users",
        ["summary_changed_at"],
        postgresql_where=sa.text("summary_changed_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("users_summary_changed_at", table_name="users")
    op.drop_column("users", "summary_changed_at")
