"""The auditor's "part of" search and time-bounded agent searches at millions of rows.

* ``audit_target`` / ``ticket_subject``: every distinct ``audit_event.target`` /
  ``ticket.subject`` (one row each, the value as stored). A "part of" search matches this
  short list (thousands of people, not millions of events) and then pages the events or
  tickets by the exact values it found, through ``ix_audit_event_target_seq`` /
  ``ix_ticket_subject_id`` (see ``runner.queries``). The lists are kept by database triggers
  (after an insert, and after an update of the column), so no writer has to know them; a
  value that no row holds any more stays listed, which is harmless (it matches no row).
  Existing values are filled in here.
* ``ix_audit_event_actor_ts`` (actor, ts, seq): an actor's events of a time range (lowest
  and highest key, and the count) read from the index alone.

Revision ID: 0014
Revises: 0013
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"

# dictionary table, source table, source column, width, index on (column, key)
DICTIONARIES = (
    ("audit_target", "audit_event", "target", 256, "ix_audit_event_target_seq", "seq"),
    ("ticket_subject", "ticket", "subject", 128, "ix_ticket_subject_id", "id"),
)
INDEXES = (("ix_audit_event_actor_ts", "audit_event", ["actor", "ts", "seq"]),)


def upgrade() -> None:
    conn = op.get_bind()
    for name, table, column, width, index, key in DICTIONARIES:
        op.create_table(name, sa.Column("value", sa.String(width), primary_key=True))
        op.create_index(index, table, [column, key])
        # through the new index: the distinct values come in order, without a sort of the table
        fill = f"INSERT INTO {name} (value) SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL"  # noqa: S608
        op.execute(fill)
        _triggers(conn, name, table, column)
    for index, table, columns in INDEXES:
        op.create_index(index, table, columns)


def _triggers(conn: Any, name: str, table: str, column: str) -> None:
    """After each insert (and each update of *column*) of *table*: the value into *name*."""
    if conn.dialect.name == "sqlite":
        for when, event in (("insert", "INSERT"), ("update", f"UPDATE OF {column}")):
            op.execute(
                f"CREATE TRIGGER tr_{name}_{when} AFTER {event} ON {table} "  # noqa: S608 - our own names
                f"FOR EACH ROW WHEN NEW.{column} IS NOT NULL "
                f"BEGIN INSERT OR IGNORE INTO {name} (value) VALUES (NEW.{column}); END"
            )
        return
    op.execute(
        f"CREATE FUNCTION fn_{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "  # noqa: S608 - our own names
        f"INSERT INTO {name} (value) VALUES (NEW.{column}) ON CONFLICT DO NOTHING; RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER tr_{name} AFTER INSERT OR UPDATE OF {column} ON {table} "
        f"FOR EACH ROW WHEN (NEW.{column} IS NOT NULL) EXECUTE FUNCTION fn_{name}()"
    )


def downgrade() -> None:
    conn = op.get_bind()
    for index, table, _columns in reversed(INDEXES):
        op.drop_index(index, table_name=table)
    for name, table, _column, _width, index, _key in reversed(DICTIONARIES):
        if conn.dialect.name == "sqlite":
            op.execute(f"DROP TRIGGER tr_{name}_insert")
            op.execute(f"DROP TRIGGER tr_{name}_update")
        else:
            op.execute(f"DROP TRIGGER tr_{name} ON {table}")
            op.execute(f"DROP FUNCTION fn_{name}()")
        op.drop_index(index, table_name=table)
        op.drop_table(name)
