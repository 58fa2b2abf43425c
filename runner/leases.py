"""Run leases: how a run whose worker died is found and recovered without a person.

A claimed (``running``) ticket carries a lease in ``run_lease`` (revision 0012)::

    claim (one transaction with queued → running)   take(): owner = a token made for this claim,
                                                    lease_until = now + FIRSTLINE_RUN_LEASE_SECONDS,
                                                    attempts + 1
    while the run executes                          LeaseKeeper: a heartbeat thread renews every
                                                    lease this process holds (and its target
                                                    locks) every third of the lease
    before each step starts                         FencedRecorder: renews this lease in the
                                                    database; LeaseLost if it is no longer this
                                                    claim's (the sweep gave the run away)
    end of the run (finally)                        release(): the row is deleted

A worker that dies (SIGKILL, a lost machine) stops renewing; once ``lease_until`` has
passed, ``recover`` (called by ``RunService.sweep``, i.e. by the portal's sweeper and by
the Celery worker's) takes the lease back with a compare-and-set on the owner it saw and
decides from the ticket's step rows:

* **re-queued** (``run.resumed`` audit event, actor ``system:sweeper``) when no
  state-changing step had started — only check/read steps (``ActionSpec.changes_state``
  false, the connector contract) or none — the run has been claimed fewer than
  ``FIRSTLINE_RUN_MAX_ATTEMPTS`` times and it needs no secret parameters (those are
  handed to the first claim only). The ticket goes back to ``queued`` (deadline: now +
  ``FIRSTLINE_RUN_START_WITHIN``), the step that was in flight is marked ``failed`` /
  ``run_lost``, and the sweep hands the id to the dispatcher again; the next claim
  numbers its step rows after the old ones.
* **escalated** ``run_lost`` otherwise (``run.lost`` audit event naming the step that was
  in flight and why, then ``ticket.escalated``): a state-changing step may have changed
  the target half-way, which is for a person to check.

Clocks: lease times are written by the worker's clock and compared by the sweeper's, so
the machines' clocks must agree to well within a lease (NTP); the default 30 s leaves room.
A worker that was only paused longer than its lease (not dead) finds its lease gone at its
next step or renewal and stops without starting another step or closing the ticket.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, exists, func, insert, select, update

from connectors.base import Connector
from runner.engine import Recorder, StepRecord
from runner.errors import LedgerError
from runner.ledger import prepared
from runner.ledger.audit import Actor, AuditLog, now
from runner.ledger.lease_tables import OWNER_LENGTH, run_lease, target_lock
from runner.ledger.store import reading, transaction
from runner.ledger.tables import step_result, ticket
from runner.ledger.tickets import FINAL_STATES, RUNNING_STATES, actor_of, close_ticket, number_of
from runner.oplog import get_logger
from runner.runbook import CompiledStep

if TYPE_CHECKING:
    from runner.runs import RunService

SWEEPER = Actor("system:sweeper", ("service",))
# Step rows that Firstline itself writes (waiting for a target lock): never a change.
INTERNAL_CONNECTOR = "firstline"
STEP_LOST_MESSAGE = "The worker running this step stopped (its lease expired)."
LOST_DURING_CHANGE = (
    "The run stopped at step '{step}' (its worker was lost); second level must check the target's state."
)
LOST_SECRETS_GONE = (
    "The run stopped before it changed anything (its worker was lost) and its secret values are not kept; "
    "nothing was changed. Please make the request again."
)
LOST_TOO_OFTEN = (
    "The run was started {attempts} times and its worker was lost each time; nothing was changed. "
    "The service desk will look at it."
)


class LeaseLost(LedgerError):
    """This claim's lease is no longer in the database (the sweep took the run back after
    the lease expired): the run must not start another step nor close the ticket."""


def new_owner() -> str:
    """A token naming one claim: ``host:pid:random`` (at most 96 characters)."""
    return f"{socket.gethostname()[:48]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"[:OWNER_LENGTH]


def until(seconds: float) -> str:
    """Now + *seconds*, in the ledger's time text (ISO-8601 UTC, microseconds)."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


