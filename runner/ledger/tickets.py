"""Ticket rows: open, record steps, close. Every state change appends an audit event
in the same transaction (the caller passes the audit log and the actor)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, literal_column, select, update

from runner.errors import NotFoundError
from runner.ledger import prepared
from runner.ledger.audit import Actor, AuditLog, now
from runner.ledger.store import reading
from runner.ledger.tables import step_result, ticket

# ``closed``: the requester must act (resolution code ``requester_action_needed``); neither
# resolved nor in the second-level queue.
FINAL_STATES = ("resolved", "escalated", "closed")
# The run seam (docs/architecture.md "Ticket states"): queued -> running -> final.
# ``awaiting_approval`` (before ``queued``) is reserved for approvals; ``in_progress`` is the
# pre-0006 name of ``running`` (migrated; still swept if an older process writes it).
OPEN_STATES = ("awaiting_approval", "queued", "running")
RUNNING_STATES = ("running", "in_progress")
STATES = ("in_progress", *FINAL_STATES)
NO_TICKET = "ticket %(number)s does not exist"
REQUESTER_ACTION_NEEDED = "requester_action_needed"
# ServiceNow's default impact x urgency lookup (1 = highest).
PRIORITY = {(1, 1): 1, (1, 2): 2, (1, 3): 3, (2, 1): 2, (2, 2): 3, (2, 3): 4, (3, 1): 3, (3, 2): 4, (3, 3): 4}


# Built once: SQLAlchemy caches their compiled form, which keeps a run's ledger cost low.
# (runner.ledger.prepared: sent as SQL text; the open states are written into _CLOSE's text,
# an IN list of bound values would be expanded per execution)
_INSERT_TICKET = ticket.insert().returning(ticket.c.id)
_INSERT_STEP = step_result.insert()
_CLOSE = update(ticket).where(
    ticket.c.id == bindparam("b_id"),
    ticket.c.state.in_([literal_column(f"'{s}'") for s in ("queued", *RUNNING_STATES)]),  # our constants
)


def number_of(ticket_id: int) -> str:
    """Ticket numbers are derived from the id (FL-000123), never stored twice."""
    return f"FL-{ticket_id:06d}"


def _with_number(row: Any) -> dict[str, Any]:
    return {"number": number_of(row["id"]), **row}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class NewTicket:
    requester: str
    subject: str
    channel: str
    category: str
    type: str
    runbook: str
    runbook_sha256: str
    params: Mapping[str, Any]
    correlation_id: str
    timeout_s: float
    impact: int = 3
    urgency: int = 2
    directory: str | None = None  # inventory ``directories`` key the run acts on (runner.routing)
    opened_by: str | None = None  # the acting person (operator at the terminal, signed-in agent)
    state: str = "queued"  # the run seam: a worker claims it (runner.runs); ``running`` for direct use
    run_timeout_s: int | None = None  # seconds a claimed run may take (deadline reset at claim)
    run_context: Mapping[str, Any] | None = None  # actor roles, client, secret parameter names: never values
    work_note: str | None = None  # the agent's reason for a one-click fix (runner.agent.work_note); revision 0007


def open_ticket(conn: Connection, audit: AuditLog, actor: Actor, new: NewTicket) -> tuple[int, str]:
    ts = now()
    deadline = (datetime.now(UTC) + timedelta(seconds=new.timeout_s)).isoformat(timespec="microseconds")
    ticket_id: int = prepared.execute(
        conn,
        _INSERT_TICKET,
        {
            "requester": new.requester,
            "subject": new.subject,
            "channel": new.channel,
            "category": new.category,
            "type": new.type,
            "runbook": new.runbook,
            "runbook_sha256": new.runbook_sha256,
            "params": dumps(new.params),
            "state": new.state,
            "impact": new.impact,
            "urgency": new.urgency,
            "priority": PRIORITY[(new.impact, new.urgency)],
            "correlation_id": new.correlation_id,
            "opened_at": ts,
            "updated_at": ts,
            "deadline_at": deadline,
            "directory": new.directory,
            "opened_by": new.opened_by,
            "run_timeout_s": new.run_timeout_s,
            "run_context": dumps(new.run_context) if new.run_context is not None else None,
            "work_note": new.work_note,
            "started_at": ts if new.state == "running" else None,
        },
    ).scalar_one()
    number = number_of(ticket_id)
    audit.append(
        conn,
        actor,
        "ticket.opened",
        outcome="success",
        target=new.subject,
        ticket=number,
        runbook=new.runbook,
        runbook_sha256=new.runbook_sha256,
        correlation_id=new.correlation_id,
        detail={
            "state": new.state,
            "channel": new.channel,
            "params": dict(new.params),
            **({"directory": new.directory} if new.directory is not None else {}),
            **({"work_note": new.work_note} if new.work_note is not None else {}),
        },
    )
    return ticket_id, number


def record_step(conn: Connection, ticket_id: int, seq: int, rec: Mapping[str, Any]) -> None:
    prepared.execute(conn, _INSERT_STEP, {"ticket_id": ticket_id, "seq": seq, **rec})


def close_ticket(
    conn: Connection,
    audit: AuditLog,
    actor: Actor,
    ticket_id: int,
    *,
    state: str,
    resolution_code: str | None,
    note: str | None,
    reason: str | None,
    message: str,
    assignment_group: str | None,
    meta: Mapping[str, Any],
    from_states: tuple[str, ...] | None = None,
    deadline_before: str | None = None,
    note_i18n: Mapping[str, str] | None = None,
) -> bool:
    """Move a queued or running ticket to its final state; False if it was already final.

    *from_states*: close only from these states (the sweep passes the state it saw, so a
    run claimed meanwhile is not called ``never_started``); *deadline_before*: only if
    ``deadline_at`` is still before this time (a claim renews the deadline); *note_i18n*:
    the note in other languages (``{"nl": ...}``, from a runbook's localized note)."""
    ts = now()
    stmt = _CLOSE
    if from_states is not None:
        stmt = update(ticket).where(ticket.c.id == bindparam("b_id"), ticket.c.state.in_(from_states))
    if deadline_before is not None:
        stmt = stmt.where(ticket.c.deadline_at < deadline_before)
    values = {
        "b_id": ticket_id,
        "state": state,
        "resolution_code": resolution_code,
        "resolution_note": note,
        "resolution_note_i18n": dumps(dict(note_i18n)) if note_i18n else None,
        "reason": reason,
        "message": message,
        "assignment_group": assignment_group,
        "updated_at": ts,
        # ITIL: resolved_at is the time of resolution, so only a resolved ticket has one;
        # closed_at is when the ticket ended, whatever its final state (revision 0015).
        "resolved_at": ts if state == "resolved" else None,
        "closed_at": ts,
    }
    if stmt is _CLOSE:
        done = prepared.execute(conn, stmt, values).rowcount
    else:
        done = conn.execute(stmt, values).rowcount
    if not done:
        return False
    audit.append(
        conn,
        actor,
        f"ticket.{state}",
        outcome="success" if state == "resolved" else "failure",  # closed = the requester must act: not a success
        target=meta.get("subject"),
        ticket=number_of(ticket_id),
        runbook=meta.get("runbook"),
        runbook_sha256=meta.get("runbook_sha256"),
        reason=reason,
        correlation_id=meta.get("correlation_id"),
        detail={"state": state, "resolution_code": resolution_code, "assignment_group": assignment_group},
    )
    return True


def actor_of(row: Mapping[Any, Any]) -> Actor:
    """Who acts in a ticket's run, from its row: the opener (else the requester) with the roles,
    client address and user agent kept in ``run_context``, on behalf of the requester."""
    context = json.loads(row["run_context"] or "{}")
    return Actor(
        row["opened_by"] or row["requester"],
        tuple(context.get("roles") or ()),
        on_behalf_of=row["requester"],
        client_ip=context.get("client_ip"),
        user_agent=context.get("user_agent"),
    )


def stale_tickets(engine: Engine) -> list[tuple[int, str]]:
    """``(id, state)`` of queued or running tickets whose ``deadline_at`` has passed, oldest first."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(ticket.c.id, ticket.c.state)
            .where(ticket.c.state.in_(("queued", *RUNNING_STATES)), ticket.c.deadline_at < now())
            .order_by(ticket.c.id)
        )
        return [(r.id, r.state) for r in rows]


def queued_before(engine: Engine, before: str, limit: int = 500) -> list[int]:
    """Ids of tickets still ``queued`` whose last change (``updated_at``: submit or re-queue)
    is before *before* (ISO 8601 UTC), oldest first, at most *limit*."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(ticket.c.id)
            .where(ticket.c.state == "queued", ticket.c.updated_at < before)
            .order_by(ticket.c.id)
            .limit(limit)
        )
        return [int(r.id) for r in rows]


