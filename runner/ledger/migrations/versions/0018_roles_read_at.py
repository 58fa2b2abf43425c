"""``roles_read_at`` on ``portal_session`` and ``portal_api_token``: when the roles they carry
were last read from the directory (``runner.auth.AuthService.recheck``).

Roles are read again every ``FIRSTLINE_ROLE_RECHECK_SECONDS``; kept with the row, every portal
process knows when that was (a process that did not make the session no longer asks the
directory at its first request). Existing rows: NULL, read again at their next use.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    op.add_column("portal_session", sa.Column("roles_read_at", sa.String(32), nullable=True))
    op.add_column("portal_api_token", sa.Column("roles_read_at", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("portal_api_token", "roles_read_at")
    op.drop_column("portal_session", "roles_read_at")
