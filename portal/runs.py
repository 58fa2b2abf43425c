"""The portal's ONE door to runs (docs/portal.md "For contributors", item 7).

Until the run seam lands (submit → queued ticket → dispatcher), runs execute in the
request's worker thread through ``Firstline.run``; only this module changes when the
seam arrives. It also keeps the run metrics and ends the sessions of an account whose
password a run changed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from portal.deps import ClientInfo, PortalContext
from portal.metrics import RUN_DURATION, RUNS
from runner import agent
from runner.auth import Principal
from runner.service import RunOutcome

PASSWORD_ACTIONS = frozenset({"reset_password", "change_password"})


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
) -> RunOutcome:
    """Run *runbook* for *requester* (default: the signed-in user themself), acted by *user*.

    Roles are the user's; the runner checks policy, vetting and parameters and raises
    ``FirstlineError`` subclasses before a ticket exists (mapped by ``portal.errors``).
    *work_note*: an agent's reason (checked by ``runner.agent.work_note``), kept on the ticket.
    """
    agent.guard_run(ctx.firstline, user, runbook, params, work_note)
    started = time.monotonic()
    outcome = ctx.firstline.run(
        runbook,
        params,
        requester=requester or user.account,
        roles=set(user.roles),
        channel=channel,
        actor_id=user.account,
        client_ip=client.address,
        user_agent=client.user_agent,
        work_note=work_note,
    )
    RUNS.labels(runbook=runbook, outcome=outcome.state).inc()
    RUN_DURATION.labels(runbook=runbook).observe(time.monotonic() - started)
    _end_sessions_after_password_change(ctx, outcome)
    return outcome


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
    return None


def queue_depth(ctx: PortalContext) -> int:
    """Runs waiting to start: tickets in state ``queued`` (0 until the run seam queues runs)."""
    from sqlalchemy import func, select

    from runner.ledger.tables import ticket

    with ctx.firstline.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(ticket).where(ticket.c.state == "queued")).scalar() or 0
        )
