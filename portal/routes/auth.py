"""Sign-in, sign-out and the language switch (pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from portal import i18n
from portal.deps import ClientInfo, PortalContext, client_info, fields_once, portal_context, public
from portal.errors import PASSWORD_CHANGE_PAGE, PortalError, throttled_text
from portal.rendering import render
from portal.security import cookie_flags, cookie_secure, session_cookie_name
from runner.auth import DirectoryUnavailable, Principal, SignInFailed, SignInThrottled

router = APIRouter(tags=["sign-in"])
MUST_CHANGE_PAGE = PASSWORD_CHANGE_PAGE  # where a person whose password must change goes after sign-in


def safe_next(value: str | None) -> str:
    """A local path to go to after a form: absolute path on this site, else ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 512:
        return "/"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "/"
    return value


@router.get("/signin")
def signin_page(
    request: Request,
    user: Annotated[Principal | None, Depends(public)],
    next: str = "/",
    changed: bool = False,
    ended: bool = False,
) -> Response:
    """The sign-in form; ``changed``: after the person's own password change (the portal's
    redirect), which ended their sessions — the page says so (a fixed sentence, nothing more);
    ``ended``: a request came with a session that had ended (``portal.errors``), so what it
    sent was not done — the page says that too."""
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(
        request,
        "signin.html",
        {"next": safe_next(next), "username": "", "error": None, "changed": changed, "ended": ended},
    )


MAX_NAME = 320  # an e-mail address (RFC 5321: 64 + 1 + 255)
MAX_PASSWORD = 1024
MAX_NEXT = 512


ONCE_FIELDS = ("username", "password", "next")


async def repeated_fields(request: Request) -> str | None:
    """When the sign-in form sent one of its fields more than once (the form parser would keep
    the last one: which account was meant?), the first name given ("" if none), else None."""
    form = await request.form()  # parsed once per request (the Form() parameters reuse it)
    if not any(len(form.getlist(name)) > 1 for name in ONCE_FIELDS):
        return None
    names = form.getlist("username")
    return names[0] if names and isinstance(names[0], str) else ""


@router.post("/signin")
def signin_submit(
    request: Request,
    _user: Annotated[Principal | None, Depends(public)],
    ctx: Annotated[PortalContext, Depends(portal_context)],
    client: Annotated[ClientInfo, Depends(client_info)],
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    repeated: Annotated[str | None, Depends(repeated_fields)] = None,
) -> Response:
    if repeated is not None:  # a malformed sign-in (as with an empty password): refused, throttled and
        username, password = repeated, ""  # audited like any other, the same answer for every account
    # Lengths are checked here, not by the form parser, so an oversized field gets the sign-in
    # form again with a sentence (the request body as a whole is capped by max_body_bytes).
    target = safe_next(next) if len(next) <= MAX_NEXT else "/"
    if len(username) > MAX_NAME:
        message = i18n.gettext("The sign-in name is too long: at most %(n)s characters.") % {"n": MAX_NAME}
        return _form_again(request, "", target, 422, message)
    if len(password) > MAX_PASSWORD:
        message = i18n.gettext("The password is too long: at most %(n)s characters.") % {"n": MAX_PASSWORD}
        return _form_again(request, username, target, 422, message)
    try:
        who, token = ctx.auth.sign_in(username, password, client_ip=client.address, user_agent=client.user_agent)
    except SignInThrottled as exc:
        text = throttled_text(exc)
        return _form_again(request, username, target, 429, text, {"Retry-After": str(exc.retry_after)})
    except SignInFailed as exc:
        return _form_again(request, username, target, 401, i18n.error_text(exc))
    except DirectoryUnavailable as exc:
        return _form_again(request, username, target, 503, i18n.error_text(exc))
    secure = cookie_secure(ctx.settings)
    if who.must_change:  # a temporary password (or an expired one in its grace): change it first
        target = MUST_CHANGE_PAGE
    response = RedirectResponse(target, status_code=303)
    max_age = ctx.settings.session_max_hours * 3600
    response.headers.append("set-cookie", f"{session_cookie_name(secure)}={token}; {cookie_flags(secure, max_age)}")
    return response


def _form_again(
    request: Request, username: str, target: str, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    shown = username if len(username) <= 64 and username.isprintable() else ""
    return render(
        request,
        "signin.html",
        {"next": target, "username": shown, "error": message},
        status_code=status,
        headers=headers,
    )


@router.post("/signout")
def signout(
    request: Request,
    _user: Annotated[Principal | None, Depends(public)],
    ctx: Annotated[PortalContext, Depends(portal_context)],
    client: Annotated[ClientInfo, Depends(client_info)],
) -> Response:
    ctx.auth.sign_out(request.state.session_token, client_ip=client.address, user_agent=client.user_agent)
    secure = cookie_secure(ctx.settings)
    response = RedirectResponse("/signin", status_code=303)
    response.headers.append("set-cookie", f"{session_cookie_name(secure)}=; {cookie_flags(secure, 0)}")
    return response


@router.post("/lang", dependencies=[Depends(fields_once)])
def switch_language(
    _user: Annotated[Principal | None, Depends(public)],
    ctx: Annotated[PortalContext, Depends(portal_context)],
    lang: Annotated[str, Form()] = "",
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    # The form offers the codes of LANGS; the code is read without regard to case (BCP 47),
    # anything else ("nl-NL", "", "xx", a long or non-ASCII value) is refused and the cookie
    # is left as it was: a switch that silently did nothing looked like a broken page.
    chosen = lang.lower() if lang.isascii() else ""
    if chosen not in i18n.LANGS:
        names = ", ".join(f"{i18n.LANG_NAMES[code]} ({code})" for code in i18n.LANGS)
        message = i18n.gettext("That is not a language this portal offers; choose one of: %(names)s.")
        raise PortalError(422, "invalid_input", message % {"names": names})
    response = RedirectResponse(safe_next(next), status_code=303)
    secure = cookie_secure(ctx.settings)
    response.headers.append("set-cookie", f"{i18n.LANG_COOKIE}={chosen}; {cookie_flags(secure, 365 * 24 * 3600)}")
    return response
