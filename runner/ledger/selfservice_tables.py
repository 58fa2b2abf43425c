"""Self-service tables (revision 0005): one-time codes and request throttles.

Created only by the migration. Times are ISO-8601 UTC text with microseconds (string
order is time order). No code, password or login is stored in clear: ``account_key``,
``code_hmac``, ``snapshot_hmac`` and throttle keys are HMAC-SHA-256 digests under a key
derived from the audit key (never in the database); see ``runner.selfservice``.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()

selfservice_code = Table(
    "selfservice_code",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_key", String(64), nullable=False),  # HMAC of "<directory>:<name>"
    Column("purpose", String(16), nullable=False),  # reset | unlock
    Column("code_hmac", String(64), nullable=False),
    Column("snapshot_hmac", String(64), nullable=False),  # HMAC of pwdChangedTime / pwdLastSet at issue
    Column("state", String(16), nullable=False),  # live | used | burned | expired | superseded | invalidated
    Column("tries", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("closed_at", String(32)),
)

selfservice_request = Table(
    "selfservice_request",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(80), nullable=False),  # "<scope>:<hmac>" or "global"
    Column("at", String(32), nullable=False),
)
