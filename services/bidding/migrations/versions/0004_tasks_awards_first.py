"""bidding: pending tasks indexed in the order they are claimed, awards before emails

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.drop_index("tasks_due", table_name="tasks")
    op.execute("CREATE INDEX tasks_due ON tasks ((kind <> 'award'), due_at) WHERE done_at IS NULL")


def downgrade() -> None:
    op.drop_index("tasks_due", table_name="tasks")
    op.create_index("tasks_due", "tasks", ["due_at"], postgresql_where="done_at IS NULL")