@dataclass
class Lease:
    """One claim's lease on *ticket_id*. ``attempt``: which claim of the ticket this is (1 = first);
    ``lost`` is set once a renewal found the lease taken away; ``renewed``: ``time.monotonic()``
    taken before the last renewal that succeeded (or before the claim)."""

    ticket_id: int
    owner: str = field(default_factory=new_owner)
    attempt: int = 1
    lost: threading.Event = field(default_factory=threading.Event, repr=False)
    renewed: float = field(default_factory=time.monotonic, repr=False)
    released: bool = field(default=False, repr=False)  # rows deleted with the ticket's final state

    def fresh(self, seconds: float) -> bool:
        """Renewed less than a third of *seconds* ago, so at least two thirds of the lease are
        left and no sweeper can have taken it (clocks agreeing to within that margin)."""
        return not self.lost.is_set() and time.monotonic() - self.renewed < seconds / 3


_RENEW = (
    update(run_lease)
    .where(and_(run_lease.c.ticket_id == bindparam("b_ticket"), run_lease.c.owner == bindparam("b_owner")))
    .values(lease_until=bindparam("b_until"), renewed_at=bindparam("b_now"))
)
_RENEW_LOCKS = (
    update(target_lock).where(target_lock.c.owner == bindparam("b_owner")).values(lease_until=bindparam("b_until"))
)
# Built once: SQLAlchemy caches their compiled form (a claim and a release are on every run's path).
_RECLAIM = (
    update(run_lease)
    .where(run_lease.c.ticket_id == bindparam("b_ticket"))
    .values(
        owner=bindparam("b_owner"),
        lease_until=bindparam("b_until"),
        renewed_at=bindparam("b_now"),
        attempts=run_lease.c.attempts + 1,
    )
)
_FIRST_CLAIM = insert(run_lease)
_ATTEMPTS = select(run_lease.c.attempts).where(run_lease.c.ticket_id == bindparam("b_ticket"))
_RELEASE_LOCKS = delete(target_lock).where(target_lock.c.owner == bindparam("b_owner"))
_RELEASE = delete(run_lease).where(
    and_(run_lease.c.ticket_id == bindparam("b_ticket"), run_lease.c.owner == bindparam("b_owner"))
)


def _relaxed(conn: Connection) -> None:
    """PostgreSQL: this transaction's commit does not wait for its WAL flush. Only for writes
    whose loss in a server crash is harmless: a renewal (the lease is simply older) and a
    release (the rows expire with their lease). Never for the claim."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def take(conn: Connection, lease: Lease, seconds: float) -> int:
    """In the claim's transaction: record *lease* as the ticket's (``attempts`` + 1) and
    return the attempt number (also set on *lease*). Only the one caller whose claim
    succeeded calls this, so the row is never written concurrently."""
    t, lease_until = now(), until(seconds)
    params = {"b_ticket": lease.ticket_id, "b_owner": lease.owner, "b_until": lease_until, "b_now": t}
    if prepared.execute(conn, _RECLAIM, params).rowcount:  # claimed before (re-queued by the sweep)
        lease.attempt = int(prepared.execute(conn, _ATTEMPTS, {"b_ticket": lease.ticket_id}).scalar_one())
    else:
        prepared.execute(
            conn,
            _FIRST_CLAIM,
            {
                "ticket_id": lease.ticket_id,
                "owner": lease.owner,
                "lease_until": lease_until,
                "renewed_at": t,
                "attempts": 1,
            },
        )
        lease.attempt = 1
    return lease.attempt


def renew(engine: Engine, leases: list[Lease], seconds: float) -> None:
    """Extend each of *leases* (and the target locks of each) to now + *seconds*, in one
    transaction; a lease no longer in the database under its owner gets ``lost`` set.
    ``LedgerError`` when the database cannot be written (the next heartbeat retries)."""
    started = time.monotonic()
    params = {"b_until": until(seconds), "b_now": now()}
    kept = []
    with transaction(engine) as conn:
        _relaxed(conn)
        for lease in leases:
            if lease.lost.is_set():
                continue
            if prepared.execute(conn, _RENEW, {"b_ticket": lease.ticket_id, "b_owner": lease.owner, **params}).rowcount:
                prepared.execute(conn, _RENEW_LOCKS, {"b_owner": lease.owner, "b_until": params["b_until"]})
                kept.append(lease)
            else:
                lease.lost.set()
    for lease in kept:  # committed
        lease.renewed = started


def confirm(engine: Engine, lease: Lease, seconds: float) -> bool:
    """Whether *lease* is still this claim's: True at once while it is ``fresh``, else
    renewed in the database now; False (and ``lost`` set) when it is no longer this claim's."""
    if lease.fresh(seconds):
        return True
    renew(engine, [lease], seconds)
    return not lease.lost.is_set()


