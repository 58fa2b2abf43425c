"""The portal's ONE door to runs (docs/portal.md "For contributors", item 7).

Runs go through the run seam (docs/architecture.md "The run seam"): ``submit`` writes a
``queued`` ticket and hands its id to the portal's in-process worker pool
(``runner.dispatch.InProcessDispatcher``, ``settings.run_workers`` threads and
``settings.run_queue_size`` waiting; beyond that ``QueueFull``, HTTP 503, no ticket) — or,
with ``FIRSTLINE_BROKER_URL``, publishes it to Celery for ``firstline worker`` processes
(``runner.dispatch.CeleryDispatcher``; queue by ``runner.celery_app.queue_for``);
``run`` submits and waits for the outcome (what a one-click fix shows at once);
``follow`` reads a run's progress from the ledger (server-sent events; polling works the
same way). ``start(ctx)`` — called when the app starts — creates the pool and the
periodic sweep (``never_started`` / ``run_lost``); ``stop(ctx)`` ends both. Each finished
run updates the run metrics (pool runs only); ending the sessions of an account whose
password it changed is ``runner.afterrun`` — done by whichever process ran it, a Celery
worker too. A once-only output of a run a worker executed (a temporary password) comes back
sealed through the ledger (``runner.sealed``) and is taken once by ``run``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from portal import oneshot
from portal.deps import ClientInfo, PortalContext
from portal.metrics import RUN_DURATION, RUNS
from runner import agent, sealed
from runner.afterrun import after_run
from runner.auth import Principal
from runner.dispatch import CeleryDispatcher, Dispatcher, InProcessDispatcher
from runner.engine import Read
from runner.errors import FirstlineError
from runner.ledger.audit import Held
from runner.ledger.progress import Progress
from runner.ledger.store import reading
from runner.recorder import Progress as ProgressCallback
from runner.runs import Submitted
from runner.service import RunOutcome

WAIT_SECONDS = 300.0  # ``run`` waits this long for a final state, then returns the ticket as it is
_start_lock = threading.Lock()
_submitted_at: dict[int, float] = {}  # ticket id -> monotonic submit time, for RUN_DURATION
_here = threading.local()  # submit time of a run executed in the submitting thread (``here``)


def start(ctx: PortalContext) -> Dispatcher:
    """Create (once) the dispatcher — the in-process worker pool, or the Celery publisher
    when ``FIRSTLINE_BROKER_URL`` is set — and the periodic sweep for *ctx*'s service."""
    with _start_lock:
        pool = ctx.extras.get("dispatcher")
        if isinstance(pool, InProcessDispatcher | CeleryDispatcher):
            return pool
        settings = ctx.settings
        if settings.broker_url is not None:
            pool = _celery_dispatcher(ctx)
        else:
            pool = InProcessDispatcher(
                lambda ticket_id: _execute(ctx, ticket_id),
                workers=settings.run_workers,
                queue_size=settings.run_queue_size,
            )
        ctx.extras["dispatcher"] = pool
        # Once-only values (post/redirect/get) sealed in the ledger when a run key exists:
        # any portal process can answer the redirect.
        oneshot.configure(ctx.firstline.engine, ctx.firstline.runs.run_key)
        ctx.firstline.runs.dispatcher = pool
        ctx.extras["sweeper"] = ctx.firstline.runs.start_sweeper(settings.sweep_interval)
        return pool


def stop(ctx: PortalContext) -> None:
    """Stop the sweep and the pool (runs already handed over finish first)."""
    with _start_lock:
        sweeper = ctx.extras.pop("sweeper", None)
        if sweeper is not None:
            sweeper.stop()
        pool = ctx.extras.pop("dispatcher", None)
        if pool is not None:
            ctx.firstline.runs.dispatcher = None
            pool.close()
            oneshot.configure(None, None)


def _celery_dispatcher(ctx: PortalContext) -> CeleryDispatcher:
    from runner.celery_app import dispatcher_for, make_celery

    settings = ctx.settings
    assert settings.broker_url is not None
    celery = make_celery(settings.broker_url)
    found: CeleryDispatcher = dispatcher_for(celery, ctx.firstline.engine, settings.batch_runbooks)
    return found


def _execute(ctx: PortalContext, ticket_id: int) -> RunOutcome | None:
    """What a pool worker does with a ticket id: execute it, then the after-run work."""
    outcome = ctx.firstline.runs.execute(ticket_id)
    started = _submitted_at.pop(ticket_id, None) or getattr(_here, "started", None)
    if outcome is not None:
        runbook = outcome.runbook or _runbook_of(ctx, ticket_id)
        RUNS.labels(runbook=runbook, outcome=outcome.state).inc()
        if started is not None:
            RUN_DURATION.labels(runbook=runbook).observe(time.monotonic() - started)
        after_run(ctx.firstline, outcome)
    return outcome


