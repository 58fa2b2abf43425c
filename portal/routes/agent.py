"""The agent desk pages (role ``agent``; rules in ``runner.agent``).

* ``GET /agent`` — look an account up (directory + account name) and the host fixes
  (printer queue, service restart, disk cleanup: choices from the inventory).
* ``GET /agent/account?directory=&user=`` — the account's status in plain words, with the
  unlock and reset forms (each with a required reason); a protected account gets none.
* ``POST /agent/fixes/{runbook}`` — run a fix through ``portal.runs``, then redirect to the
  agent's view of the ticket. A field the fix does not take (unknown, or of the other kind
  of fix: ``user`` on a printer fix) is refused with 422 on the page, never dropped. A
  generated temporary password travels to that page once through ``portal.oneshot``
  (memory only, this session only); reloading shows none.
* ``GET /agent/tickets/{number}`` — a ticket (about a directory in the agent's scope, or
  none) with its reason, work note and redacted steps.
* ``GET /agent/escalated`` — the escalated queue, newest first, keyset pages (``cursor``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from portal import i18n, oneshot, runs
from portal.api.agent import unused_fields_problem
from portal.deps import ClientInfo, PortalContext, allow, client_info, portal_context
from portal.errors import PortalError, unknown_fields_text
from portal.rendering import render
from portal.routes.fixes import form_key
from portal.security import is_head
from runner import agent
from runner.auth import Principal
from runner.errors import ParameterError, PolicyDenied
from runner.formonce import FirstSubmit, FormOnce
from runner.ledger.store import reading
from runner.ledger.tables import ticket
from runner.ledger.tickets import FINAL_STATES
from runner.queries import DEFAULT_LIMIT, MAX_LIMIT
from runner.runs import RunOutcome

router = APIRouter(tags=["agent pages"])
Agent = Annotated[Principal, Depends(allow("agent"))]
Ctx = Annotated[PortalContext, Depends(portal_context)]
Client = Annotated[ClientInfo, Depends(client_info)]
FORM_FIELDS = ("reason", "user", "directory", "choice", "on_behalf_of")
FORM_EXTRAS = ("csrf_token", "form_token")  # the form's own hidden fields
REFRESH_SECONDS = 2  # an agent's ticket page reloads this often while its run works


def _owner(who: Principal) -> str:
    return f"{who.via}:{who.session_id}:{who.account}"


def _host_fixes(ctx: PortalContext) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(name, agent.choices(ctx.firstline, name)) for name, kind in agent.FIXES.items() if kind != "account"]


def _desk(
    request: Request, user: Principal, ctx: PortalContext, *, error: str | None = None, status: int = 200, **extra: Any
) -> Response:
    context: dict[str, Any] = {
        "directories": agent.scope(ctx.firstline, user),
        "host_fixes": _host_fixes(ctx),
        "error": error,
        "values": {},
        "fix_error": None,
        "failed": None,
    }
    context.update(extra)
    return render(request, "agent/desk.html", context, status_code=status)


@router.get("/agent")
def desk(request: Request, user: Agent, ctx: Ctx) -> Response:
    """Look-up form and host fixes."""
    return _desk(request, user, ctx)


@router.get("/agent/account")
def account(
    request: Request,
    user: Agent,
    ctx: Ctx,
    client: Client,
    directory: Annotated[str, Query(max_length=20_000)] = "",
    user_name: Annotated[str, Query(alias="user", max_length=20_000)] = "",
) -> Response:
    """The account's status and, unless it is protected, its one-click fixes."""
    values = {"directory": directory, "user": user_name}
    try:
        view = agent.lookup(
            ctx.firstline, user, directory, user_name, client_ip=client.address, user_agent=client.user_agent
        )
    except (ParameterError, PolicyDenied) as exc:
        status = 403 if isinstance(exc, PolicyDenied) else 422
        return _desk(request, user, ctx, error=i18n.error_text(exc), status=status, values=_safe(values))
    return render(request, "agent/account.html", {"view": view, "error": None, "reason": "", "failed": None})


