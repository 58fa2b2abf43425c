"""Forgotten password and locked account, without signing in (pages).

``GET /reset`` and ``GET /unlock``: ask for the login. ``POST`` there queues a code
(``runner.selfservice.SelfService.request_code``) and answers the same way for every
login (unknown, known, disabled, privileged, locked, throttled): ``303`` to the code form
(POST/redirect/GET: reloading the code form sends nothing again), with a short-lived
``fl_ask`` cookie (``__Host-`` prefixed when Secure) that carries the purpose and the name
as typed, so the form is pre-filled and says a code is on its way. Nothing secret is in
the cookie or the URL, and the name is the one typed, never what the directory holds.
``GET /reset/code`` / ``GET /unlock/code``: the code form (never consumes anything).
``POST`` there redeems the code and runs ``password-reset`` (with the new password, not
to be changed again) or ``account-unlock`` on the employee's behalf through
``portal.runs``; no session is created (the user signs in normally afterwards). A form
with an error (wrong code, refused password) answers there; an outcome is POST/redirect/GET
like the request: ``303`` to ``GET /reset/done`` / ``GET /unlock/done`` with a short-lived
``fl_done`` cookie (``__Secure-`` prefixed when Secure, ``Path`` that one page) holding only
the purpose, the ticket id, an expiry and an HMAC over them and this browser's pre-session
id, so a reload or back/forward redeems nothing again and nobody reads another's outcome by
guessing. The page reads the ticket from the ledger; no password or code is in the URL,
the cookie or the page. Without a valid cookie it leads to the code form.

Every form here refuses a field it does not have (``only_fields``: 422 before anything is
asked, looked up or redeemed), since the form parser would drop it silently.

Every page here is ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``
(set for every page by ``portal.security``, and asserted by the tests).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from connectors.password_policy import MESSAGES as POLICY_MESSAGES
from connectors.password_policy import message as policy_message
from portal import i18n, runs
from portal.deps import ClientInfo, PortalContext, client_info, fields_once, portal_context, public
from portal.errors import PortalError
from portal.rendering import render
from portal.security import cookie_flags, cookie_secure
from portal.texts import N_
from runner.auth import DirectoryUnavailable, Principal
from runner.errors import NotFoundError
from runner.formonce import ticket_id_of
from runner.mytickets import outcome
from runner.pow import Challenge
from runner.runs import PROOF_SELFSERVICE, RunOutcome
from runner.selfservice import (
    PURPOSES,
    UNLOCK_SETS_NOTHING_MESSAGE,
    CodeInvalid,
    CodeMalformed,
    PasswordRefused,
    Proof,
    ProofOfWorkRequired,
    SelfService,
    params_for,
)
from runner.texts import localize

router = APIRouter(tags=["self-service"])
Anyone = Annotated[Principal | None, Depends(public)]
Ctx = Annotated[PortalContext, Depends(portal_context)]
Client = Annotated[ClientInfo, Depends(client_info)]

_LOCK = threading.Lock()
# runner texts shown here, marked for the catalogues (tools/portal_catalogues.py)
_RUNNER_TEXTS = (
    N_("This code is not valid (wrong, used or expired). Check it, or ask for a new one."),
    N_(  # runner.selfservice.CODE_MALFORMED
        "A code is %(digits)s digits; what you typed is not. This did not count as a try: "
        "check the code in the e-mail and type it again."
    ),
    N_("Choose a new password."),
    N_("Many requests came from your network. Your browser has to finish a short check before we send a code."),
    N_(
        "If the user name belongs to an account that can use this service, a code is on its way to the "
        "e-mail address on file."
    ),
)


def refusal_text(exc: PasswordRefused, ctx: PortalContext, lang: str) -> str:
    """The connector's reason in the request's language: its stored text translated with its
    own figures (a directory's refusal at write time quotes the directory's minimum), else
    its Dutch text with the policy's figures."""
    translated = localize(str(exc), lang) if lang != "en" else None
    if translated and translated != str(exc):
        return translated
    if lang != "en" and exc.reason in POLICY_MESSAGES:
        rules = selfservice_of(ctx).policy()
        return policy_message(exc.reason, lang, min=rules["min_length"], max=rules["max_length"])
    return i18n.error_text(exc)


def selfservice_of(ctx: PortalContext) -> SelfService:
    """The portal's one ``SelfService`` (made on first use; its background pool lives with the app)."""
    with _LOCK:
        found = ctx.extras.get("selfservice")
        if not isinstance(found, SelfService):
            found = SelfService(ctx.firstline)
            ctx.extras["selfservice"] = found
        return found


