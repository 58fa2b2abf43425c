"""The agent desk over JSON (role ``agent``; rules in ``runner.agent``).

* ``GET /api/v1/directories`` — the directories you may act on.
* ``GET /api/v1/directory/users/{directory}/{user}`` — one account's status (audited look-up).
* ``GET /api/v1/fixes`` — the one-click fixes and, for host fixes, their inventory choices.
* ``POST /api/v1/fixes/{runbook}`` — run one; ``reason`` is required. A generated temporary
  password is in ``temporary_password`` of this answer only (never stored, never sent again).
  An optional ``Idempotency-Key`` header makes a resend answer with the first ticket.
* ``GET /api/v1/tickets/escalated`` — the escalated queue, newest first (``cursor``, ``limit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from portal import i18n, runs
from portal.api import StrictBody
from portal.api.idempotency import Idempotent
from portal.deps import ClientInfo, PortalContext, allow, client_info, portal_context
from portal.errors import PortalError
from runner import agent
from runner.auth import Principal
from runner.queries import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(tags=["agent"])
Agent = Annotated[Principal, Depends(allow("agent"))]
Ctx = Annotated[PortalContext, Depends(portal_context)]
Client = Annotated[ClientInfo, Depends(client_info)]
# Generous transport limits; the exact rules (and their messages) are runner.agent's.
Name = Annotated[str, Path(min_length=1, max_length=256)]


class FixBody(StrictBody):
    """A one-click fix: ``reason`` always; ``user`` + ``directory`` for account fixes;
    ``choice`` (+ optional ``on_behalf_of``) for printer, service and disk fixes."""

    # 1..MAX_REASON characters once trimmed: checked by runner.agent.work_note, so a reason
    # of any length gets the same message ("at most 500 characters"); the body limit (64 KiB)
    # caps what is read
    reason: str = Field(
        description=f"Why, for the ticket and the audit: 1 to {agent.MAX_REASON} characters (trimmed).",
        json_schema_extra={"maxLength": agent.MAX_REASON},
    )
    user: str | None = Field(default=None, max_length=256)
    directory: str | None = Field(default=None, max_length=256)
    choice: str | None = Field(default=None, max_length=256)
    on_behalf_of: str | None = Field(default=None, max_length=256)


class FixAnswer(BaseModel):
    ticket: str
    state: str
    message: str
    resolution_note: str | None
    reason: str | None
    temporary_password: str | None = None


ACCOUNT_FIELDS = ("user", "directory")
HOST_FIELDS = ("choice", "on_behalf_of")


def unused_fields_problem(runbook: str, given: Mapping[str, object]) -> str | None:
    """What *given* (the request's fields) holds of the other kind of fix (``user`` /
    ``directory`` on a host fix, ``choice`` / ``on_behalf_of`` on an account fix), in the
    request's language, or None. Dropped, the fix would run other than asked (in the agent's
    own name, or for nobody in particular) and answer as if done. An empty field is no
    value. The one rule of the API and the desk's form route."""
    kind = agent.FIXES.get(runbook)
    if kind is None:
        return None  # runner.agent names the unknown fix (404)
    takes, other = (ACCOUNT_FIELDS, HOST_FIELDS) if kind == "account" else (HOST_FIELDS, ACCOUNT_FIELDS)
    unused = [name for name in other if given.get(name) not in (None, "")]
    if not unused:
        return None
    text = i18n.gettext("is not used by this fix (it takes: %(fields)s)") % {"fields": ", ".join(("reason", *takes))}
    return "; ".join(f"{name}: {text}" for name in unused)


def refuse_unused(runbook: str, body: FixBody) -> None:
    """422 (``invalid_input``) with ``unused_fields_problem``'s message, if any."""
    problem = unused_fields_problem(runbook, body.model_dump())
    if problem is not None:
        raise PortalError(422, "invalid_input", problem)


@router.get("/directories")
def directories(user: Agent, ctx: Ctx) -> list[dict[str, Any]]:
    """The directories you may act on (key, label, sign-in domains)."""
    return [{"key": d.key, "label": d.label, "domains": list(d.domains)} for d in agent.scope(ctx.firstline, user)]


