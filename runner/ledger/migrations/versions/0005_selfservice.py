"""Self-service password reset and unlock: one-time codes and request throttles.

Only HMAC-SHA-256 digests are stored (codes, accounts, client addresses, the password
change snapshot); the key is derived from the audit key, which is never in the database.
See runner/selfservice.py and docs/portal.md "Forgotten password and locked account".

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "selfservice_code",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_key", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("code_hmac", sa.String(64), nullable=False),
        sa.Column("snapshot_hmac", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("closed_at", sa.String(32), nullable=True),
    )
    op.create_index("ix_selfservice_code_account", "selfservice_code", ["account_key", "purpose", "state"])
    op.create_table(
        "selfservice_request",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
    )
    op.create_index("ix_selfservice_request_key_at", "selfservice_request", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_selfservice_request_key_at", table_name="selfservice_request")
    op.drop_table("selfservice_request")
    op.drop_index("ix_selfservice_code_account", table_name="selfservice_code")
    op.drop_table("selfservice_code")
