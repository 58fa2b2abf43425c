"""Portal sign-in state: sessions, API tokens and sign-in throttles (docs/portal.md).

Times are ISO-8601 UTC text (as in the ticket table). Only SHA-256 digests of session ids
and API tokens are stored; throttle keys are digests too (a user who types a password
into the name field leaves no trace of it here).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "portal_session",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("account", sa.String(128), nullable=False),  # requester id: name or name@domain
        sa.Column("directory", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("dn", sa.String(512), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("roles", sa.String(128), nullable=False),  # space-separated
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("last_seen_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(256), nullable=True),
    )
    op.create_index("ix_portal_session_account", "portal_session", ["directory", "username"])
    op.create_table(
        "portal_api_token",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),  # first characters, to tell tokens apart
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("directory", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("dn", sa.String(512), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("roles", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=True),
        sa.Column("last_used_at", sa.String(32), nullable=True),
        sa.Column("revoked_at", sa.String(32), nullable=True),
    )
    op.create_index("ix_portal_api_token_account", "portal_api_token", ["directory", "username"])
    op.create_table(
        "portal_throttle",
        sa.Column("key", sa.String(80), primary_key=True),  # "<scope>:<sha256>"
        sa.Column("window_start", sa.String(32), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("portal_throttle")
    op.drop_index("ix_portal_api_token_account", table_name="portal_api_token")
    op.drop_table("portal_api_token")
    op.drop_index("ix_portal_session_account", table_name="portal_session")
    op.drop_table("portal_session")
