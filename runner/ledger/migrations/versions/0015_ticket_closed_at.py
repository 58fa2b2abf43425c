"""``ticket.closed_at``: when a ticket reached its final state, whatever that state is;
``ticket.resolved_at`` is kept for ``resolved`` tickets only.

ITIL's resolved time is the time of resolution. Before this revision every final state
(``escalated`` and ``closed`` too, with reasons such as ``never_started`` or ``run_lost``)
set ``resolved_at``, so exports, the CLI and the pages told an auditor that escalated
tickets had been resolved. Existing rows: ``closed_at`` takes the old ``resolved_at`` of
every ticket that has one, and ``resolved_at`` is cleared on final tickets that are not
``resolved``. The downgrade puts ``closed_at`` back into ``resolved_at`` (the old meaning).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (no table copy on SQLite, which would drop the
    # triggers of revision 0014).
    op.add_column("ticket", sa.Column("closed_at", sa.String(32)))
    ticket = sa.table(
        "ticket", sa.column("state", sa.String), sa.column("resolved_at", sa.String), sa.column("closed_at", sa.String)
    )
    op.execute(ticket.update().where(ticket.c.resolved_at.is_not(None)).values(closed_at=ticket.c.resolved_at))
    op.execute(ticket.update().where(ticket.c.state != "resolved").values(resolved_at=None))


def downgrade() -> None:
    ticket = sa.table("ticket", sa.column("resolved_at", sa.String), sa.column("closed_at", sa.String))
    op.execute(
        ticket.update()
        .where(ticket.c.resolved_at.is_(None), ticket.c.closed_at.is_not(None))
        .values(resolved_at=ticket.c.closed_at)
    )
    op.drop_column("ticket", "closed_at")  # SQLite >= 3.35 drops it in place (triggers kept)