def _safe(values: dict[str, str]) -> dict[str, str]:
    """Values to put back into a form after a refusal: short and printable, else dropped."""
    return {k: v for k, v in values.items() if len(v) <= 256 and v.isprintable()}


@router.post("/agent/fixes/{runbook}")
async def run_fix(
    request: Request, user: Agent, ctx: Ctx, client: Client, runbook: Annotated[str, Path(max_length=64)]
) -> Response:
    """Run a one-click fix (form fields: reason; user + directory, or choice [+ on_behalf_of])."""
    form = await request.form()
    submitted: dict[str, str] = {}
    for key in FORM_FIELDS:
        got = form.getlist(key)
        if len(got) > 1 or (got and not isinstance(got[0], str)):
            raise PortalError(422, "invalid_input", i18n.gettext("Each field may be sent once, as text."))
        if got:
            submitted[key] = str(got[0])
    agent.fix_kind(runbook)  # unknown fix: 404 before anything else
    unknown = [k for k in dict.fromkeys(form.keys()) if k not in FORM_FIELDS and k not in FORM_EXTRAS]
    if unknown:  # e.g. a misspelt field: refused before anything runs, never ignored
        message = unknown_fields_text(unknown, FORM_FIELDS)
        return _refused(request, user, ctx, client, runbook, submitted, ParameterError(message))
    # a field of the other kind of fix (user= on a printer fix): refused, never dropped (the API's rule);
    # the desk's host forms send an empty on_behalf_of, which is no value
    unused = unused_fields_problem(runbook, submitted)
    if unused is not None:
        return _refused(request, user, ctx, client, runbook, submitted, ParameterError(unused))
    values = {k: v for k, v in submitted.items() if k != "reason"}
    # a second submit of the same form (double click, resend) answers with the first ticket
    tokens = form.getlist("form_token")
    if len(tokens) > 1 or (tokens and not isinstance(tokens[0], str)):
        raise PortalError(422, "invalid_input", i18n.gettext("Each field may be sent once, as text."))
    token, once = (str(tokens[0]) if tokens else None), FormOnce(ctx.firstline.engine)
    key = form_key(user, runbook, submitted)  # the same values again: the first ticket; others: a new request
    attempt: FirstSubmit | None = None
    if token is not None:
        first = await run_in_threadpool(once.claim, key, token)
        if first is not None:
            return RedirectResponse(f"/agent/tickets/{first}", status_code=303)
        attempt = once.first_submit(key, token)
    try:
        # the look-up and the run block (directory, hosts, the wait for the outcome): in a
        # worker thread, never on the event loop, which serves every other request meanwhile
        outcome = await run_in_threadpool(
            _fix_and_run,
            ctx,
            user,
            client,
            runbook,
            values,
            submitted.get("reason", ""),
            attempt.opened if attempt is not None else None,  # the token is spent once the ticket exists
        )
        if attempt is not None:
            await run_in_threadpool(attempt.opened, outcome.ticket_number)
    except BaseException as exc:
        if attempt is not None:
            # refused before a ticket: may be sent again; a ticket already opened keeps it spent
            await run_in_threadpool(attempt.failed)
        if not isinstance(exc, ParameterError | PolicyDenied):
            raise
        return _refused(request, user, ctx, client, runbook, submitted, exc)
    target = f"/agent/tickets/{outcome.ticket_number}"
    secret = agent.temporary_password(outcome.secrets)
    if secret is not None:
        target += "?once=" + oneshot.put(_owner(user), outcome.ticket_number, secret)
    return RedirectResponse(target, status_code=303)