def release_in(conn: Connection, lease: Lease) -> None:
    """``release`` inside the caller's transaction (the one that ends the ticket): one commit
    fewer per run. The caller sets ``lease.released`` once that transaction committed."""
    prepared.execute(conn, _RELEASE_LOCKS, {"b_owner": lease.owner})
    prepared.execute(conn, _RELEASE, {"b_ticket": lease.ticket_id, "b_owner": lease.owner})


def release(engine: Engine, lease: Lease) -> None:
    """The run ended: delete its lease row and its target locks (if still this claim's), in
    one transaction. ``LedgerError`` on a database failure (the sweep removes rows of final
    tickets later; the locks expire with their lease)."""
    with transaction(engine) as conn:
        _relaxed(conn)
        prepared.execute(conn, _RELEASE_LOCKS, {"b_owner": lease.owner})
        prepared.execute(conn, _RELEASE, {"b_ticket": lease.ticket_id, "b_owner": lease.owner})


def last_step_seq(engine: Engine, ticket_id: int) -> int:
    """The highest step row number of *ticket_id* (0 if none): a re-claimed run numbers after it."""
    with reading(engine) as conn:
        found = conn.execute(select(func.max(step_result.c.seq)).where(step_result.c.ticket_id == ticket_id)).scalar()
    return int(found or 0)


class LeaseKeeper:
    """The heartbeat: a daemon thread renewing every lease this process holds (``hold`` /
    ``drop``) every *seconds* / 3, in one transaction per beat. The thread starts with the
    first lease held and ends when none is left. A failed beat (database unreachable) is
    logged and retried at the next one; the lease lasts *seconds*, so a short outage
    costs nothing."""

    def __init__(self, engine: Engine, seconds: float) -> None:
        self.engine, self.seconds = engine, seconds
        self.interval = seconds / 3
        self._held: dict[str, Lease] = {}
        self._mu = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, lease: Lease) -> None:
        with self._mu:
            self._held[lease.owner] = lease
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="firstline-heartbeat", daemon=True)
                self._thread.start()

    def drop(self, lease: Lease) -> None:
        """Stop renewing *lease* and delete its row, unless ``forget`` came first (errors are
        logged: the sweep cleans up)."""
        with self._mu:
            if self._held.pop(lease.owner, None) is None or lease.released:
                return
        try:
            release(self.engine, lease)
        except LedgerError:
            get_logger().exception("lease.release_failed", ticket_id=lease.ticket_id)

    def forget(self, lease: Lease) -> None:
        """Stop renewing *lease* and leave its row to expire (the sweep then recovers the run)."""
        with self._mu:
            self._held.pop(lease.owner, None)

    def held(self) -> list[Lease]:
        with self._mu:
            return list(self._held.values())

    def _beat(self) -> None:
        stop = threading.Event()
        while not stop.wait(self.interval):
            with self._mu:
                if not self._held:
                    self._thread = None
                    return
                leases = list(self._held.values())
            try:
                renew(self.engine, leases, self.seconds)
            except Exception:  # noqa: BLE001 - the heartbeat must survive a database outage
                get_logger().exception("lease.renew_failed", leases=len(leases))
            for lease in leases:
                if lease.lost.is_set():
                    get_logger().warning("lease.lost", ticket_id=lease.ticket_id)


_KEEPERS: weakref.WeakKeyDictionary[RunService, LeaseKeeper] = weakref.WeakKeyDictionary()
_KEEPERS_MU = threading.Lock()


def keeper_for(svc: RunService) -> LeaseKeeper:
    """The heartbeat of *svc*'s runs (one per run service, made on first use)."""
    with _KEEPERS_MU:
        found = _KEEPERS.get(svc)
        if found is None:
            found = _KEEPERS[svc] = LeaseKeeper(svc.engine, float(svc.settings.run_lease_seconds))
        return found


