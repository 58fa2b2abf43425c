"""Tickets keep the reason an agent gave for a one-click fix (``ticket.work_note``).

Required by the portal's agent fixes (docs/portal.md "Agents"), also written into the
``ticket.opened`` audit event. NULL for self-service and CLI runs and for tickets opened
before this revision.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("work_note", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("work_note")