@router.get("/directory/users/{directory}/{user_name}")
def account(directory: Name, user_name: Name, user: Agent, ctx: Ctx, client: Client) -> dict[str, Any]:
    """Whether the account exists, is locked (and why), disabled or expired, its password's
    state, whether it is protected (no one-click fixes), the fixes it offers, and those it
    withholds with the reason (``withheld``: a password reset for an account that holds the
    agent or auditor role, ``portal_role``, or whose groups could not all be read,
    ``roles_unknown``)."""
    view = agent.lookup(
        ctx.firstline, user, directory, user_name, client_ip=client.address, user_agent=client.user_agent
    )
    answer = view.as_dict()
    for item in answer["withheld"]:  # why a fix is not offered, in the request's language
        english = item["message"]  # a runner message (its msgid is extracted there)
        item["message"] = i18n.gettext(english)
    return answer


@router.get("/fixes")
def fix_list(user: Agent, ctx: Ctx) -> list[dict[str, Any]]:
    """The one-click fixes: name, what they act on, and the choices of host fixes."""
    return [
        {
            "runbook": name,
            "acts_on": kind,
            "choices": [{"key": k, "label": v} for k, v in agent.choices(ctx.firstline, name)],
        }
        for name, kind in agent.FIXES.items()
    ]


def _answer(answer: FixAnswer) -> JSONResponse:
    """*answer* as the response itself: FastAPI then skips its response-model pass, which for a
    plain ``def`` endpoint is one more thread-pool hop (the schema still says ``FixAnswer``)."""
    return JSONResponse(answer.model_dump(mode="json"))


@router.post("/fixes/{runbook}", response_model=FixAnswer)
def run_fix(
    request: Request,
    runbook: Annotated[str, Path(max_length=64)],
    body: FixBody,
    user: Agent,
    ctx: Ctx,
    client: Client,
) -> JSONResponse:
    """Run a one-click fix with a reason; answers when the ticket is final.

    ``Idempotency-Key`` (optional header, the rules of ``runner.formonce``): the same key
    again in this session answers with the first request's ticket as it stands now, without
    its once-only secret (a temporary password is shown once), and starts nothing.
    """
    refuse_unused(runbook, body)
    once = Idempotent(request, user, ctx.firstline.engine, body)
    first = once.first()
    if first is not None:
        earlier = ctx.firstline.runs.outcome_from_ledger(first)
        return _answer(
            FixAnswer(
                ticket=earlier.ticket_number,
                state=earlier.state,
                message=earlier.message,
                resolution_note=earlier.resolution_note,
                reason=earlier.reason,
            )
        )
    with once.running() as done:  # refused before a ticket: the key is given back for the corrected request
        values = body.model_dump(exclude={"reason"})
        fix = agent.prepare_fix(
            ctx.firstline, user, runbook, values, body.reason, client_ip=client.address, user_agent=client.user_agent
        )
        outcome = runs.run(
            ctx,
            fix.runbook,
            fix.params,
            user=user,
            client=client,
            requester=fix.requester,
            channel="api",
            work_note=fix.work_note,
            reads=fix.reads,
            held=fix.held,
            opened=done,  # the ticket exists: the key stays spent whatever fails after it
        )
        done(outcome.ticket_number)
    return _answer(
        FixAnswer(
            ticket=outcome.ticket_number,
            state=outcome.state,
            message=outcome.message,
            resolution_note=outcome.resolution_note,
            reason=outcome.reason,
            temporary_password=agent.temporary_password(outcome.secrets),
        )
    )


@router.get("/tickets/escalated")
def escalated_queue(
    user: Agent,
    ctx: Ctx,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Tickets automation could not resolve (about your directories or about none), newest
    first, with parameters, every step's redacted inputs and outputs, the reason and the
    agent's work note. ``next_cursor`` pages on."""
    return agent.escalated(ctx.firstline, user, cursor, limit)