def _runbook_of(ctx: PortalContext, ticket_id: int) -> str:
    from sqlalchemy import select

    from runner.ledger.tables import ticket

    with reading(ctx.firstline.engine) as conn:
        return str(conn.execute(select(ticket.c.runbook).where(ticket.c.id == ticket_id)).scalar() or "unknown")


def submit(
    ctx: PortalContext,
    runbook: str,
    params: Mapping[str, Any],
    *,
    user: Principal,
    client: ClientInfo,
    requester: str | None = None,
    channel: str,
    work_note: str | None = None,
    proof: str | None = None,
    reads: Sequence[Read] = (),
    here: bool = False,
    held: Held | None = None,
    opened: Callable[[str], None] | None = None,
) -> Submitted:
    """Queue *runbook* for *requester* (default: the signed-in user themself), acted by
    *user*; returns at once with the ticket (follow it with ``follow``). *channel*: ``portal``
    for a page, ``api`` for ``/api/v1`` (no default: each caller says which; employee API runs
    were recorded as ``portal``).

    Roles are the user's; the runner checks policy, vetting and parameters and raises
    ``FirstlineError`` subclasses before a ticket exists (mapped by ``portal.errors``);
    ``runner.dispatch.QueueFull`` when every worker is busy and the queue is full.
    *work_note*: an agent's reason (checked by ``runner.agent.work_note``), kept on the ticket.
    *proof*: ``runner.runs.PROOF_SELFSERVICE`` only from the one-time-code routes after
    ``SelfService.redeem`` (never from request input); None for a signed-in session, which
    then cannot reset an employee's password (``RunService.account_rules``).
    *held*: the agent's look-up to record with the ticket (``runner.agent.prepare_fix``);
    written on its own if the request ends before a ticket took it.
    *opened*: called with the ticket number as soon as the ticket is written, before the
    run is handed over (``runner.formonce.FirstSubmit.opened``: from then on the form token
    stays spent, whatever fails later in this request).
    """
    try:
        return _submit(
            ctx, runbook, params, user, client, requester, channel, work_note, proof, reads, here, held, opened
        )
    finally:
        agent.flush_held(ctx.firstline, held)


def _submit(
    ctx: PortalContext,
    runbook: str,
    params: Mapping[str, Any],
    user: Principal,
    client: ClientInfo,
    requester: str | None,
    channel: str,
    work_note: str | None,
    proof: str | None,
    reads: Sequence[Read],
    here: bool,
    held: Held | None,
    opened: Callable[[str], None] | None,
) -> Submitted:
    agent.guard_run(ctx.firstline, user, runbook, params, work_note)
    pool = start(ctx)
    submitted_at = time.monotonic()
    # A caller that only waits for the outcome runs it in its own (request) thread, within the
    # pool's places: no hand-over to a pool thread and back (``InProcessDispatcher.here``).
    here = here and isinstance(pool, InProcessDispatcher)
    dispatcher: Any = pool.here() if here and isinstance(pool, InProcessDispatcher) else pool
    _here.started = submitted_at if here else None
    submitted = ctx.firstline.runs.submit(
        runbook,
        params,
        requester=requester or user.account,
        roles=set(user.roles),
        channel=channel,
        actor_id=user.account,
        client_ip=client.address,
        user_agent=client.user_agent,
        dispatcher=dispatcher,
        work_note=work_note,
        proof=proof,
        reads=reads,
        held=held,
        progress=_on_opened(opened) if opened is not None else None,
    )
    _here.started = None
    if isinstance(pool, InProcessDispatcher) and not here:
        _submitted_at.setdefault(submitted.ticket_id, submitted_at)
    return submitted


def _on_opened(opened: Callable[[str], None]) -> ProgressCallback:
    """``RunService.submit``'s progress callback, for its ``ticket.opened`` only."""

    def progress(event: str, data: Mapping[str, Any]) -> None:
        if event == "ticket.opened":
            opened(str(data["ticket"]))

    return progress


def follow(ctx: PortalContext, ticket_id: int, after_seq: int = 0) -> Progress:
    """The run's step rows changed after *after_seq* and its state (``runner.ledger.progress``)."""
    return ctx.firstline.runs.follow(ticket_id, after_seq)


