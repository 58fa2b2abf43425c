"""Run leases and per-target serialisation (issue 9): a running ticket's lease renewed by
its worker's heartbeat (an expired lease means the worker died; ``runner.leases``), and the
target locks that keep two runs against the same account, host or queue from executing at
once (``runner.target_locks``). Tables in ``runner/ledger/lease_tables.py``.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "run_lease",
        sa.Column("ticket_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(96)),
        sa.Column("lease_until", sa.String(32)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("renewed_at", sa.String(32)),
    )
    op.create_index("ix_run_lease_lease_until", "run_lease", ["lease_until"])
    op.create_table(
        "target_lock",
        sa.Column("target_key", sa.String(255), primary_key=True),
        sa.Column("ticket_id", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(96), nullable=False),
        sa.Column("lease_until", sa.String(32), nullable=False),
        sa.Column("acquired_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_target_lock_owner", "target_lock", ["owner"])
    op.create_index("ix_target_lock_ticket_id", "target_lock", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_target_lock_ticket_id", table_name="target_lock")
    op.drop_index("ix_target_lock_owner", table_name="target_lock")
    op.drop_table("target_lock")
    op.drop_index("ix_run_lease_lease_until", table_name="run_lease")
    op.drop_table("run_lease")
