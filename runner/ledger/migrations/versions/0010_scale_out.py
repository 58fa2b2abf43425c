"""Scale-out (issue 9): sealed secret values crossing processes — ``run_secret`` (a run's
secret parameters on their way to a worker, its once-only outputs on their way back) and
``once_secret`` (the portal's post/redirect/get hand-over). Every token is encrypted under
``FIRSTLINE_RUN_KEY``, which is never in the database (``runner.sealed``).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "run_secret",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("ticket_id", "kind", name="uq_run_secret_ticket_kind"),
    )
    op.create_index("ix_run_secret_created_at", "run_secret", ["created_at"])
    op.create_table(
        "once_secret",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_once_secret_expires_at", "once_secret", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_once_secret_expires_at", table_name="once_secret")
    op.drop_table("once_secret")
    op.drop_index("ix_run_secret_created_at", table_name="run_secret")
    op.drop_table("run_secret")
