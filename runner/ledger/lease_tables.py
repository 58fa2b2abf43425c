"""Run leases and target locks (revision 0012; ``runner.leases``, ``runner.target_locks``).

Kept apart from ``tables.py`` (the ticket/audit ledger); created only by the migration.
Times are ISO-8601 UTC text with microseconds (``runner.ledger.audit.now``), so string
order is time order on every database.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table

metadata = MetaData()

OWNER_LENGTH = 96
KEY_LENGTH = 255

# One row per ticket that has been claimed: the claim that holds it now (``owner``, a token
# made per claim) and until when (``lease_until``), renewed by the worker's heartbeat; NULL
# owner after the sweep took it back. ``attempts`` counts the claims of the ticket.
run_lease = Table(
    "run_lease",
    metadata,
    Column("ticket_id", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(OWNER_LENGTH)),
    Column("lease_until", String(32)),
    Column("attempts", Integer, nullable=False),
    Column("renewed_at", String(32)),
    Index("ix_run_lease_lease_until", "lease_until"),
)

# One row per target a run is acting on (an account, a print queue, a service, a path, a
# host), keyed by its normalised key: the primary key makes taking a lock one atomic insert.
target_lock = Table(
    "target_lock",
    metadata,
    Column("target_key", String(KEY_LENGTH), primary_key=True),
    Column("ticket_id", Integer, nullable=False),
    Column("owner", String(OWNER_LENGTH), nullable=False),
    Column("lease_until", String(32), nullable=False),
    Column("acquired_at", String(32), nullable=False),
    Index("ix_target_lock_owner", "owner"),
    Index("ix_target_lock_ticket_id", "ticket_id"),
)