def close(ctx: PortalContext) -> None:
    """End the background pool of the portal's ``SelfService`` (app shutdown); a later use makes a new one."""
    with _LOCK:
        found = ctx.extras.pop("selfservice", None)
    if isinstance(found, SelfService):
        found.close()


MAX_LOGIN = 320  # the login fields' max_length


def ask_cookie_name(secure: bool) -> str:
    """The cookie that carries a code request from ``POST /reset`` to ``GET /reset/code``."""
    return "__Host-fl_ask" if secure else "fl_ask"


def _ask_cookie(purpose: str, login: str) -> str:
    typed = base64.urlsafe_b64encode(login.encode()).decode().rstrip("=")
    return f"{purpose}.{typed}"


def _asked(request: Request, purpose: str, ctx: PortalContext) -> str | None:
    """The name typed when a code for *purpose* was asked in this browser (``fl_ask``), or
    None: no request, another purpose, or a value that is not ours."""
    raw = request.cookies.get(ask_cookie_name(cookie_secure(ctx.settings)), "")
    kind, _, typed = raw.partition(".")
    if kind != purpose or not typed or len(typed) > 2 * MAX_LOGIN:
        return None
    try:
        login = base64.urlsafe_b64decode(typed + "=" * (-len(typed) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    if not login.strip() or len(login) > MAX_LOGIN or not login.isprintable():
        return None
    return login


def done_cookie_name(secure: bool) -> str:
    """The cookie that carries an outcome from ``POST /reset/code`` to ``GET /reset/done``
    (``__Secure-``, not ``__Host-``: it is sent to that one page only, not to ``/``)."""
    return "__Secure-fl_done" if secure else "fl_done"


def _done_path(purpose: str) -> str:
    return "/reset/done" if purpose == "reset" else "/unlock/done"


def _done_mac(ctx: PortalContext, browser: str, body: str) -> str:
    key = hmac.new(ctx.settings.audit_secret(), b"firstline-selfservice-done-v1", hashlib.sha256).digest()
    mac = hmac.new(key, f"{body}\0{browser}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _done_cookie(ctx: PortalContext, browser: str, purpose: str, ticket_id: int, expires: int) -> str:
    body = f"{purpose}.{ticket_id}.{expires}"
    return f"{body}.{_done_mac(ctx, browser, body)}"


def _done_ticket(request: Request, purpose: str, ctx: PortalContext) -> int | None:
    """The ticket id this browser redeemed a *purpose* code for (``fl_done``), or None: no
    cookie, another purpose, expired, or not signed for this browser's pre-session id."""
    raw = request.cookies.get(done_cookie_name(cookie_secure(ctx.settings)), "")
    browser = str(request.state.pre_session or "")
    parts = raw.split(".")
    if len(parts) != 4 or len(raw) > 200 or not browser:
        return None
    kind, ticket, expires, mac = parts
    ticket_ok = ticket.isascii() and ticket.isdigit()  # "²".isdigit() is true, and int() refuses it
    expires_ok = expires.isascii() and expires.isdigit()
    if kind != purpose or not ticket_ok or not expires_ok or int(expires) < time.time():
        return None
    if not hmac.compare_digest(mac.encode(), _done_mac(ctx, browser, f"{kind}.{ticket}.{expires}").encode()):
        return None
    return int(ticket)


def _base(purpose: str, ctx: PortalContext) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "action": "/reset" if purpose == "reset" else "/unlock",
        "code_action": "/reset/code" if purpose == "reset" else "/unlock/code",
        "policy": selfservice_of(ctx).policy(),
        "error": None,
        "login": "",
    }


def _request_page(
    request: Request,
    purpose: str,
    ctx: PortalContext,
    error: str | None = None,
    status: int = 200,
    challenge: Challenge | None = None,
    client: ClientInfo | None = None,
) -> Response:
    if challenge is None and client is not None:
        challenge = selfservice_of(ctx).challenge_for(client.address)
    return render(
        request,
        "selfservice/request.html",
        {**_base(purpose, ctx), "error": error, "challenge": challenge},
        status_code=status,
    )


def _code_page(
    request: Request,
    purpose: str,
    ctx: PortalContext,
    *,
    sent: bool,
    error: str | None = None,
    status: int = 200,
    login: str = "",
) -> Response:
    context = {**_base(purpose, ctx), "sent": sent, "error": error, "login": login}
    return render(request, "selfservice/code.html", context, status_code=status)


def _ask(
    request: Request,
    purpose: str,
    ctx: PortalContext,
    client: ClientInfo,
    login: str,
    pow_challenge: str,
    pow_nonce: str,
) -> Response:
    if not login.strip():
        return _request_page(request, purpose, ctx, i18n.gettext("Enter your user name."), 422, client=client)
    try:
        selfservice_of(ctx).request_code(
            login,
            purpose,
            client_ip=client.address,
            user_agent=client.user_agent,
            pow_challenge=pow_challenge or None,
            pow_nonce=pow_nonce or None,
        )
    except ProofOfWorkRequired as exc:  # depends on the address only: same for every login
        return _request_page(request, purpose, ctx, i18n.error_text(exc), 429, challenge=exc.challenge)
    # POST/redirect/GET: the same answer for every login (the cookie holds what was typed)
    secure = cookie_secure(ctx.settings)
    response = RedirectResponse("/reset/code" if purpose == "reset" else "/unlock/code", status_code=303)
    max_age = ctx.settings.reset_code_minutes * 60
    response.headers.append(
        "set-cookie", f"{ask_cookie_name(secure)}={_ask_cookie(purpose, login)}; {cookie_flags(secure, max_age)}"
    )
    return response


def _redeem(
    request: Request,
    purpose: str,
    ctx: PortalContext,
    client: ClientInfo,
    login: str,
    code: str,
    new_password: str | None,
    again: str | None,
) -> Response:
    if purpose == "reset" and not new_password:  # before the code is looked at: no try spent
        msg = i18n.gettext("Type the new password twice.")
        return _code_page(request, purpose, ctx, sent=False, error=msg, status=422, login=login)
    if purpose == "reset" and (new_password or "") != (again or ""):
        msg = i18n.gettext("The two new passwords are not the same. Type the same password twice.")
        return _code_page(request, purpose, ctx, sent=False, error=msg, status=422, login=login)

    def start(proof: Proof) -> RunOutcome:
        return runs.run(
            ctx,
            proof.runbook,
            params_for(proof, new_password),
            user=proof.principal(),
            client=client,
            channel="portal",
            proof=PROOF_SELFSERVICE,  # the code was redeemed just before: the only place this is set
        )

    try:  # a run refused before its ticket (busy, not vetted) gives the code back
        result = selfservice_of(ctx).redeem_and_start(
            login,
            code,
            purpose,
            start,
            new_password=new_password,
            client_ip=client.address,
            user_agent=client.user_agent,
        )
    except CodeMalformed as exc:  # not a code's form: refused before the code was looked at
        return _code_page(request, purpose, ctx, sent=False, error=i18n.error_text(exc), status=422, login=login)
    except CodeInvalid as exc:
        return _code_page(request, purpose, ctx, sent=False, error=i18n.error_text(exc), status=400, login=login)
    except PasswordRefused as exc:
        error = refusal_text(exc, ctx, request.state.lang)
        return _code_page(request, purpose, ctx, sent=False, error=error, status=422, login=login)
    except DirectoryUnavailable as exc:
        raise PortalError(503, "directory_unavailable", i18n.error_text(exc)) from None
    # POST/redirect/GET: a reload of the outcome redeems nothing again (the cookie binds the
    # ticket to this browser; nothing secret is in it or in the address)
    secure = cookie_secure(ctx.settings)
    max_age = ctx.settings.reset_code_minutes * 60
    done = _done_cookie(
        ctx, str(request.state.pre_session), purpose, ticket_id_of(result.ticket_number), int(time.time()) + max_age
    )
    response = RedirectResponse(_done_path(purpose), status_code=303)
    response.headers.append(
        "set-cookie", f"{done_cookie_name(secure)}={done}; {cookie_flags(secure, max_age, _done_path(purpose))}"
    )
    asked = ask_cookie_name(secure)
    if asked in request.cookies:  # the request is done: the form need not be pre-filled any more
        response.headers.append("set-cookie", f"{asked}=; {cookie_flags(secure, 0)}")
    return response


def _done_page(request: Request, purpose: str, ctx: PortalContext) -> Response:
    """The outcome of the code this browser redeemed, as the ledger has it now (the same
    page on every reload); without a valid ``fl_done`` cookie, the code form."""
    ticket_id = _done_ticket(request, purpose, ctx)
    lang = request.state.lang
    result = None
    if ticket_id is not None:
        try:
            result = selfservice_of(ctx).outcome(ticket_id, purpose, lang)
        except NotFoundError:
            result = None
    if result is None:
        return RedirectResponse("/reset/code" if purpose == "reset" else "/unlock/code", status_code=303)
    # what the ticket says, never a fixed success text: an unlock of an account that was not
    # locked changed nothing, and a confirmation mail is claimed only when one was sent
    return render(
        request,
        "selfservice/done.html",
        {
            "purpose": purpose,
            "ticket": result.ticket,
            "state": result.state,
            "outcome": outcome(
                result.state,
                None,
                lang,
                effect=None if result.state != "resolved" else "changed" if result.changed else "unchanged",
            ),
            "message": result.message,
            "note": result.note,
            "changed": result.changed,
            "notified": result.notified,
        },
    )


@router.get("/reset")
def reset_page(request: Request, _user: Anyone, ctx: Ctx, client: Client) -> Response:
    """Forgot your password? Ask for a code (with a puzzle when this address asked often)."""
    return _request_page(request, "reset", ctx, client=client)


@router.get("/unlock")
def unlock_page(request: Request, _user: Anyone, ctx: Ctx, client: Client) -> Response:
    """Locked out? Ask for a code."""
    return _request_page(request, "unlock", ctx, client=client)


PowChallenge = Annotated[str, Form(max_length=128)]
PowNonce = Annotated[str, Form(max_length=32)]


def only_fields(*names: str) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """Dependency of a self-service form: 422 when the form carries a field it does not have
    (besides ``csrf_token``), before anything is asked, looked up or redeemed. The form parser
    drops such a field silently: ``new_password`` sent to ``/unlock/code`` unlocked the account
    with its old password and answered as if the new one had been set."""
    accepted = frozenset({"csrf_token", *names})

    async def check(request: Request) -> None:
        extra = set(await request.form()) - accepted  # parsed once: the Form() parameters reuse it
        if not extra:
            return
        if extra <= {"new_password", "new_password_again"}:  # a password for an unlock code
            raise PortalError(422, "invalid_input", i18n.gettext(UNLOCK_SETS_NOTHING_MESSAGE))
        message = i18n.gettext(
            "This form was sent with a field it does not have, so nothing was done. "
            "Reload the page and fill it in again."
        )
        raise PortalError(422, "invalid_input", message)

    return check


_ASK_FIELDS = Depends(only_fields("login", "pow_challenge", "pow_nonce"))


@router.post("/reset", dependencies=[Depends(fields_once), _ASK_FIELDS])
def reset_request(
    request: Request,
    _user: Anyone,
    ctx: Ctx,
    client: Client,
    login: Annotated[str, Form(max_length=320)] = "",
    pow_challenge: PowChallenge = "",
    pow_nonce: PowNonce = "",
) -> Response:
    return _ask(request, "reset", ctx, client, login, pow_challenge, pow_nonce)


@router.post("/unlock", dependencies=[Depends(fields_once), _ASK_FIELDS])
def unlock_request(
    request: Request,
    _user: Anyone,
    ctx: Ctx,
    client: Client,
    login: Annotated[str, Form(max_length=320)] = "",
    pow_challenge: PowChallenge = "",
    pow_nonce: PowNonce = "",
) -> Response:
    return _ask(request, "unlock", ctx, client, login, pow_challenge, pow_nonce)


@router.get("/reset/code")
def reset_code_page(request: Request, _user: Anyone, ctx: Ctx) -> Response:
    """The code form; opening it (or a mail scanner fetching it) changes nothing. After a
    request in this browser it says a code is on its way and holds the name typed."""
    login = _asked(request, "reset", ctx)
    return _code_page(request, "reset", ctx, sent=login is not None, login=login or "")


@router.get("/unlock/code")
def unlock_code_page(request: Request, _user: Anyone, ctx: Ctx) -> Response:
    login = _asked(request, "unlock", ctx)
    return _code_page(request, "unlock", ctx, sent=login is not None, login=login or "")


@router.get("/reset/done")
def reset_done_page(request: Request, _user: Anyone, ctx: Ctx) -> Response:
    """The outcome of a redeemed reset code (after the 303); reloading it changes nothing."""
    return _done_page(request, "reset", ctx)


@router.get("/unlock/done")
def unlock_done_page(request: Request, _user: Anyone, ctx: Ctx) -> Response:
    """The outcome of a redeemed unlock code (after the 303); reloading it changes nothing."""
    return _done_page(request, "unlock", ctx)


@router.post(
    "/reset/code",
    dependencies=[Depends(fields_once), Depends(only_fields("login", "code", "new_password", "new_password_again"))],
)
def reset_confirm(
    request: Request,
    _user: Anyone,
    ctx: Ctx,
    client: Client,
    login: Annotated[str, Form(max_length=320)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
    new_password_again: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    return _redeem(request, "reset", ctx, client, login, code, new_password, new_password_again)


@router.post("/unlock/code", dependencies=[Depends(fields_once), Depends(only_fields("login", "code"))])
def unlock_confirm(
    request: Request,
    _user: Anyone,
    ctx: Ctx,
    client: Client,
    login: Annotated[str, Form(max_length=320)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    return _redeem(request, "unlock", ctx, client, login, code, None, None)


__all__ = ["PURPOSES", "router", "selfservice_of"]
