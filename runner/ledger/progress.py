"""Run progress in the ledger: the atomic claim, step rows while they run, and following a run.

A step row is written when its step starts (``status='running'``, ``event_seq = 2*seq-1``)
and updated when it finishes (``event_seq = 2*seq``), each in its own committed
transaction, so any process can follow a run by asking for rows whose ``event_seq`` is
above the last one it saw (``events_after``). Steps of one run are sequential, so
``event_seq`` only grows. Revision 0006 adds the column (older rows: ``2*seq``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, select, update

from runner.ledger import prepared
from runner.ledger.audit import now
from runner.ledger.store import reading
from runner.ledger.tables import step_result, ticket
from runner.ledger.tickets import FINAL_STATES, number_of

_CLAIM = update(ticket).where(ticket.c.id == bindparam("b_id"), ticket.c.state == "queued")
_INSERT_STEP = step_result.insert()
_FINISH_STEP = update(step_result).where(
    and_(step_result.c.ticket_id == bindparam("b_ticket"), step_result.c.seq == bindparam("b_seq"))
)


def claim(conn: Connection, ticket_id: int, run_timeout_s: float) -> bool:
    """``queued → running`` for *ticket_id*, atomically: True for exactly one caller.

    ``UPDATE ticket SET state='running' ... WHERE id=? AND state='queued'``: a second
    claim (a redelivered message, a second worker) matches no row and returns False. The
    deadline becomes claim time + *run_timeout_s* (the sweep's ``run_lost`` lease).
    """
    ts = now()
    deadline = (datetime.now(UTC) + timedelta(seconds=run_timeout_s)).isoformat(timespec="microseconds")
    done = prepared.execute(
        conn,
        _CLAIM,
        {"b_id": ticket_id, "state": "running", "started_at": ts, "updated_at": ts, "deadline_at": deadline},
    ).rowcount
    return bool(done)


def step_started(conn: Connection, ticket_id: int, seq: int, row: Mapping[str, Any]) -> None:
    """Insert step *seq*'s row as ``running`` (``row``: step_id, connector, action, target, started_at)."""
    prepared.execute(
        conn,
        _INSERT_STEP,
        {
            "ticket_id": ticket_id,
            "seq": seq,
            "status": "running",
            "inputs": "{}",
            "outputs": "{}",
            "reason": None,
            "message": None,
            "attempts": 0,
            "finished_at": None,
            **row,
            "event_seq": 2 * seq - 1,
        },
    )


def step_finished(conn: Connection, ticket_id: int, seq: int, row: Mapping[str, Any], *, started: bool = True) -> None:
    """Update step *seq*'s row with its outcome (``StepRecord.row()``); insert it if the step
    never reported a start (a step that could not be prepared) — at once when *started* is
    False (a skipped step, whose row was never written)."""
    values = {**row, "event_seq": 2 * seq}
    if (
        not started
        or not prepared.execute(conn, _FINISH_STEP, {"b_ticket": ticket_id, "b_seq": seq, **values}).rowcount
    ):
        prepared.execute(conn, _INSERT_STEP, {"ticket_id": ticket_id, "seq": seq, **values})


@dataclass
class Progress:
    """What changed in a run after a position: the ticket's state now and the step rows
    (dicts with ``seq``, ``event_seq``, ``step_id``, ``status`` — ``running`` while it
    works —, ``message``, ``reason``, ``target``, ``started_at``, ``finished_at``, and the
    redacted ``inputs`` / ``outputs``) whose ``event_seq`` is above it, in order.

    ``last_seq``: pass it as *after_seq* next time. ``done``: the ticket is final and every
    step row has been returned (the state is read before the rows, and a run writes its
    last step before its final state, so nothing can follow).
    """

    number: str
    state: str
    reason: str | None
    message: str | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES


def state_of(engine: Engine, ticket_id: int) -> str | None:
    """The ticket's state — one primary-key read, no step rows (what a waiter polls until the
    run is final); None if there is no such ticket."""
    with reading(engine) as conn:
        state: str | None = conn.execute(select(ticket.c.state).where(ticket.c.id == ticket_id)).scalar()
    return state


def events_after(engine: Engine, ticket_id: int, after_seq: int = 0) -> Progress | None:
    """The run's progress after *after_seq* (0: from the start); None if no such ticket."""
    with reading(engine) as conn:
        head = conn.execute(
            select(ticket.c.state, ticket.c.reason, ticket.c.message).where(ticket.c.id == ticket_id)
        ).first()
        if head is None:
            return None
        rows = conn.execute(
            select(step_result)
            .where(step_result.c.ticket_id == ticket_id, step_result.c.event_seq > after_seq)
            .order_by(step_result.c.event_seq)
        ).mappings()
        steps = []
        for r in rows:
            d = {k: r[k] for k in r.keys() if k not in ("id", "ticket_id")}
            d["inputs"], d["outputs"] = json.loads(d["inputs"] or "{}"), json.loads(d["outputs"] or "{}")
            steps.append(d)
    last = max((s["event_seq"] for s in steps), default=after_seq)
    return Progress(number_of(ticket_id), head.state, head.reason, head.message, steps, last)
