"""The run seam (docs/architecture.md "The run seam"): tickets are ``queued`` then ``running``.

* ``ticket.state``: up to 32 characters (``awaiting_approval`` is reserved for approvals);
  the old ``in_progress`` becomes ``running`` (a run that was in
  progress when the database was upgraded: the sweep ends it as ``run_lost`` once its
  deadline passes, exactly as before).
* ``ticket.started_at``: when a worker claimed the run (NULL while queued and for
  tickets opened before this revision).
* ``ticket.run_timeout_s``: seconds a claimed run may take; the claim sets
  ``deadline_at`` to claim time + this (NULL before this revision).
* ``ticket.run_context``: JSON with what the executing process needs besides the ticket
  columns: the actor's roles, client address and user agent, and the names of secret
  parameters that were given (their values are never stored). NULL before this revision.
* ``step_result.event_seq``: the progress position of a step row. A step row is written
  when its step starts (``2 * seq - 1``, status ``running``) and updated when it
  finishes (``2 * seq``), so a follower asks for rows with ``event_seq`` above what it
  has seen. Existing (finished) rows get ``2 * seq``.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        # ``awaiting_approval`` (17 characters) must fit
        batch.alter_column("state", existing_type=sa.String(16), type_=sa.String(32), existing_nullable=False)
        batch.add_column(sa.Column("started_at", sa.String(32), nullable=True))
        batch.add_column(sa.Column("run_timeout_s", sa.Integer, nullable=True))
        batch.add_column(sa.Column("run_context", sa.Text, nullable=True))
    with op.batch_alter_table("step_result") as batch:
        batch.add_column(sa.Column("event_seq", sa.Integer, nullable=True))
    op.execute("UPDATE ticket SET state = 'running' WHERE state = 'in_progress'")
    op.execute("UPDATE step_result SET event_seq = 2 * seq WHERE event_seq IS NULL")
    op.create_index("ix_ticket_state_deadline", "ticket", ["state", "deadline_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_state_deadline", table_name="ticket")
    op.execute("UPDATE ticket SET state = 'in_progress' WHERE state IN ('queued', 'running')")
    with op.batch_alter_table("step_result") as batch:
        batch.drop_column("event_seq")
    with op.batch_alter_table("ticket") as batch:
        batch.alter_column("state", existing_type=sa.String(32), type_=sa.String(16), existing_nullable=False)
        batch.drop_column("run_context")
        batch.drop_column("run_timeout_s")
        batch.drop_column("started_at")
