"""``portal_session.must_change``: the session was signed in with a temporary password.

The directory wants a new password (an agent's reset, ``pwdReset`` / ``pwdLastSet=0``, an
expired one in its grace). The agent who made a temporary password saw it; such a session
may therefore only change the password (``runner.auth.require_changed_password``), not act
as the person or make an API token that would outlive the change. Before this revision the
sign-in sent the person to the change page once, and the session could then do everything.
Existing sessions: false (they were signed in before the rule).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.add_column("portal_session", sa.Column("must_change", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("portal_session", "must_change")