class FencedRecorder:
    """Wraps a run's recorder: before a step that acts on a target starts, the lease is
    confirmed (``confirm``: renewed in the database unless renewed within the last third of
    the lease), and ``LeaseLost`` is raised when it is no longer this claim's, so a run the
    sweep has re-queued never starts another step here."""

    def __init__(self, inner: Recorder, engine: Engine, lease: Lease, seconds: float) -> None:
        self.inner, self.engine, self.lease, self.seconds = inner, engine, lease, seconds

    def step_started(self, step: CompiledStep, target: str | None, *, io: bool = True) -> None:
        # target None: a skipped step, which touches nothing (and is reported inside the
        # engine's preparation guard, where an error would be taken for a template problem);
        # io False: a step answered without asking its target, which touches nothing either.
        if target is not None and io and not confirm(self.engine, self.lease, self.seconds):
            raise LeaseLost(f"the lease of {number_of(self.lease.ticket_id)} was taken back by the sweep")
        self.inner.step_started(step, target, io=io)

    def step_finished(self, record: StepRecord) -> None:
        self.inner.step_finished(record)


def changes_state(connectors: Mapping[str, type[Connector]], connector: str, action: str) -> bool:
    """Whether a step row's action may change its target: the action's ``changes_state``
    (connector contract). Firstline's own rows (waiting for a lock) never do; an unknown
    connector or action counts as a change (fail safe)."""
    if connector == INTERNAL_CONNECTOR:
        return False
    cls = connectors.get(connector)
    spec = cls.actions.get(action) if cls is not None else None
    return True if spec is None else bool(spec.changes_state)


@dataclass
class Recovered:
    """What one ``recover`` pass did: ticket ids re-queued (to dispatch again) and escalated."""

    requeued: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)


def recover(
    engine: Engine,
    audit: AuditLog,
    connectors: Mapping[str, type[Connector]],
    *,
    actor: Actor = SWEEPER,
    max_attempts: int,
    start_within: float,
    escalation_group: str,
) -> Recovered:
    """Re-queue or escalate every running ticket whose lease has expired (module docstring).
    Each ticket is handled in its own transaction, only if its lease is still the expired
    one seen (several sweepers at once act once). ``LedgerError`` on a database failure."""
    t = now()
    with reading(engine) as conn:
        seen = conn.execute(
            select(run_lease.c.ticket_id, run_lease.c.owner)
            .select_from(run_lease.join(ticket, ticket.c.id == run_lease.c.ticket_id))
            .where(
                run_lease.c.owner.is_not(None),
                run_lease.c.lease_until < t,
                ticket.c.state.in_(RUNNING_STATES),
            )
            .order_by(run_lease.c.ticket_id)
        ).all()
    out = Recovered()
    for ticket_id, owner in seen:
        with transaction(engine) as conn:
            done = _recover_one(
                conn,
                audit,
                connectors,
                ticket_id,
                owner,
                actor=actor,
                max_attempts=max_attempts,
                start_within=start_within,
                escalation_group=escalation_group,
            )
        if done == "requeued":
            out.requeued.append(ticket_id)
        elif done == "escalated":
            out.escalated.append(ticket_id)
    return out


