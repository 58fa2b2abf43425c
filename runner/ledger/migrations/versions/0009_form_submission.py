"""One-time form tokens of the portal's run forms (runner/formonce.py): a double submit of a
form answers with the first ticket instead of opening another.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "form_submission",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("ticket_number", sa.String(32)),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_form_submission_created_at", "form_submission", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_form_submission_created_at", table_name="form_submission")
    op.drop_table("form_submission")
