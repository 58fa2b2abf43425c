"""Scale-out (issue 9): sealed secret parameters for out-of-process workers, run leases
(heartbeat), run priority and per-target serialisation. Filled in by the scale-out work.

Revision ID: 0010
Revises: 0009
"""

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
