"""Audit at scale (issue 9): the stored canonical bytes of each audit record (so
``firstline audit verify`` hashes what was stored instead of rebuilding it) and the
indexes the auditor's search needs at millions of rows. Filled in by that work.

Revision ID: 0011
Revises: 0010
"""

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
