"""Portal sign-in tables (revision 0004): sessions, API tokens, sign-in throttles.

Kept apart from ``tables.py`` (the ticket/audit ledger); created only by the migration.
Times are ISO-8601 UTC text with microseconds, so string order is time order.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, false

metadata = MetaData()

portal_session = Table(
    "portal_session",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("account", String(128), nullable=False),
    Column("directory", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("dn", String(512), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("roles", String(128), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("last_seen_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("client_ip", String(64)),
    Column("user_agent", String(256)),
    # revision 0016: signed in with a temporary password; the session may only change it
    Column("must_change", Boolean, nullable=False, server_default=false()),
    # revision 0018: when its roles were last read from the directory (runner.auth.recheck)
    Column("roles_read_at", String(32)),
)

portal_api_token = Table(
    "portal_api_token",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("label", String(64), nullable=False),
    Column("account", String(128), nullable=False),
    Column("directory", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("dn", String(512), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("roles", String(128), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32)),
    Column("last_used_at", String(32)),
    Column("revoked_at", String(32)),
    Column("roles_read_at", String(32)),  # revision 0018, as for sessions
)

portal_throttle = Table(
    "portal_throttle",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("window_start", String(32), nullable=False),
    Column("failures", Integer, nullable=False),
)
