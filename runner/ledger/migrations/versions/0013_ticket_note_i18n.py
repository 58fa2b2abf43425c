"""The resolution note in the requester's other languages: ``ticket.resolution_note_i18n``
(JSON ``{"nl": "..."}``), rendered from a runbook's localized ``resolution.note`` when the
run ends. ``resolution_note`` keeps the English text (the record an ITSM export reads).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("resolution_note_i18n", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("resolution_note_i18n")
