"""The one place that turns errors into HTTP answers.

Under ``/api`` (or when the client asks for JSON only) the body is
``{"error": {"code": "...", "message": "..."}}``; otherwise a page (``error.html``) in
the request's language. A 401 on a page is a redirect to the sign-in page. Messages are
the runner's plain-language texts or fixed texts here — never a traceback, a library's
message or the value that was refused.

Mapping (runner/errors.py, runner/auth.py):

=====================  ======  ===================
error                  status  code
=====================  ======  ===================
PortalError            its own its own
SignInFailed           401     signin_failed
SignInThrottled        429     throttled (+ Retry-After)
DirectoryUnavailable   503     directory_unavailable
LookupFailed           503     directory_unavailable
PasswordChangeRequired 403     password_change_required (a page: redirect to the change page)
PolicyDenied           403     forbidden
NotFoundError          404     not_found
ParameterError         422     invalid_input
NotVetted              409     not_vetted
RunbookError           409     runbook_invalid (the runbook does not load; its file:line problems in the log)
QueueFull              503     busy (+ Retry-After; no ticket was written)
LedgerError            503     unavailable
ConfigError / other    500     internal_error (details only in the log)
request validation     422     invalid_input (names the field, never echoes the value)
=====================  ======  ===================

An unknown field (every JSON body model forbids extras: ``portal.api.StrictBody``; the fix
forms check their fields with ``unknown_fields_text``) is refused with 422 before anything
runs. Its name is shown when it is a near miss of a field of the request ("userr: is not a
field of this request (did you mean user?)"), else as ``?`` (a key the client chose may be
a secret typed in the wrong place); the answer then lists the fields the request takes.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal import i18n, validation
from runner.agent import LookupFailed
from runner.auth import DirectoryUnavailable, PasswordChangeRequired, SignInFailed, SignInThrottled
from runner.dispatch import QueueFull
from runner.errors import (
    ConfigError,
    FirstlineError,
    LedgerError,
    NotFoundError,
    NotVetted,
    ParameterError,
    PolicyDenied,
    RunbookError,
)
from runner.oplog import get_logger

INTERNAL = "Something went wrong on our side. It has been logged; please try again later."
NOT_RUNNABLE = "This fix is not approved in its current form; the service desk has been told."


class PortalError(Exception):
    """An HTTP-level refusal raised by portal code: status, a short code, a plain message."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


PASSWORD_CHANGE_REQUIRED = "password_change_required"  # noqa: S105 - an error code, not a secret
PASSWORD_CHANGE_PAGE = "/fix/password-change"  # noqa: S105 - where a session with a temporary password is sent


def _page_for(request: Request) -> str:
    """The nearest page at or above *request*'s path that answers GET (``/agent/fixes/x`` →
    ``/agent``; ``/fix/x`` → itself), ``/`` when none: where to come back after signing in."""
    from portal.security import RouteTable  # late: security imports this module

    table = getattr(request.app.state, "route_table", None)
    path = request.url.path
    while isinstance(table, RouteTable) and path not in ("", "/"):
        if table.allowed("GET", path) is None:
            return path
        path = path.rsplit("/", 1)[0]
    return "/"


def wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or path in ("/api", "/metrics"):  # /metrics: for scrapers, never a page
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(
    request: Request, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The JSON or HTML answer for one error (used by the handlers and the middleware)."""
    if wants_json(request):
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=dict(headers or {})
        )
    if code == PASSWORD_CHANGE_REQUIRED:  # a page: straight to where the password is changed
        return RedirectResponse(PASSWORD_CHANGE_PAGE, status_code=303)
    if status == 401:
        target = request.url.path
        if request.method in ("GET", "HEAD"):
            if request.url.query:
                target += "?" + request.url.query
        else:
            target = _page_for(request)  # a form's address takes POST only: back to its page
        # a session cookie that no longer counts: the session ended (idle, expired, signed out
        # elsewhere) and whatever was sent with it was not done; the sign-in page says so
        sent = request.method not in ("GET", "HEAD")
        ended = "&ended=true" if sent and request.state._state.get("session_token") else ""
        return RedirectResponse(f"/signin?next={quote(target, safe='')}{ended}", status_code=303)
    from portal.rendering import render  # late: rendering imports deps, which import this module

    return render(
        request,
        "error.html",
        {"status": status, "code": code, "message": message},
        status_code=status,
        headers=headers,
    )


def _translate_runner_error(exc: FirstlineError) -> tuple[int, str, str, dict[str, str]]:
    if isinstance(exc, SignInThrottled):
        return 429, "throttled", str(exc), {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, SignInFailed):
        return 401, "signin_failed", str(exc), {}
    if isinstance(exc, DirectoryUnavailable):
        return 503, "directory_unavailable", str(exc), {}
    if isinstance(exc, LookupFailed):
        return 503, "directory_unavailable", str(exc), {}
    if isinstance(exc, PasswordChangeRequired):
        return 403, PASSWORD_CHANGE_REQUIRED, str(exc), {}
    if isinstance(exc, PolicyDenied):
        return 403, "forbidden", str(exc), {}
    if isinstance(exc, NotFoundError):
        return 404, "not_found", str(exc), {}
    if isinstance(exc, ParameterError):
        return 422, "invalid_input", str(exc), {}
    if isinstance(exc, NotVetted):
        return 409, "not_vetted", NOT_RUNNABLE, {}
    if isinstance(exc, RunbookError):  # the runbook on disk does not load (e.g. new code not yet deployed)
        get_logger().error("portal.runbook_invalid", problems=exc.problems[:20])
        return 409, "runbook_invalid", NOT_RUNNABLE, {}
    if isinstance(exc, QueueFull):  # every run worker busy and the queue full: nothing was started
        return 503, "busy", str(exc), {"Retry-After": "30"}
    if isinstance(exc, LedgerError):
        return 503, "unavailable", "The ticket store is not available right now. Try again later.", {}
    if isinstance(exc, ConfigError):
        get_logger().error("portal.config_error", error=str(exc))
        return 500, "internal_error", INTERNAL, {}
    get_logger().error("portal.runner_error", error_type=type(exc).__name__)
    return 500, "internal_error", INTERNAL, {}


def declared_names(app: Any) -> frozenset[str]:
    """Every field and parameter name the app declares (its OpenAPI document), cached."""
    names = getattr(app.state, "declared_names", None)
    if names is None:
        found: set[str] = set()
        schema = app.openapi()
        for component in schema.get("components", {}).get("schemas", {}).values():
            found.update(component.get("properties", {}))
        for methods in schema.get("paths", {}).values():
            for op in methods.values():
                found.update(p.get("name", "") for p in op.get("parameters", []))
        names = frozenset(found)
        app.state.declared_names = names
    return frozenset(names)


_SOURCES = ("body", "query", "path", "form", "header", "cookie")


def _shown(where: Sequence[Any], declared: frozenset[str]) -> str | None:
    """A location fit to show: declared field names and list indexes, ``?`` for any other part
    (a key the client chose); None for the request as a whole."""
    return ".".join(str(p) if isinstance(p, int) or p in declared else "?" for p in where) or None


def _validation_message(exc: RequestValidationError, declared: frozenset[str], accepted: Sequence[str] = ()) -> str:
    """Which fields are wrong and why, in the request's language (``portal.validation``: a
    template per pydantic error type, never pydantic's English text), and never the value
    sent (a password typed into the wrong field or sent as a key is not shown back): a
    location part that is not a declared field name or a list index (for example a key the
    client chose) is shown as ``?``; an unknown key is named only as a near miss of one of
    *accepted* (``unknown_fields_text``). A value that matched no member of a union (one
    error per member) is one sentence naming what it may be."""
    parts: list[str] = []
    unknown: list[str] = []
    errors = list(exc.errors()[:30])
    i = 0
    while i < len(errors):
        err, kind = errors[i], str(errors[i].get("type", ""))
        where = [p for p in err.get("loc", ()) if p not in _SOURCES]
        if kind == "extra_forbidden" and len(where) == 1 and isinstance(where[0], str):
            unknown.append(where[0])
            i += 1
            continue
        group = [err]
        if where and isinstance(where[-1], str) and where[-1] in validation.UNION_TAGS:
            head = err.get("loc", ())[:-1]
            while i + len(group) < len(errors) and errors[i + len(group)].get("loc", ())[:-1] == head:
                group.append(errors[i + len(group)])
            if len(group) > 1:
                where = where[:-1]  # the union member's tag names no field
        shown = None if kind == "json_invalid" else _shown(where, declared)
        union = validation.union_text([str(e.get("type", "")) for e in group], shown) if len(group) > 1 else None
        for e in group if union is None else []:
            text = validation.rule_text(str(e.get("type", "")), e.get("ctx"), shown)
            if text not in parts:
                parts.append(text)
        if union is not None and union not in parts:
            parts.append(union)
        i += len(group)
    if unknown:
        parts.insert(0, unknown_fields_text(unknown, accepted or sorted(declared)))
    return "; ".join(parts[:5]) or i18n.gettext("The request is not valid.")


def unknown_fields_text(unknown: Sequence[str], accepted: Sequence[str]) -> str:
    """The refusal of fields a request does not take, in the request's language: each named
    only when it is a near miss of an *accepted* field (else ``?``), then the fields taken."""
    parts = []
    for name in unknown:
        near = difflib.get_close_matches(name, list(accepted), n=1, cutoff=0.75) if len(name) <= 64 else []
        if near:
            parts.append(
                f"{name}: "
                + i18n.gettext("is not a field of this request (did you mean %(field)s?)") % {"field": near[0]}
            )
        else:
            unnamed = "?: " + i18n.gettext("is not a field of this request")
            if unnamed not in parts:  # once: 6,000 unknown keys made the same sentence 29 times
                parts.append(unnamed)
    if accepted and len(accepted) <= 40:
        parts.append(i18n.gettext("the fields it takes: %(fields)s") % {"fields": ", ".join(accepted)})
    return "; ".join(parts)


def body_fields(request: Request) -> list[str]:
    """The field names of the JSON body model of the route that took *request* (else none)."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    fields = getattr(model, "model_fields", None)
    return list(fields) if isinstance(fields, dict) else []


def throttled_text(exc: SignInThrottled) -> str:
    """The sign-in throttle's sentence in the request's language: the wait in whole minutes
    (at least 1), from ``exc.retry_after`` seconds; for the API error and the sign-in form."""
    minutes = max(1, (exc.retry_after + 59) // 60)
    text: str = i18n.ngettext(
        "Too many failed sign-ins. Try again in %(minutes)s minute.",
        "Too many failed sign-ins. Try again in %(minutes)s minutes.",
        minutes,
    ) % {"minutes": minutes}
    return text


def install(app: FastAPI) -> None:
    """Register the handlers on *app* (called by ``create_app``)."""

    async def portal_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PortalError)
        return error_response(request, exc.status, exc.code, exc.message, exc.headers)

    async def runner_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FirstlineError)
        status, code, message, headers = _translate_runner_error(exc)
        if isinstance(exc, SignInThrottled):
            text = throttled_text(exc)
        else:
            text = i18n.error_text(exc) if message == str(exc) else i18n.gettext(message)
        return error_response(request, status, code, text, headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message = _validation_message(exc, declared_names(request.app), body_fields(request))
        return error_response(request, 422, "invalid_input", message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}
        texts = {
            404: "There is no page at this address.",
            405: "This address does not accept that kind of request.",
            413: "The request is too large.",
            400: "The request could not be read.",
        }
        status = exc.status_code
        message = i18n.gettext(texts.get(status, "The request could not be handled."))
        if status == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's words for a JSON body json.loads gave up on with other than a syntax
            # error (a syntax error is a 422 naming where): the only such bodies that get this
            # far are a number past Python's 4300-digit limit and a nesting it cannot recurse into
            message = i18n.gettext(
                "The request body could not be read as JSON: a number has more than 4300 digits or the nesting "
                "is too deep. Nothing was changed."
            )
        return error_response(request, status, codes.get(status, "http_error"), message, exc.headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        get_logger().error("portal.unexpected_error", error_type=type(exc).__name__, path=request.url.path)
        return error_response(request, 500, "internal_error", i18n.gettext(INTERNAL))

    app.add_exception_handler(PortalError, portal_error)
    app.add_exception_handler(FirstlineError, runner_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def problem(status: int, code: str, message: str, **extra: Any) -> PortalError:
    """Shorthand: ``raise problem(403, "forbidden", "...")``."""
    return PortalError(status, code, message, extra.get("headers"))
