"""Run leases and per-target serialisation (issue 9): a running ticket's lease renewed by
its worker's heartbeat (an expired lease means the worker died), and the target locks that
keep two runs against the same account, host or queue from executing at once. Filled in
by that work.

Revision ID: 0012
Revises: 0011
"""

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
