"""Tickets name who opened them (the person at the keyboard or the signed-in agent) beside
the requester (on whose behalf). NULL for tickets opened before this revision.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("opened_by", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("opened_by")