def _fix_and_run(
    ctx: PortalContext,
    user: Principal,
    client: ClientInfo,
    runbook: str,
    values: dict[str, str],
    reason: str,
    opened: Callable[[str], None] | None = None,
) -> RunOutcome:
    """``prepare_fix`` then ``runs.run`` (blocking: the caller runs it in a worker thread)."""
    fix = agent.prepare_fix(
        ctx.firstline, user, runbook, values, reason, client_ip=client.address, user_agent=client.user_agent
    )
    return runs.run(
        ctx,
        fix.runbook,
        fix.params,
        user=user,
        client=client,
        requester=fix.requester,
        channel="portal",
        work_note=fix.work_note,
        reads=fix.reads,
        held=fix.held,
        opened=opened,
    )


def _refused(
    request: Request,
    user: Principal,
    ctx: PortalContext,
    client: ClientInfo,
    runbook: str,
    submitted: dict[str, str],
    exc: Exception,
) -> Response:
    status = 403 if isinstance(exc, PolicyDenied) else 422
    message = i18n.error_text(exc)
    kept = _safe(submitted)
    if agent.FIXES[runbook] == "account" and "user" in kept and "directory" in kept:
        try:
            view = agent.lookup(
                ctx.firstline,
                user,
                kept["directory"],
                kept["user"],
                client_ip=client.address,
                user_agent=client.user_agent,
            )
        except (ParameterError, PolicyDenied, agent.LookupFailed):
            view = None
        if view is not None:
            return render(
                request,
                "agent/account.html",
                {"view": view, "error": message, "reason": kept.get("reason", ""), "failed": runbook},
                status_code=status,
            )
    return _desk(request, user, ctx, fix_error=message, failed=runbook, values=kept, status=status)


def _with_note_i18n(ctx: PortalContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """*items* (ticket rows) with ``resolution_note_i18n``, the runbook's own translations of
    the note (revision 0013), which the ticket rows of ``runner.queries`` do not carry: the
    desk shows the note (and a resolved ticket's message, which is the note) as the
    employee's page does, in the reader's language."""
    ids = [int(item["id"]) for item in items if item.get("resolution_note")]
    found: dict[int, str | None] = {}
    if ids:
        with reading(ctx.firstline.engine) as conn:
            query = select(ticket.c.id, ticket.c.resolution_note_i18n).where(ticket.c.id.in_(ids))
            found = {int(row.id): row.resolution_note_i18n for row in conn.execute(query)}
    return [{**item, "resolution_note_i18n": found.get(int(item["id"]))} for item in items]


@router.get("/agent/tickets/{number}")
def ticket_page(
    request: Request,
    user: Agent,
    ctx: Ctx,
    number: Annotated[str, Path(max_length=16)],
    once: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """A ticket as an agent sees it; with ``once``, the fix's temporary password (one time)."""
    detail = _with_note_i18n(ctx, [agent.ticket_detail(ctx.firstline, user, number)])[0]
    # HEAD (a link checker, a prefetch) gets no body: the password stays for the GET that shows it
    if once and is_head(request):
        return render(request, "agent/ticket.html", {"t": detail, "secret": None, "once_gone": False})
    secret = oneshot.take(once, _owner(user), detail["number"]) if once else None
    # A run still working (a slow host fix, two quick submits of one form): the page reloads
    # itself until the ticket is final (no script; the employee's page does the same without
    # one). Never with a temporary password on it: a reload would no longer show it.
    refresh = REFRESH_SECONDS if detail.get("state") not in FINAL_STATES and secret is None else None
    return render(
        request,
        "agent/ticket.html",
        {"t": detail, "secret": secret, "once_gone": bool(once) and secret is None, "refresh": refresh},
    )


@router.get("/agent/escalated")
def escalated(
    request: Request,
    user: Agent,
    ctx: Ctx,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    """Tickets automation could not resolve, newest first, with everything gathered."""
    page = agent.escalated(ctx.firstline, user, cursor, limit)
    page["items"] = _with_note_i18n(ctx, page["items"])
    return render(request, "agent/escalated.html", {"page": page})
