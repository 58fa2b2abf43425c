"""Tickets name the directory a run acted on (inventory ``directories`` key; NULL when the
runbook has no ``directory`` parameter, and for tickets opened before this revision).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # batch mode: a plain ADD COLUMN on SQLite and PostgreSQL alike (env.py sets render_as_batch)
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("directory", sa.String(64), nullable=True))
    op.create_index("ix_ticket_directory", "ticket", ["directory"])


def downgrade() -> None:
    op.drop_index("ix_ticket_directory", table_name="ticket")
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("directory")
