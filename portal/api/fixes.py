"""The catalogue and runs over JSON: ``GET /api/v1/catalogue``, ``POST /api/v1/runs``.

An employee's run always targets themself (``account`` / ``directory`` parameters are
refused for employees by the runner, 403). Secrets the run hands over once (a generated
temporary password) are in ``secrets`` of this answer only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from portal import i18n, runs
from portal.api import StrictBody
from portal.api.idempotency import Idempotent
from portal.deps import ClientInfo, PortalContext, allow, client_info, portal_context
from portal.errors import PortalError
from runner import fixes
from runner.auth import Principal, require_changed_password
from runner.ledger.store import reading
from runner.ledger.tables import ticket
from runner.mytickets import effect_of, outcome
from runner.runs import RunOutcome
from runner.texts import note_in, requester_message_in
from runner.ticketnumber import ticket_id

router = APIRouter(tags=["fixes"])
Employee = Annotated[Principal, Depends(allow("employee"))]
Temporary = Annotated[Principal, Depends(allow("employee", temporary=True))]  # checked per runbook
Ctx = Annotated[PortalContext, Depends(portal_context)]


class RunRequest(StrictBody):
    runbook: str = Field(min_length=1, max_length=64)
    params: dict[str, str | int | bool | None] = Field(default_factory=dict, max_length=50)


class RunAnswer(BaseModel):
    ticket: str
    state: str
    outcome: dict[str, str]
    message: str
    resolution_note: str | None
    secrets: dict[str, str] = Field(default_factory=dict)


@router.get("/catalogue")
def catalogue(request: Request, user: Employee, ctx: Ctx, q: str = "") -> list[dict[str, Any]]:
    """The fixes you may run, with their form fields; ``q`` filters (title, description, phrases)."""
    query = q.strip()[: fixes.MAX_QUERY] or None
    return [e.as_dict() for e in fixes.catalogue(ctx.firstline, user.roles, request.state.lang, query)]


@router.post("/runs", status_code=201)
def run(
    request: Request, body: RunRequest, user: Temporary, ctx: Ctx, client: Annotated[ClientInfo, Depends(client_info)]
) -> RunAnswer:
    """Run a fix for yourself (agents: see the agent routes for acting on others). Signed in
    with a temporary password: ``password-change`` only (403 ``password_change_required``)."""
    require_changed_password(user, body.runbook)
    entry = fixes.describe(ctx.firstline, body.runbook, user.roles)
    if entry is None:
        raise PortalError(404, "not_found", i18n.gettext("There is no fix with that name that you may run."))
    # a new password sent twice (``new_password_again``, as the catalogue's ``confirm`` says) is checked
    params = fixes.confirmed(entry, body.params, required=False)
    # Idempotency-Key (portal.api.idempotency): the same key again in this session answers with
    # the first run's ticket as it stands now (its once-only secrets are not repeated)
    once = Idempotent(request, user, ctx.firstline.engine, body)
    first = once.first()
    if first is not None:
        earlier = ctx.firstline.runs.outcome_from_ledger(first)
        message, note = _in_lang(ctx, earlier, request)
        return RunAnswer(
            ticket=earlier.ticket_number,
            state=earlier.state,
            outcome=outcome(earlier.state, None, request.state.lang, effect=_effect(ctx, earlier)),
            message=message,
            resolution_note=note,
            secrets={},
        )
    with once.running() as done:
        result = runs.run(ctx, body.runbook, params, user=user, client=client, channel="api", opened=done)
        done(result.ticket_number)
    message, note = _in_lang(ctx, result, request)
    return RunAnswer(
        ticket=result.ticket_number,
        state=result.state,
        outcome=outcome(result.state, None, request.state.lang, effect=_effect(ctx, result)),
        message=message,
        resolution_note=note,
        secrets=dict(result.secrets),
    )


def _in_lang(ctx: PortalContext, result: RunOutcome, request: Request) -> tuple[str, str | None]:
    """The stored (English) message and note of *result* in the request's language, as the
    ticket page shows them (``runner.texts.requester_message_in`` / ``note_in``: the runbook's
    own translation of the note, read from the ticket; an escalated ticket's technical reason
    in plain words)."""
    lang = request.state.lang
    message, note = result.message, result.resolution_note
    if lang == "en":
        return message, note
    stored = None
    if note is not None:
        with reading(ctx.firstline.engine) as conn:
            stored = conn.execute(
                select(ticket.c.resolution_note_i18n).where(ticket.c.id == ticket_id(result.ticket_number))
            ).scalar_one_or_none()
    shown = requester_message_in(result.state, message, result.reason, note, stored, lang)
    return shown or message, note_in(note, stored, lang)


def _effect(ctx: Ctx, result: Any) -> str | None:
    """What the resolved run *result* did (``runner.mytickets.effect_of``); None otherwise."""
    if result.state != "resolved":
        return None
    return effect_of(ctx.firstline, result.steps)