def _recover_one(
    conn: Connection,
    audit: AuditLog,
    connectors: Mapping[str, type[Connector]],
    ticket_id: int,
    owner: str,
    *,
    actor: Actor,
    max_attempts: int,
    start_within: float,
    escalation_group: str,
) -> str | None:
    t = now()
    taken = conn.execute(
        update(run_lease)
        .where(run_lease.c.ticket_id == ticket_id, run_lease.c.owner == owner, run_lease.c.lease_until < t)
        .values(owner=None, lease_until=None, renewed_at=t)
    ).rowcount
    if not taken:  # renewed meanwhile, or another sweeper took it
        return None
    attempts = int(conn.execute(select(run_lease.c.attempts).where(run_lease.c.ticket_id == ticket_id)).scalar_one())
    row = conn.execute(select(ticket).where(ticket.c.id == ticket_id)).mappings().first()
    if row is None or row["state"] not in RUNNING_STATES:
        return None
    steps = conn.execute(
        select(
            step_result.c.seq,
            step_result.c.step_id,
            step_result.c.connector,
            step_result.c.action,
            step_result.c.target,
            step_result.c.status,
        )
        .where(step_result.c.ticket_id == ticket_id)
        .order_by(step_result.c.seq)
    ).all()
    in_flight = [s for s in steps if s.status == "running"]
    changing = [s for s in steps if s.status != "skipped" and changes_state(connectors, s.connector, s.action)]
    needs_secrets = bool(json.loads(row["run_context"] or "{}").get("secret_params"))
    at_step = in_flight[-1].step_id if in_flight else (changing[-1].step_id if changing else None)
    number = number_of(ticket_id)
    meta = {k: row[k] for k in ("subject", "runbook", "runbook_sha256", "correlation_id")}
    detail: dict[str, Any] = {
        "attempt": attempts,
        "step_in_flight": in_flight[-1].step_id if in_flight else None,
        "state_changing_started": [s.step_id for s in changing],
        "lease_owner": owner,
    }
    resume = not changing and not needs_secrets and attempts < max_attempts
    if resume:
        moved = conn.execute(
            update(ticket)
            .where(ticket.c.id == ticket_id, ticket.c.state.in_(RUNNING_STATES))
            .values(state="queued", deadline_at=until(start_within), updated_at=t)
        ).rowcount
        if not moved:
            return None
    else:
        why = (
            "state_changing_step_started" if changing else "secrets_not_kept" if needs_secrets else "attempts_exhausted"
        )
        if changing:
            message = LOST_DURING_CHANGE.format(step=at_step)
        elif needs_secrets:
            message = LOST_SECRETS_GONE
        else:
            message = LOST_TOO_OFTEN.format(attempts=attempts)
        _audit_unknown_changes(conn, audit, row, [s for s in in_flight if s in changing], number, meta)
        audit.append(
            conn,
            actor,
            "run.lost",
            outcome="failure",
            target=meta["subject"],
            ticket=number,
            runbook=meta["runbook"],
            runbook_sha256=meta["runbook_sha256"],
            reason=why,
            correlation_id=meta["correlation_id"],
            detail=detail,
        )
        if not close_ticket(
            conn,
            audit,
            actor,
            ticket_id,
            state="escalated",
            resolution_code=None,
            note=None,
            reason="run_lost",
            message=message,
            assignment_group=escalation_group,
            meta=meta,
            from_states=RUNNING_STATES,
        ):
            raise LedgerError(f"{number} left running while it was recovered")  # rolls the audit event back
        conn.execute(delete(run_lease).where(run_lease.c.ticket_id == ticket_id))
    for s in in_flight:
        conn.execute(
            update(step_result)
            .where(step_result.c.ticket_id == ticket_id, step_result.c.seq == s.seq)
            .values(status="failed", reason="run_lost", message=STEP_LOST_MESSAGE, finished_at=t, event_seq=2 * s.seq)
        )
    conn.execute(delete(target_lock).where(target_lock.c.ticket_id == ticket_id))
    if resume:
        audit.append(
            conn,
            actor,
            "run.resumed",
            outcome="success",
            target=meta["subject"],
            ticket=number,
            runbook=meta["runbook"],
            runbook_sha256=meta["runbook_sha256"],
            reason="lease_expired",
            correlation_id=meta["correlation_id"],
            detail={**detail, "next_attempt": attempts + 1},
        )
    get_logger().warning("run.recovered", ticket=number, requeued=resume, step=detail["step_in_flight"])
    return "requeued" if resume else "escalated"


def _audit_unknown_changes(
    conn: Connection,
    audit: AuditLog,
    row: Mapping[Any, Any],
    steps: list[Any],
    number: str,
    meta: Mapping[str, Any],
) -> None:
    """The state-changing steps a lost run was inside, as audit events of its own actor with
    outcome ``unknown`` (the change may or may not have been made), as the run would have
    recorded a failed attempt (runner.runs, PCI DSS 10.2.2)."""
    run_actor = actor_of(row)
    for s in steps:
        audit.append(
            conn,
            run_actor,
            f"{s.connector}.{s.action}",
            outcome="unknown",
            target=f"{s.target or ''}:{meta['subject']}".strip(":"),
            ticket=number,
            runbook=meta["runbook"],
            runbook_sha256=meta["runbook_sha256"],
            correlation_id=meta["correlation_id"],
            detail={"step": s.step_id, "reason": "run_lost"},
        )


def tidy(engine: Engine) -> None:
    """Delete lease rows of final tickets and target locks whose lease has passed (both are
    harmless left behind: a lock past its lease is taken over at once)."""
    t = now()
    with transaction(engine) as conn:
        final = exists().where(ticket.c.id == run_lease.c.ticket_id, ticket.c.state.in_(FINAL_STATES))
        conn.execute(delete(run_lease).where(final))
        conn.execute(delete(target_lock).where(target_lock.c.lease_until < t))
