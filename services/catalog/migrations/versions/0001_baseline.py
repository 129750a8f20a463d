"""baseline: the schema starts empty and grows with the service

Revision ID: 0001
"""

revision = "0001"
down_revision = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
