"""The ledger side of one run (``LedgerRecorder``): the step rows a run writes as it goes,
and the audit event of each state-changing step, for ``runner.engine`` (its ``Recorder``).

Shapes: ``step_result`` rows (``runner.ledger.progress``), audit events
(``runner.ledger.audit``). Errors: ``LedgerError`` when the ledger cannot be written even
after riding over a short database outage (``store.write_retrying``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from runner.engine import StepRecord
from runner.ledger import progress as progress_mod
from runner.ledger.audit import Actor, AuditLog, now
from runner.ledger.store import write_retrying
from runner.runbook import CompiledStep, Runbook

Progress = Callable[[str, Mapping[str, Any]], None]  # (event, data): a run's progress as it happens


def shielded(progress: Progress | None, log: Any) -> Progress | None:
    """*progress* made harmless to the run it shows: a display that fails — a closed pipe
    (``firstline run ... | head``: Rich then raises ``SystemExit``), a full disk, an encoding
    the terminal lacks — is logged once (``run.progress_failed``) and not called again, and
    the run goes on to its final state. ``KeyboardInterrupt`` still stops the run (as Ctrl-C
    must). Before, the failure escaped the run: the ticket stayed queued or running until
    the sweep, or was escalated ``internal_error`` for a display problem."""
    if progress is None or getattr(progress, "shielded", False):
        return progress
    broken = False

    def call(kind: str, data: Mapping[str, Any]) -> None:
        nonlocal broken
        if broken:
            return
        try:
            progress(kind, data)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a display must never decide a run
            broken = True
            log.warning("run.progress_failed", progress_event=kind, error=type(exc).__name__)

    call.shielded = True  # type: ignore[attr-defined]
    return call


class LedgerRecorder:
    """Writes each step row when the step starts (``running``) and updates it when it
    finishes, the audit event of a state change in the same transaction.

    A step's finish (row update and audit event) is committed together with whatever the
    run writes next — the next step's start, or the ticket's end (``flush_into`` inside
    ``_finish``'s transaction) — since nothing acts on a target in between: one commit per
    step instead of two, and every step that may change a target still has its start row
    committed before it acts (what recovery relies on, ``runner.leases``). A step that
    does no I/O (skipped, or served by the request's own look-up: ``io=False``) writes its
    one row with its finish."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        ticket_id: int,
        number: str,
        actor: Actor,
        runbook: Runbook,
        correlation_id: str,
        progress: Progress | None,
        *,
        retry_seconds: float,
    ) -> None:
        self.engine, self.audit, self.retry_seconds = engine, audit, retry_seconds
        self.ticket_id, self.number, self.actor = ticket_id, number, actor
        self.runbook, self.correlation_id, self.progress, self.seq = runbook, correlation_id, progress, 0
        self.open_seq: int | None = None
        self.unwritten = False  # the open step's row is not in the ledger yet (a skipped step)
        self.titles: dict[str, dict[str, str]] = {}
        self._pending: list[Callable[[Connection], None]] = []  # finished steps not yet written

    def pending(self) -> list[Callable[[Connection], None]]:
        """The writes of finished steps not yet in the ledger, in order (``written`` once
        the caller's transaction holding them committed)."""
        return list(self._pending)

    def written(self, count: int) -> None:
        del self._pending[:count]

    def _write(self, extra: Callable[[Connection], None] | None = None) -> None:
        """The pending writes and *extra* in one transaction, ridden over a database restart
        (``store.write_retrying``)."""
        pending = self.pending()

        def work(conn: Connection) -> None:
            for write in pending:
                write(conn)
            if extra is not None:
                extra(conn)

        write_retrying(self.engine, work, seconds=self.retry_seconds)
        self.written(len(pending))

    def flush(self) -> None:
        """The pending writes in a transaction of their own (a run ending without ``_finish``)."""
        if self._pending:
            self._write()

    def step_started(self, step: CompiledStep, target: str | None, *, io: bool = True) -> None:
        title_text = getattr(step.spec, "title", None)
        if title_text is not None:
            self.titles[step.id] = {"en": title_text.en, "nl": title_text.get("nl")}
        elif step.id == "verify":
            self.titles[step.id] = {"en": "Check the result", "nl": "Resultaat controleren"}
        else:
            self.titles[step.id] = {"en": step.id, "nl": step.id}
        self.seq += 1
        self.open_seq = self.seq
        if target is None or not io:
            # A skipped step (``when`` false) or one answered without asking its target touches
            # nothing: its one row is written when it "finishes", a moment later.
            self.unwritten = True
            return self._started_event(step, target)
        seq, started = (
            self.seq,
            {
                "step_id": step.id,
                "connector": step.spec.connector,
                "action": step.spec.action,
                "target": target,
                "started_at": now(),
            },
        )
        self._write(lambda conn: progress_mod.step_started(conn, self.ticket_id, seq, started))
        self._started_event(step, target)

    def _started_event(self, step: CompiledStep, target: str | None) -> None:
        if self.progress is not None:
            self.progress("step.started", {"step": step.id, "title": self.titles[step.id], "target": target})

    def step_finished(self, record: StepRecord) -> None:
        if self.open_seq is None:  # the step could not be prepared: it never started
            self.seq += 1
        seq, self.open_seq = self.seq, None
        unwritten, self.unwritten = self.unwritten, False
        row = record.row()

        def write(conn: Connection) -> None:
            progress_mod.step_finished(conn, self.ticket_id, seq, row, started=not unwritten)
            if not record.changes_state:
                return
            detail: dict[str, Any] = {"step": record.step_id, "inputs": record.inputs}
            if record.status == "ok":
                # changed False: the action found nothing to do; recorded as such, never as a change.
                outcome = "success" if record.changed is not False else "no_change"
                detail.update(changed=record.changed is not False, changed_reported=record.changed_reported)
            elif record.status == "failed" and record.attempt_outcome is not None:
                # A change that was tried and failed is an action too (PCI DSS 10.2.2: "success
                # or failure"); "unknown" when it may have been applied (docs/auditing.md).
                outcome = record.attempt_outcome
                detail["reason"] = record.reason
            else:
                return
            self.audit.append(
                conn,
                self.actor,
                f"{record.connector}.{record.action}",
                outcome=outcome,
                target=f"{record.target}:{record.inputs.get('user') or record.inputs.get('queue') or ''}".rstrip(":"),
                ticket=self.number,
                runbook=self.runbook.name,
                runbook_sha256=self.runbook.sha256,
                correlation_id=self.correlation_id,
                detail=detail,
            )

        self._pending.append(write)
        if self.progress is not None:
            self.progress(
                "step.finished",
                {
                    "step": record.step_id,
                    "title": self.titles.get(record.step_id, {"en": record.step_id, "nl": record.step_id}),
                    "status": record.status,
                    "message": record.message,
                    "reason": record.reason,
                    "changed": record.changed,
                },
            )
