"""The portal's ONE door to runs (docs/portal.md "For contributors", item 7).

Runs go through the run seam (docs/architecture.md "The run seam"): ``submit`` writes a
``queued`` ticket and hands its id to the portal's in-process worker pool
(``runner.dispatch.InProcessDispatcher``, ``settings.run_workers`` threads and
``settings.run_queue_size`` waiting; beyond that ``QueueFull``, HTTP 503, no ticket);
``run`` submits and waits for the outcome (what a one-click fix shows at once);
``follow`` reads a run's progress from the ledger (server-sent events; polling works the
same way). ``start(ctx)`` — called when the app starts — creates the pool and the
periodic sweep (``never_started`` / ``run_lost``); ``stop(ctx)`` ends both. Each finished
run updates the run metrics and ends the sessions of an account whose password it changed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from portal.deps import ClientInfo, PortalContext
from portal.metrics import RUN_DURATION, RUNS
from runner import agent
from runner.auth import Principal
from runner.dispatch import InProcessDispatcher
from runner.ledger.progress import Progress
from runner.runs import Submitted
from runner.service import RunOutcome

PASSWORD_ACTIONS = frozenset({"reset_password", "change_password"})
WAIT_SECONDS = 300.0  # ``run`` waits this long for a final state, then returns the ticket as it is
_start_lock = threading.Lock()
_submitted_at: dict[int, float] = {}  # ticket id -> monotonic submit time, for RUN_DURATION


def start(ctx: PortalContext) -> InProcessDispatcher:
    """Create (once) the in-process worker pool and the periodic sweep for *ctx*'s service."""
    with _start_lock:
        pool = ctx.extras.get("dispatcher")
        if isinstance(pool, InProcessDispatcher):
            return pool
        settings = ctx.settings
        pool = InProcessDispatcher(
            lambda ticket_id: _execute(ctx, ticket_id),
            workers=settings.run_workers,
            queue_size=settings.run_queue_size,
        )
        ctx.extras["dispatcher"] = pool
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


def _execute(ctx: PortalContext, ticket_id: int) -> RunOutcome | None:
    """What a pool worker does with a ticket id: execute it, then the portal's after-run work."""
    outcome = ctx.firstline.runs.execute(ticket_id)
    started = _submitted_at.pop(ticket_id, None)
    if outcome is not None:
        runbook = _runbook_of(ctx, ticket_id)
        RUNS.labels(runbook=runbook, outcome=outcome.state).inc()
        if started is not None:
            RUN_DURATION.labels(runbook=runbook).observe(time.monotonic() - started)
        _end_sessions_after_password_change(ctx, outcome)
    return outcome


def _runbook_of(ctx: PortalContext, ticket_id: int) -> str:
    from sqlalchemy import select

    from runner.ledger.tables import ticket

    with ctx.firstline.engine.connect() as conn:
        return str(conn.execute(select(ticket.c.runbook).where(ticket.c.id == ticket_id)).scalar() or "unknown")


def submit(
    ctx: PortalContext,
    runbook: str,
    params: Mapping[str, Any],
    *,
    user: Principal,
    client: ClientInfo,
    requester: str | None = None,
    channel: str = "portal",
    work_note: str | None = None,
    proof: str | None = None,
) -> Submitted:
    """Queue *runbook* for *requester* (default: the signed-in user themself), acted by
    *user*; returns at once with the ticket (follow it with ``follow``).

    Roles are the user's; the runner checks policy, vetting and parameters and raises
    ``FirstlineError`` subclasses before a ticket exists (mapped by ``portal.errors``);
    ``runner.dispatch.QueueFull`` when every worker is busy and the queue is full.
    *work_note*: an agent's reason (checked by ``runner.agent.work_note``), kept on the ticket.
    *proof*: ``runner.runs.PROOF_SELFSERVICE`` only from the one-time-code routes after
    ``SelfService.redeem`` (never from request input); None for a signed-in session, which
    then cannot reset an employee's password (``RunService.account_rules``).
    """
    agent.guard_run(ctx.firstline, user, runbook, params, work_note)
    pool = start(ctx)
    submitted_at = time.monotonic()
    submitted = ctx.firstline.runs.submit(
        runbook,
        params,
        requester=requester or user.account,
        roles=set(user.roles),
        channel=channel,
        actor_id=user.account,
        client_ip=client.address,
        user_agent=client.user_agent,
        dispatcher=pool,
        work_note=work_note,
        proof=proof,
    )
    _submitted_at.setdefault(submitted.ticket_id, submitted_at)
    return submitted


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
    channel: str = "portal",
    work_note: str | None = None,
    proof: str | None = None,
) -> RunOutcome:
    """Run *runbook* for *requester* (default: the signed-in user themself), acted by *user*,
    and wait for its outcome (``submit`` then ``RunService.wait``; at most ``WAIT_SECONDS``,
    after which the ticket is returned as it stands, still queued or running).

    Roles are the user's; the runner checks policy, vetting and parameters and raises
    ``FirstlineError`` subclasses before a ticket exists (mapped by ``portal.errors``).
    *work_note*: an agent's reason (checked by ``runner.agent.work_note``), kept on the ticket.
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
    )
    # The pool worker runs it (and does the after-run work); the outcome, with any secret
    # output such as a temporary password, is handed over here once.
    outcome = ctx.firstline.runs.wait(submitted.ticket_id, timeout=WAIT_SECONDS)
    return outcome if outcome is not None else ctx.firstline.runs.outcome_from_ledger(submitted.ticket_id)


def _end_sessions_after_password_change(ctx: PortalContext, outcome: RunOutcome) -> None:
    dirs = ctx.firstline.inventory.directories
    by_target = {d.target: d.key for d in dirs.entries.values()}
    for step in outcome.steps:
        if step.action in PASSWORD_ACTIONS and step.status == "ok" and step.target in by_target:
            user = step.inputs.get("user")
            if isinstance(user, str) and user:
                ctx.auth.end_sessions_of(by_target[step.target], user)


def ready(ctx: PortalContext) -> str | None:
    """None when runs can be dispatched, else a short reason (for ``/readyz``)."""
    try:
        ctx.firstline.inventory  # noqa: B018 - loading it proves the inventory is usable
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        return f"runner not ready ({type(exc).__name__})"
    pool = ctx.extras.get("dispatcher")
    if isinstance(pool, InProcessDispatcher) and pool.depth() >= pool.capacity:
        return "run queue full"
    return None


def queue_depth(ctx: PortalContext) -> int:
    """Runs waiting to start: tickets in state ``queued`` (any process's, read from the ledger)."""
    from sqlalchemy import func, select

    from runner.ledger.tables import ticket

    with ctx.firstline.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(ticket).where(ticket.c.state == "queued")).scalar() or 0
        )
