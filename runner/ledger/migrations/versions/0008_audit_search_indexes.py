"""Indexes for the auditor's searches and the KPIs (runner/queries.py, runner/kpi.py).

Pages are keyset pages in primary-key order, newest first, under an equality filter
(``WHERE actor = ? ORDER BY seq DESC LIMIT n``); an index on (column, key) lets the
database walk just the matching rows backwards, on SQLite and PostgreSQL alike. Time
ranges use the ``ts`` / ``opened_at`` indexes (stored times are fixed-width UTC text, so
the index order is time order). The KPIs read tickets by ``opened_at``.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"

INDEXES = (
    ("ix_audit_event_ts", "audit_event", ["ts"]),
    ("ix_audit_event_actor_seq", "audit_event", ["actor", "seq"]),
    ("ix_audit_event_on_behalf_of_seq", "audit_event", ["on_behalf_of", "seq"]),
    ("ix_audit_event_action_seq", "audit_event", ["action", "seq"]),
    ("ix_audit_event_ticket", "audit_event", ["ticket"]),
    ("ix_ticket_opened_at", "ticket", ["opened_at"]),
    ("ix_ticket_opened_by_id", "ticket", ["opened_by", "id"]),
    ("ix_ticket_runbook_id", "ticket", ["runbook", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
