"""Home ("What's wrong?"): the fixes the signed-in person may run, search, and one form per fix.

``GET /?q=...`` lists them (``runner.fixes.catalogue``; the search is server-side and
works without JavaScript). ``GET /fix/{name}`` shows one form; ``POST /fix/{name}`` runs
it through ``portal.runs`` and redirects to the ticket page. An employee's target is
always themself: the form has no account or directory field, and a submitted one is
dropped here and refused by the runner anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from portal import i18n, runs
from portal.deps import ClientInfo, PortalContext, allow, client_info, portal_context
from portal.errors import PortalError, unknown_fields_text
from portal.rendering import fragment, render
from runner import fixes
from runner.afterrun import PASSWORD_ACTIONS
from runner.auth import Principal, require_changed_password
from runner.errors import FirstlineError, ParameterError, PolicyDenied
from runner.formonce import FirstSubmit, FormOnce

router = APIRouter(tags=["fixes"])
Employee = Annotated[Principal, Depends(allow("employee"))]
# a session with a temporary password reaches these only to change it (checked per fix below)
Temporary = Annotated[Principal, Depends(allow("employee", temporary=True))]
Ctx = Annotated[PortalContext, Depends(portal_context)]


def home_page(request: Request, user: Principal, q: str = "") -> Response:
    """The catalogue page (called by ``portal.routes.pages.home``)."""
    ctx: PortalContext = request.app.state.portal
    query = q.strip()[: fixes.MAX_QUERY]
    entries = fixes.catalogue(ctx.firstline, user.roles, request.state.lang, query or None)
    # the list is the same for everyone with these roles, language and search: rendered once
    # (entries are cached objects, rebuilt when a runbook, the lock or the inventory changes)
    listing = fragment(request, "fixes/_catalogue.html", tuple(id(e) for e in entries), {"entries": entries}, entries)
    return render(request, "fixes/home.html", {"catalogue": listing, "q": query, "open": None, "error": None})


def _entry(ctx: PortalContext, user: Principal, name: str, lang: str) -> fixes.Entry:
    entry = fixes.describe(ctx.firstline, name[:64], user.roles, lang)
    if entry is None:
        raise PortalError(404, "not_found", i18n.gettext("There is no fix with that name that you may run."))
    return entry


@router.get("/fix/{name}")
def fix_page(request: Request, user: Temporary, ctx: Ctx, name: str) -> Response:
    require_changed_password(user, name)
    entry = _entry(ctx, user, name, request.state.lang)
    # signed in with a temporary password, the person is sent here: the page says why
    return render(
        request, "fixes/fix.html", {"entry": entry, "error": None, "values": {}, "temporary": user.must_change}
    )


@router.post("/fix/{name}")
async def fix_run(
    request: Request, user: Temporary, ctx: Ctx, client: Annotated[ClientInfo, Depends(client_info)], name: str
) -> Response:
    require_changed_password(user, name)
    entry = _entry(ctx, user, name, request.state.lang)
    form = await request.form()
    submitted: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        if len(values) != 1 or not isinstance(values[0], str):
            raise PortalError(422, "invalid_input", i18n.gettext("Each field may be sent once, as text."))
        submitted[key] = values[0]
    taken = [f.name for f in entry.fields] + [f"{f.name}_again" for f in entry.fields if f.confirm]
    unknown = [k for k in submitted if k not in taken and k not in ("csrf_token", "form_token")]
    if unknown:  # e.g. a misspelt field: refused before anything runs, never ignored
        return render(
            request,
            "fixes/fix.html",
            {"entry": entry, "error": unknown_fields_text(unknown, taken), "values": {}},
            status_code=422,
        )
    try:
        params = fixes.form_values(entry, submitted)
    except ParameterError as exc:  # e.g. the new password typed differently twice: nothing ran
        kept = {f.name: submitted[f.name] for f in entry.fields if f.input != "password" and f.name in submitted}
        return render(
            request, "fixes/fix.html", {"entry": entry, "error": i18n.error_text(exc), "values": kept}, status_code=422
        )
    # a second submit of the same form (double click, resend) answers with the first ticket
    secret_fields = {f.name for f in entry.fields if f.input == "password"}
    plain = {k: v for k, v in params.items() if k not in secret_fields}
    once, token, key = FormOnce(ctx.firstline.engine), submitted.get("form_token"), form_key(user, name, plain)
    attempt: FirstSubmit | None = None
    if token is not None:
        first = await run_in_threadpool(once.claim, key, token)
        if first is not None:
            return RedirectResponse(f"/me/tickets/{first}", status_code=303)
        attempt = once.first_submit(key, token)
    opened = attempt.opened if attempt is not None else None  # the token is spent once the ticket exists
    try:
        waits = _hands_over_secrets(ctx, name) or _sets_a_password(ctx, name)
        if not waits and getattr(runs, "submit", None) is not None:
            # the run seam: queue it and show the ticket page at once; its steps appear as they run
            queued = await run_in_threadpool(
                runs.submit, ctx, name, params, user=user, client=client, channel="portal", opened=opened
            )  # type: ignore[attr-defined,unused-ignore]
            if attempt is not None:
                await run_in_threadpool(attempt.opened, queued.ticket_number)
            return RedirectResponse(f"/me/tickets/{queued.ticket_number}", status_code=303)
        outcome = await _run_in_thread(ctx, name, params, user, client, opened)
        if attempt is not None:
            await run_in_threadpool(attempt.opened, outcome.ticket_number)
    except BaseException as exc:
        if attempt is not None:
            # refused before a ticket: may be sent again; a ticket already opened keeps it spent
            await run_in_threadpool(attempt.failed)
        if not isinstance(exc, ParameterError | PolicyDenied):
            raise
        shown = {k: v for k, v in params.items() if k not in {f.name for f in entry.fields if f.input == "password"}}
        status = 403 if isinstance(exc, PolicyDenied) else 422
        return render(
            request,
            "fixes/fix.html",
            {"entry": entry, "error": i18n.error_text(exc), "values": shown},
            status_code=status,
        )
    if outcome.secrets:  # e.g. a generated temporary password: shown on this answer only, never stored
        return render(
            request, "fixes/secret.html", {"entry": entry, "ticket": outcome.ticket_number, "secrets": outcome.secrets}
        )
    if outcome.state == "resolved" and _sets_a_password(ctx, name):
        # the new password ended this session: sign in with it, then see the ticket
        return RedirectResponse(f"/signin?changed=true&next=/me/tickets/{outcome.ticket_number}", status_code=303)
    return RedirectResponse(f"/me/tickets/{outcome.ticket_number}", status_code=303)


def session_key(user: Principal) -> str:
    """What binds a one-time form token to the signed-in session (``runner.formonce``)."""
    return f"{user.via}:{user.session_id}:{user.account}"


def form_key(user: Principal, runbook: str, fields: Mapping[str, Any]) -> str:
    """``session_key`` bound to what the form asks too: the runbook and the plain field values
    (never a password field's). The same form sent again with the same values answers with
    the first ticket; sent with other values (an edited resend) it is another request, which
    used to land on the first one's ticket — another account's — without a word."""
    raw = json.dumps([runbook, sorted((k, str(v)) for k, v in fields.items())], ensure_ascii=False)
    return f"{session_key(user)}:{hashlib.sha256(raw.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"


def _sets_a_password(ctx: PortalContext, name: str) -> bool:
    """Whether a run of *name* sets a password: when it succeeds, every session of the account
    ends (``runner.afterrun``), this one too, so the answer waits for the outcome and sends
    the person to the sign-in page saying so (not to a ticket page that then asks to sign in
    without a word why)."""
    rb = ctx.firstline.runbook(name)
    return any(step.spec.action in PASSWORD_ACTIONS for step in rb.steps)


def _hands_over_secrets(ctx: PortalContext, name: str) -> bool:
    """Whether a run of *name* may hand a secret to the requester once (a generated temporary
    password): then the answer waits for the run, as the secret is shown on it only."""
    rb = ctx.firstline.runbook(name)
    return any(step.action.secret_outputs for step in rb.steps)


async def _run_in_thread(
    ctx: PortalContext,
    name: str,
    params: dict[str, Any],
    user: Principal,
    client: ClientInfo,
    opened: Callable[[str], None] | None = None,
) -> Any:
    return await run_in_threadpool(
        runs.run, ctx, name, params, user=user, client=client, channel="portal", opened=opened
    )


__all__ = ["FirstlineError", "home_page", "router"]
