"""Table definitions. Names are singular snake_case; timestamps are ISO-8601 UTC text
so that the audit hash covers exactly what is stored, on every database."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# The largest value an Integer column holds on every supported database (PostgreSQL INTEGER);
# an id or position from a request beyond it matches no row and must not reach the driver,
# which overflows on it (SQLite: OverflowError, PostgreSQL: "integer out of range").
MAX_ROW_ID = 2**31 - 1

ticket = Table(
    "ticket",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("requester", String(128), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("category", String(100), nullable=False),
    Column("type", String(16), nullable=False),
    Column("runbook", String(64), nullable=False),
    Column("runbook_sha256", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("state", String(32), nullable=False),  # revision 0006: 32 (was 16)
    Column("impact", Integer, nullable=False),
    Column("urgency", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("assignment_group", String(64)),
    Column("resolution_code", String(64)),
    Column("resolution_note", Text),
    Column("reason", String(64)),
    Column("message", Text),
    Column("correlation_id", String(36), nullable=False),
    Column("opened_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("resolved_at", String(32)),
    Column("deadline_at", String(32), nullable=False),
    Column("directory", String(64)),  # revision 0002: inventory directories key, NULL if none
    Column("opened_by", String(128)),  # revision 0003: who opened it (acting person), NULL before
    Column("started_at", String(32)),  # revision 0006: when a worker claimed the run (NULL while queued)
    Column("run_timeout_s", Integer),  # revision 0006: seconds a claimed run may take
    Column("run_context", Text),  # revision 0006: JSON {roles, client_ip, user_agent, secret_params}
    Column("work_note", Text),  # revision 0007: the agent's reason for a one-click fix (NULL otherwise)
    Column("resolution_note_i18n", Text),  # revision 0013: JSON {"nl": note} beside the English note
    Column("closed_at", String(32)),  # revision 0015: when it reached any final state (resolved_at: resolved only)
    Index("ix_ticket_directory", "directory"),
    Index("ix_ticket_opened_at", "opened_at", "id"),  # revision 0008 (0011: + id): auditor searches and KPIs
    Index("ix_ticket_opened_by_id", "opened_by", "id"),
    Index("ix_ticket_runbook_id", "runbook", "id"),
    Index("ix_ticket_state_deadline", "state", "deadline_at"),
    # revision 0011: (requester, id) and (state, id) replace ix_ticket_requester and
    # ix_ticket_state (they serve the same lookups and the auditor's pages newest first)
    Index("ix_ticket_requester_id", "requester", "id"),
    Index("ix_ticket_channel_id", "channel", "id"),
    Index("ix_ticket_state_id", "state", "id"),
    Index("ix_ticket_subject_id", "subject", "id"),  # revision 0014: "part of" searches (ticket_subject)
)

step_result = Table(
    "step_result",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("ticket.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("connector", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128)),
    Column("status", String(16), nullable=False),
    Column("inputs", Text, nullable=False),
    Column("outputs", Text, nullable=False),
    Column("reason", String(64)),
    Column("message", Text),
    Column("attempts", Integer, nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
    Column("event_seq", Integer),  # revision 0006: progress position (2*seq-1 running, 2*seq finished)
    Index("ix_step_result_ticket", "ticket_id", "seq"),
)

audit_event = Table(
    "audit_event",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("actor_roles", String(128), nullable=False),
    Column("on_behalf_of", String(128)),
    Column("action", String(64), nullable=False),
    Column("target", String(256)),
    Column("ticket", String(16)),
    Column("runbook", String(64)),
    Column("runbook_sha256", String(64)),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text),
    Column("client_ip", String(64)),
    Column("user_agent", String(256)),
    Column("correlation_id", String(36)),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # revision 0011: the canonical record as written (UTF-8 JSON text; the hash covers its
    # bytes); NULL for events written before it (verify rebuilds those from the columns)
    Column("canonical", Text),
    Index("ix_audit_event_ts", "ts", "seq"),  # revision 0008 (0011: + seq): keyset searches (runner/queries.py)
    Index("ix_audit_event_actor_seq", "actor", "seq"),
    Index("ix_audit_event_on_behalf_of_seq", "on_behalf_of", "seq"),
    Index("ix_audit_event_action_seq", "action", "seq"),
    Index("ix_audit_event_ticket", "ticket"),
    Index("ix_audit_event_outcome_seq", "outcome", "seq"),  # revision 0011: auditor's search at scale
    Index("ix_audit_event_runbook_seq", "runbook", "seq"),
    # revision 0014: "part of" searches (audit_target); an actor's events of a time range
    Index("ix_audit_event_target_seq", "target", "seq"),
    Index("ix_audit_event_actor_ts", "actor", "ts", "seq"),
)

# revision 0014: every distinct audit_event.target / ticket.subject, kept by database triggers
# (after insert and after update of the column; values no row holds any more may stay). A
# "part of" search matches these few thousand values, then pages by the exact ones it found.
audit_target = Table("audit_target", metadata, Column("value", String(256), primary_key=True))
ticket_subject = Table("ticket_subject", metadata, Column("value", String(128), primary_key=True))

# One row: the chain head, HMAC-signed, updated in the same transaction as each append.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
)

audit_checkpoint = Table(
    "audit_checkpoint",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", String(32), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
)

# One row per state-changing portal form submitted with a one-time form token (runner.formonce):
# a second submit of the same token (same session) answers with the first ticket.
form_submission = Table(
    "form_submission",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of session key + token
    Column("ticket_number", String(32)),  # None while the first submit is being handled
    Column("created_at", String(32), nullable=False),
    Index("ix_form_submission_created_at", "created_at"),
)