def run(
    ctx: PortalContext,
    runbook: str,
    params: Mapping[str, Any],
    *,
    user: Principal,
    client: ClientInfo,
    requester: str | None = None,
    channel: str,
    work_note: str | None = None,
    proof: str | None = None,
    reads: Sequence[Read] = (),
    held: Held | None = None,
    opened: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run *runbook* for *requester* (default: the signed-in user themself), acted by *user*,
    and wait for its outcome (``submit`` then ``RunService.wait``; at most ``WAIT_SECONDS``,
    after which the ticket is returned as it stands, still queued or running).

    Roles are the user's; the runner checks policy, vetting and parameters and raises
    ``FirstlineError`` subclasses before a ticket exists (mapped by ``portal.errors``).
    *work_note*: an agent's reason (checked by ``runner.agent.work_note``), kept on the ticket.
    *opened*: as for ``submit`` (the ticket exists; an error after it leaves the form token spent).
    """
    submitted = submit(
        ctx,
        runbook,
        params,
        user=user,
        client=client,
        requester=requester,
        channel=channel,
        work_note=work_note,
        proof=proof,
        reads=reads,
        here=True,
        held=held,
        opened=opened,
    )
    # The pool worker runs it (and does the after-run work); the outcome, with any secret
    # output such as a temporary password, is handed over here once.
    runs = ctx.firstline.runs
    outcome = runs.wait(submitted.ticket_id, timeout=WAIT_SECONDS, just_submitted=True)
    if outcome is None:
        return runs.outcome_from_ledger(submitted.ticket_id)
    if not outcome.secrets and outcome.state in ("resolved", "escalated", "closed") and _gives_secrets(ctx, runbook):
        # Executed by a worker: its once-only outputs wait sealed in the ledger, for one reader.
        outcome.secrets = outputs_of(ctx, submitted.ticket_id)
    return outcome


def _gives_secrets(ctx: PortalContext, runbook: str) -> bool:
    """Whether a step of *runbook* has a secret output (a generated password) that a worker
    would seal for this process; True when that cannot be told (then the ledger is asked).
    Most runs have none, and asking cost a write transaction per run (bench/burst.py)."""
    try:
        rb = ctx.firstline.catalogue.runbook(runbook)
    except FirstlineError:
        return True
    return any(step.action.secret_outputs for step in rb.steps)


def outputs_of(ctx: PortalContext, ticket_id: int) -> dict[str, str]:
    """The once-only outputs (e.g. ``reset.temporary_password``) a worker sealed for
    *ticket_id*, taken once (deleted as they are read); ``{}`` when there are none, they
    expired, or no run key is configured."""
    runs = ctx.firstline.runs
    if not isinstance(ctx.extras.get("dispatcher"), CeleryDispatcher):
        return {}
    found = sealed.take_values(runs.engine, runs.run_key, ticket_id, sealed.OUTPUTS, sealed.OUTPUTS_TTL)
    return {str(k): str(v) for k, v in found.items() if isinstance(v, str)}


def ready(ctx: PortalContext) -> str | None:
    """None when runs can be dispatched, else a short reason (for ``/readyz``)."""
    try:
        ctx.firstline.inventory  # noqa: B018 - loading it proves the inventory is usable
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        return f"runner not ready ({type(exc).__name__})"
    pool = ctx.extras.get("dispatcher")
    if isinstance(pool, InProcessDispatcher) and pool.depth() >= pool.capacity:
        return "run queue full"
    if ctx.settings.broker_url is not None:  # scale-out: runs are handed to the broker
        from runner.celery_app import check_broker
        from runner.errors import ConfigError

        try:
            check_broker(ctx.settings.broker_url, timeout=1.0)
        except ConfigError:
            return "broker not reachable (FIRSTLINE_BROKER_URL)"
    return None


def queue_depth(ctx: PortalContext) -> int:
    """Runs waiting to start: tickets in state ``queued`` (any process's, read from the ledger)."""
    from sqlalchemy import func, select

    from runner.ledger.tables import ticket

    with reading(ctx.firstline.engine) as conn:
        return int(
            conn.execute(select(func.count()).select_from(ticket).where(ticket.c.state == "queued")).scalar() or 0
        )


def _end_sessions_after_password_change(ctx: PortalContext, outcome: RunOutcome) -> None:
    """Kept for callers of the old name: the rule is ``runner.afterrun`` now."""
    from runner.afterrun import end_sessions_after_password_change

    end_sessions_after_password_change(ctx.firstline, outcome)
