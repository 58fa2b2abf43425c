"""Dependencies every route uses: who is calling (and may they), from where, and the shared services.

Policy: every route has exactly ONE of ``Depends(allow("employee"|"agent"|"auditor"))``,
``Depends(public)`` or (``/metrics`` only) ``Depends(scraper)``;
``tests/unit/portal/test_foundation.py`` walks the route table and fails for a route
without one. ``allow`` raises ``PortalError`` 401
(``signin_required``: pages redirect to the sign-in page) or 403 (``forbidden``, naming
the role needed).

Authentication: on the JSON API (``API_PREFIX``), ``Authorization: Bearer fl_...`` → that
API token only (a cookie is then ignored), otherwise the session cookie; on the pages the
session cookie only. A token is for scripts: accepted on a page, it could open the token
page and make itself a successor (``POST /me/tokens``), renewing itself for ever.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from portal import i18n
from portal.errors import PortalError
from runner.auth import ROLES, AuthService, Principal, require_changed_password

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

    from runner.service import Firstline
    from runner.settings import Settings


@dataclass
class PortalContext:
    """Everything a route may need, built once by ``create_app``."""

    settings: Settings
    firstline: Firstline
    auth: AuthService
    templates: Jinja2Templates
    extras: dict[str, Any] = field(default_factory=dict)  # later services (dispatcher, ...) by name


def context_of(request: Request) -> PortalContext:
    """The portal's services for *request* (``app.state.portal``)."""
    ctx: PortalContext = request.app.state.portal
    return ctx


# The dependencies below are ``async`` although they do no I/O but the session read: FastAPI
# runs a plain ``def`` dependency on its thread pool, a hop to another thread and back on
# every request (measured 2026-12-01: about 16 hops per agent fix, some 1 ms of the API unlock).
async def portal_context(request: Request) -> PortalContext:
    """Dependency: ``context_of``."""
    return context_of(request)


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, for audit events: address (proxy-aware) and user agent."""

    address: str | None
    user_agent: str | None


async def client_info(request: Request) -> ClientInfo:
    return ClientInfo(request.state.client_ip, request.state.user_agent)


API_PREFIX = "/api/"


def is_api(path: str) -> bool:
    """Is *path* on the JSON API, the only place an API token counts (``API_PREFIX``)?"""
    return path.startswith(API_PREFIX)


async def current_principal(request: Request) -> Principal | None:
    """The caller (API token or session), or None; resolved once per request. The look-up
    is a read on the event loop; the write it may call for (a refreshed ``last_seen_at``
    once a minute, an expired session's deletion) runs in the thread pool, because on
    SQLite it waits for the writer a run may hold (``runner.auth.AuthService.session_lookup``);
    so does the directory read that checks the caller's roles again every
    ``role_recheck_seconds`` (``runner.auth.AuthService.recheck``: None when the account
    lost access, fewer roles when it left a group)."""
    if "principal" in request.state._state:
        cached: Principal | None = request.state.principal
        return cached
    auth = context_of(request).auth
    header = request.headers.get("authorization") if is_api(request.url.path) else None
    who: Principal | None
    write: Callable[[], None] | None = None
    if header is not None:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer":
            who, write = auth.token_lookup(credential.strip())
        else:
            who = None
    else:
        who, write = auth.session_lookup(request.state.session_token)
    if write is not None:
        await run_in_threadpool(write)
    if who is not None and auth.recheck_due(who):
        # the directory is asked (its roles, whether the account may still sign in): off the loop
        who = await run_in_threadpool(
            auth.recheck, who, client_ip=request.state.client_ip, user_agent=request.state.user_agent
        )
    request.state.principal = who
    return who


@functools.cache
def allow(role: str, *, temporary: bool = False) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency: the signed-in caller, who must hold *role* (``employee`` = anyone signed in).

    A session signed in with a temporary password gets ``PasswordChangeRequired`` (403
    ``password_change_required``; a page redirects to the change page) unless *temporary*:
    the routes such a session needs to change it and follow that run (which then check the
    runbook themselves: ``runner.auth.require_changed_password``)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {ROLES}")

    # async: resolved on the event loop, without a thread-pool hop per request; the session
    # look-up is one indexed read (a deferred SQLite read never waits for the writer).
    async def dependency(request: Request) -> Principal:
        who = await current_principal(request)
        if who is None:
            api = is_api(request.url.path)
            header = request.headers.get("authorization", "") if api else ""
            if header[:7].lower() == "bearer ":  # a token was given and does not count (RFC 6750 3.1)
                raise PortalError(
                    401,
                    "invalid_token",
                    i18n.gettext(
                        "This API token does not work: it is unknown, was revoked or has expired. "
                        "Make a new one on the token page (/me/tokens)."
                    ),
                    {"WWW-Authenticate": 'Bearer realm="firstline", error="invalid_token"'},
                )
            raise PortalError(
                401,
                "signin_required",
                i18n.gettext("Sign in first."),
                {"WWW-Authenticate": 'Bearer realm="firstline"'} if api else None,
            )
        if role not in who.roles:
            raise PortalError(
                403,
                "forbidden",
                i18n.gettext("This needs the %(role)s role, which your account does not have.")
                % {"role": i18n.gettext(role)},
            )
        if who.must_change and not temporary:
            require_changed_password(who)
        return who

    dependency.firstline_policy = role  # type: ignore[attr-defined]
    dependency.__name__ = f"allow_{role}" + ("_temporary" if temporary else "")
    return dependency


async def fields_once(request: Request) -> None:
    """Dependency of the page forms read with ``Form()``: 422 when a field is sent more than
    once (the form parser keeps the last: ``lang=nl&lang=en`` switched to English, a second
    ``label`` named the token, a second ``login`` chose the account). The sign-in form
    answers its own way (``portal.routes.auth.repeated_fields``); the fix forms check their
    fields themselves."""
    form = await request.form()  # parsed once per request: the Form() parameters reuse it
    if any(len(form.getlist(name)) > 1 for name in form):
        raise PortalError(422, "invalid_input", i18n.gettext("Each field may be sent once, as text."))


async def public(request: Request) -> Principal | None:
    """Dependency for pages anyone may see; gives the caller when signed in (for the header)."""
    return await current_principal(request)


public.firstline_policy = "public"  # type: ignore[attr-defined]


async def scraper(request: Request) -> None:
    """Dependency for ``/metrics`` (it names routes, runbooks and counts): with
    ``FIRSTLINE_METRICS_TOKEN`` set, ``Authorization: Bearer <that token>`` from any client,
    else 401; without it, a loopback client only (the proxy-aware address), else 403."""
    token = context_of(request).settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return
        raise PortalError(
            401,
            "token_required",
            i18n.gettext("The metrics need the scrape token: send it as Authorization: Bearer <token>."),
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    if not _is_loopback(request.state.client_ip):
        raise PortalError(
            403,
            "forbidden",
            i18n.gettext(
                "The metrics are served to this machine only. To scrape them from elsewhere, set "
                "FIRSTLINE_METRICS_TOKEN and send it as Authorization: Bearer <token>."
            ),
        )


scraper.firstline_policy = "scraper"  # type: ignore[attr-defined]


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def policy_of(dependency: object) -> str | None:
    """The policy a dependency stands for (``public``, a role), or None for other dependencies."""
    value = getattr(dependency, "firstline_policy", None)
    return value if isinstance(value, str) else None
