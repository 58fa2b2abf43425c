"""Audit at scale (issue 9): the stored canonical record of each audit event, and the
indexes the auditor's search needs at millions of rows.

* ``audit_event.canonical``: the UTF-8 JSON text the event's hash covers (see
  ``runner.ledger.audit``), so ``firstline audit verify`` hashes what was stored instead of
  rebuilding it from the columns. Existing rows get it here, rebuilt from their columns
  ``BACKFILL_BATCH`` rows at a time (keyset on ``seq``; memory stays constant on SQLite and
  PostgreSQL). Their hashes are unchanged: the text is exactly what the hash was computed
  over when the columns are what was written — and when a column was edited before this
  revision, the rebuilt text carries the edit and the old hash still exposes it. A row
  without the text (written by a process older than this revision) is still verified the
  old way, from its columns.
* Indexes: ``INDEXES`` below; each serves a filter of ``runner.queries`` as
  ``WHERE <column> = ? ORDER BY <key> DESC LIMIT n`` (a backwards walk of the index).

The canonical form is frozen here (``FIELDS``, ``_canonical``): a later change of the
application's form must not change what this revision wrote.

Revision ID: 0011
Revises: 0010
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

BACKFILL_BATCH = 2000
FIELDS = (
    "seq",
    "ts",
    "actor",
    "actor_roles",
    "on_behalf_of",
    "action",
    "target",
    "ticket",
    "runbook",
    "runbook_sha256",
    "outcome",
    "reason",
    "client_ip",
    "user_agent",
    "correlation_id",
    "detail",
)
INDEXES = (
    ("ix_audit_event_outcome_seq", "audit_event", ["outcome", "seq"]),
    ("ix_audit_event_runbook_seq", "audit_event", ["runbook", "seq"]),
    ("ix_ticket_requester_id", "ticket", ["requester", "id"]),
    ("ix_ticket_channel_id", "ticket", ["channel", "id"]),
    ("ix_ticket_state_id", "ticket", ["state", "id"]),
)
# the time indexes of 0008 get the key as a second column (same names): a time range's lowest
# and highest key then come from the index alone (PostgreSQL: an index-only scan)
WIDENED = (
    ("ix_audit_event_ts", "audit_event", ["ts"], ["ts", "seq"]),
    ("ix_ticket_opened_at", "ticket", ["opened_at"], ["opened_at", "id"]),
)

TRIGRAM = (  # PostgreSQL only (pg_trgm)
    ("ix_audit_event_target_trgm", "audit_event", "target"),
    ("ix_ticket_subject_trgm", "ticket", "subject"),
)
# (requester, id) and (state, id) serve every lookup these served
REPLACED = (
    ("ix_ticket_requester", "ticket", ["requester"]),
    ("ix_ticket_state", "ticket", ["state"]),
)


def _canonical(row: Any) -> str:
    return json.dumps({k: row[k] for k in FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def upgrade() -> None:
    op.add_column("audit_event", sa.Column("canonical", sa.Text))
    events = sa.table("audit_event", *(sa.column(k) for k in (*FIELDS, "canonical")))
    conn = op.get_bind()
    fill = sa.update(events).where(events.c.seq == sa.bindparam("b_seq")).values(canonical=sa.bindparam("b_text"))
    after = 0
    while True:
        rows = (
            conn.execute(
                sa.select(*(events.c[k] for k in FIELDS))
                .where(events.c.seq > after, events.c.canonical.is_(None))
                .order_by(events.c.seq)
                .limit(BACKFILL_BATCH)
            )
            .mappings()
            .all()
        )
        if not rows:
            break
        conn.execute(fill, [{"b_seq": r["seq"], "b_text": _canonical(r)} for r in rows])
        after = rows[-1]["seq"]
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    for name, table, _columns in REPLACED:
        op.drop_index(name, table_name=table)
    for name, table, _old, wide in WIDENED:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, wide)
    if conn.dialect.name == "postgresql":
        _trigram_indexes(conn)


def _trigram_indexes(conn: Any) -> None:
    """PostgreSQL: "part of" searches (``lower(target) LIKE '%x%'``, ``lower(subject)``)
    through pg_trgm GIN indexes. pg_trgm ships with PostgreSQL (contrib) and is a trusted
    extension (a database owner may create it); where it cannot be created the searches
    still work, by scanning, and the upgrade goes on."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError:
        return
    for name, table, column in TRIGRAM:
        conn.exec_driver_sql(f"CREATE INDEX {name} ON {table} USING gin (lower({column}) gin_trgm_ops)")


def downgrade() -> None:
    for name, _table, _column in TRIGRAM:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for name, table, narrow, _wide in WIDENED:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, narrow)
    for name, table, columns in REPLACED:
        op.create_index(name, table, columns)
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("canonical")
