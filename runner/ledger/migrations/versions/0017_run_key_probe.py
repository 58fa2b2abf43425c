"""``run_key_probe``: one row sealed with the run key, so a process started with another key
finds out at once (``runner.sealed.check_key``).

A worker or portal given another ``FIRSTLINE_RUN_KEY`` (or, in ``dev``, one that made its own
key file in another data directory) started and took runs; the secret values the others had
sealed (a new password) could not be opened there, and each such run was escalated
``secrets_unavailable`` with nothing saying why. The row holds a Fernet token of a fixed
text — no secret — under the key every process must share.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    op.create_table(
        "run_key_probe",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("sealed_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_key_probe")
