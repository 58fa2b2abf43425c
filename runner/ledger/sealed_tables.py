"""Sealed values crossing processes (revision 0010; ``runner.sealed``).

Kept apart from ``tables.py`` (the ticket/audit ledger); created only by the migration.
Every ``token`` is a Fernet token under ``FIRSTLINE_RUN_KEY``, a key that is never in the
database: these rows alone never yield a secret. Times are ISO-8601 UTC text.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

# Secret run values in flight: kind ``params`` (the requester's secret parameters, written in the
# submit transaction, read and deleted in the claim transaction) or ``outputs`` (a run's once-only
# outputs such as a temporary password, written with the final state, deleted on first read).
run_secret = Table(
    "run_secret",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("token", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("ticket_id", "kind", name="uq_run_secret_ticket_kind"),
    Index("ix_run_secret_created_at", "created_at"),
)

# The portal's post/redirect/get hand-over of a once-only secret (portal/oneshot.py): keyed by
# SHA-256 of (random token, owner, ticket), so only the same session asking for the same ticket
# with the token from its redirect finds it; deleted on first read.
once_secret = Table(
    "once_secret",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("token", Text, nullable=False),
    Column("expires_at", String(32), nullable=False),
    Index("ix_once_secret_expires_at", "expires_at"),
)

# One row (id 1): a Fernet token of a fixed text under the run key every process of this
# ledger must share (revision 0017; ``runner.sealed.check_key``). No secret is in it.
run_key_probe = Table(
    "run_key_probe",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("token", Text, nullable=False),
    Column("sealed_at", String(32), nullable=False),
)