def stale_ticket_ids(engine: Engine) -> list[int]:
    return [tid for tid, _state in stale_tickets(engine)]


def list_tickets(
    engine: Engine,
    *,
    state: str | None = None,
    requester: str | Sequence[str] | None = None,
    limit: int = 100,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Newest first. *since* (inclusive) and *until* (exclusive) bound ``opened_at``; both
    must be timezone-aware (``runner.timeparse.parse_instant``) and are compared as instants."""
    from runner.timeparse import stored

    q = select(ticket).order_by(ticket.c.id.desc()).limit(limit)
    if state:
        q = q.where(ticket.c.state == state)
    if requester:  # one stored form, or several (``runner.routing.Directories.search_forms``)
        forms = [requester] if isinstance(requester, str) else list(requester)
        q = q.where(ticket.c.requester.in_(forms))
    if since is not None:
        q = q.where(ticket.c.opened_at >= stored(since))
    if until is not None:
        q = q.where(ticket.c.opened_at < stored(until))
    with reading(engine) as conn:
        return [_with_number(r) for r in conn.execute(q).mappings()]


def get_ticket(engine: Engine, number: str) -> dict[str, Any]:
    with reading(engine) as conn:
        row = conn.execute(select(ticket).where(ticket.c.id == int(number.removeprefix("FL-")))).mappings().first()
        if row is None:
            raise NotFoundError(NO_TICKET, number=number)
        out = _with_number(row)
        out["params"] = json.loads(out["params"])
        out["steps"] = []
        for s in conn.execute(
            select(step_result).where(step_result.c.ticket_id == row["id"]).order_by(step_result.c.seq)
        ).mappings():
            d = dict(s)
            d["inputs"], d["outputs"] = json.loads(d["inputs"]), json.loads(d["outputs"])
            out["steps"].append(d)
        return out


def count_by_state(engine: Engine) -> dict[str, int]:
    with reading(engine) as conn:
        return {r[0]: r[1] for r in conn.execute(select(ticket.c.state, func.count()).group_by(ticket.c.state))}
