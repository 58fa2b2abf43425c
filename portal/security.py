"""Request hardening for every request, in one ASGI middleware (``SecurityMiddleware``).

In order: the client's address (``X-Forwarded-For`` believed only when the peer is a
configured trusted proxy, read right to left), the user agent, the language; a request
body larger than ``max_body_bytes`` → 413; on POST/PUT/PATCH/DELETE the CSRF token
(header ``X-CSRF-Token``, or the form field ``csrf_token`` of a URL-encoded or multipart
form, given once) must match the one derived from
the session cookie (or, before sign-in, the pre-session cookie) → else 403
``csrf_failed`` and the route never runs; then a body that is not UTF-8 → 422
``invalid_input`` (``body_not_utf8``: a form, a JSON body, or any body with a ``charset``
other than UTF-8 — the parsers would put U+FFFD, a Latin-1 or UTF-8 reading, or a guessed
UTF-16 in place of what was sent, and a new password would be set to that); a query
string that is not UTF-8 → 422 too, on every method (a filter would search for U+FFFD).
Routing is looked at before the CSRF check: a method that the address does not accept
→ 405 ``method_not_allowed`` with ``Allow``, an address no route serves → 404, whatever
the token (``RouteTable``). HEAD is answered wherever GET is (RFC 9110 9.3.2): the GET
route runs as for GET (same policy, same status and headers, security headers included)
and the body is not sent; ``Allow`` lists HEAD beside GET. Requests that carry ``Authorization: Bearer`` skip the CSRF
check (a browser never sends that header cross-site) and are authenticated by the token
alone.

Every response gets the security headers below and ``Cache-Control: no-store`` (except
``/static``), and is counted in ``portal.metrics.REQUESTS`` by route template.

Cookies (names and flags): see ``session_cookie_name`` and ``cookie_flags``.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.routing import Mount, Route, compile_path
from starlette.staticfiles import StaticFiles

from portal import i18n
from portal.deps import is_api
from portal.metrics import REQUESTS
from runner.auth import csrf_ok, csrf_token
from runner.errors import ConfigError
from runner.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def route_template(route: object, path: str) -> str:
    """The metrics label for a request to *path* matched by *route*: the full route template.

    FastAPI hands the included router's own route (``/me``), not one carrying the
    ``include_router`` prefix, so ``/api/v1/me`` and the page ``/me`` would share one
    label. The prefix is the part of *path* before the suffix the route's pattern
    matches (prefixes hold no parameters). ``/static`` for static files, ``unmatched``
    for everything else.
    """
    template = getattr(route, "path", None)
    regex = getattr(route, "path_regex", None)
    if not isinstance(template, str) or not template:
        return "/static" if path.startswith("/static/") else "unmatched"
    if regex is not None and not regex.fullmatch(path):
        for i in range(1, len(path)):
            if path[i] == "/" and regex.fullmatch(path[i:]):
                return path[:i] + template
    return template


UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_FOUND: frozenset[str] = frozenset()  # RouteTable.allowed: no route serves the address


class RouteTable:
    """Every address the app serves and the methods each takes, so that the middleware can
    answer 405 / 404 as the router would, before the CSRF check. Built from the app's own
    routes and mounts and the routers ``create_app`` includes (*included*: router, prefix),
    again whenever routes are added. A static-files mount takes GET and HEAD; another mount
    is left to itself."""

    def __init__(self, app: Any, included: Iterable[tuple[Any, str]] = ()) -> None:
        self.app = app
        self.included = tuple(included)
        self._built_for = -1
        self.routes: list[tuple[re.Pattern[str], frozenset[str]]] = []
        self.static: tuple[str, ...] = ()
        self.mounts: tuple[str, ...] = ()
        self.complete = False

    def _build(self) -> None:
        own = list(getattr(self.app, "routes", ()))
        entries = [(r.path, r.methods or ()) for r in own if isinstance(r, Route)]
        for router, prefix in self.included:
            entries += [(prefix + r.path, r.methods or ()) for r in router.routes if isinstance(r, Route)]
        self.routes = [(compile_path(path)[0], frozenset(m.upper() for m in methods)) for path, methods in entries]
        self.static = tuple(
            r.path.rstrip("/") + "/" for r in own if isinstance(r, Mount) and isinstance(r.app, StaticFiles)
        )
        self.mounts = tuple(
            r.path.rstrip("/") + "/" for r in own if isinstance(r, Mount) and not isinstance(r.app, StaticFiles)
        )
        # a router included later than create_app's (not in *included*): the table would miss
        # its routes, so the middleware then leaves every request to the router
        others = [r for r in own if not isinstance(r, Route | Mount)]
        self.complete = len(others) == len(self.included)
        self._built_for = len(own)

    def allowed(self, method: str, path: str) -> frozenset[str] | None:
        """``None`` when a route takes *method* at *path*, else the methods *path* takes
        (``NOT_FOUND``: none). No route ends in ``/`` but ``/``: ``slashless`` says where such
        an address was meant to go (the router itself redirects nothing: its redirect was
        built from the ``Host`` header)."""
        if len(getattr(self.app, "routes", ())) != self._built_for:
            self._build()
        if not self.complete:
            return None
        methods = self._methods(path)
        if methods is None or method in methods or (method == "HEAD" and "GET" in methods):
            return None
        return methods if methods or path == "/" else NOT_FOUND

    def slashless(self, path: str) -> str | None:
        """*path* without its final ``/`` (``/kpi/`` → ``/kpi``) when a route serves that and
        none serves *path*; else None."""
        if path == "/" or not path.endswith("/") or not self.complete:
            return None
        other = path.rstrip("/") or "/"
        return other if not self._methods(path) and self._methods(other) else None

    def _methods(self, path: str) -> frozenset[str] | None:
        if self.mounts and path.startswith(self.mounts):
            return None  # another app: it answers for itself
        if self.static and path.startswith(self.static):
            return frozenset({"GET", "HEAD"})
        found: set[str] = set()
        for regex, methods in self.routes:
            if regex.match(path):
                if not methods:
                    return None  # a route of every method
                found |= methods
        return frozenset(found)


CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)
_SECURITY_RAW = tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in SECURITY_HEADERS)


def cookie_secure(settings: Settings) -> bool:
    """Secure cookies everywhere except ``environment=dev``, unless set explicitly."""
    if settings.session_cookie_secure is not None:
        return settings.session_cookie_secure
    return settings.environment != "dev"


def session_cookie_name(secure: bool) -> str:
    # __Host- needs Secure, Path=/ and no Domain: the browser then refuses it from subdomains
    return "__Host-fl_session" if secure else "fl_session"


def pre_cookie_name(secure: bool) -> str:
    return "__Host-fl_pre" if secure else "fl_pre"


def cookie_flags(secure: bool, max_age: int | None = None, path: str = "/") -> str:
    """``HttpOnly; SameSite=Lax`` (and ``Secure``) for *path*; a ``__Host-`` cookie needs ``/``."""
    flags = f"Path={path}; HttpOnly; SameSite=Lax"
    if secure:
        flags += "; Secure"
    if max_age is not None:
        flags += f"; Max-Age={max_age}"
    return flags


def parse_networks(values: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for value in values:
        try:
            nets.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                "FIRSTLINE_TRUSTED_PROXIES must be a JSON list of IP addresses or networks (CIDR)"
            ) from None
    return nets


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


UNKNOWN_CLIENT = "unknown"
"""The client address when a trusted proxy forwarded a hop that is not an address."""


def _hop(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """One ``X-Forwarded-For`` entry as an address: ``203.0.113.7``, ``2001:db8::1``, and the
    forms with a port some proxies send (``203.0.113.7:5123``, ``[2001:db8::1]:5123``)."""
    entry = text.strip().strip('"')
    if entry.startswith("["):  # [v6] or [v6]:port
        inside, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit())):
            return None
        entry = inside
    elif entry.count(":") == 1:  # v4:port (a bare v6 has two colons or more)
        host, _, port = entry.partition(":")
        if not (port.isascii() and port.isdigit()):
            return None
        entry = host
    return _ip(entry)


def client_address(
    peer: str | None, forwarded_for: list[str], trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str | None:
    """The client's address: the peer, unless the peer is a trusted proxy; then the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy (an entry may
    carry a port). An entry that is not an address makes the client ``UNKNOWN_CLIENT``: never
    the proxy's own address, which may be this machine (``/metrics`` opens to loopback)."""
    addr = _ip(peer) if peer else None
    if addr is None:
        return peer
    if not any(addr in net for net in trusted):
        return str(addr)
    hops = [h for header in forwarded_for for h in header.split(",") if h.strip()]
    current = addr
    for hop in reversed(hops):
        nxt = _hop(hop)
        if nxt is None:
            return UNKNOWN_CLIENT
        current = nxt
        if not any(nxt in net for net in trusted):
            break
    return str(current)


def _clip(text: str | None, limit: int = 256) -> str | None:
    """A header value for the audit: read as UTF-8 when its bytes are UTF-8 (the ASGI server
    hands headers over as Latin-1, which turned "\u00a0=ua" into "Â?=ua"), unprintable
    characters as ``?``, at most *limit* characters."""
    if not text:
        return None
    try:
        text = text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass  # not Latin-1 bytes, or not UTF-8: as it came
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]


HEAD_STATE = "head"  # request.state: the client asked HEAD (the app sees GET)


def is_head(request: Request) -> bool:
    """Whether *request* came as HEAD (the middleware hands the routes GET): its answer has
    no body, so nothing that is given out only once may be spent on it."""
    return bool(getattr(request.state, HEAD_STATE, False))


class _HeadAnswered(Exception):
    """Raised through the app when a HEAD's streamed answer has been sent (headers, no body)."""


def _only_head_answered(exc: BaseException) -> bool:
    """*exc* is ``_HeadAnswered``, alone or in exception groups (anyio task groups wrap it)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_head_answered(e) for e in exc.exceptions)
    return isinstance(exc, _HeadAnswered)


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.trusted = parse_networks(settings.trusted_proxies)
        self.secure = cookie_secure(settings)
        self.session_cookie = session_cookie_name(self.secure)
        self.pre_cookie = pre_cookie_name(self.secure)
        self.hsts = settings.public_base_url.startswith("https://")
        self.base_path = settings.public_base_url.rstrip("/")  # redirects go here, never to Host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        state = scope.setdefault("state", {})
        peer = scope.get("client")
        state["client_ip"] = client_address(peer[0] if peer else None, headers.getlist("x-forwarded-for"), self.trusted)
        state["user_agent"] = _clip(headers.get("user-agent"))
        cookies = _cookies(headers.get("cookie"))
        session = cookies.get(self.session_cookie)
        session = session if session and len(session) <= 128 else None
        state["session_token"] = session
        pre = cookies.get(self.pre_cookie)
        new_pre = None
        if not pre or len(pre) > 128:
            pre = new_pre = secrets.token_urlsafe(32)
        state["pre_session"] = pre
        state["csrf_token"] = csrf_token(session, "session") if session else csrf_token(pre, "pre")
        lang = i18n.pick(cookies.get(i18n.LANG_COOKIE), headers.get("accept-language"))
        state["lang"] = lang
        lang_token = i18n.current_lang.set(lang)
        path: str = scope.get("path", "")
        status = [0]  # 0 until the response starts
        head = scope.get("method") == "HEAD"
        # The routes take GET (FastAPI adds no HEAD): the app sees GET, the server keeps its own
        # scope (HEAD), so it frames the answer as one to HEAD; the body is dropped here too.
        # A route that hands something out once (the agent's temporary password) asks
        # ``is_head`` and keeps it: an answer without a body must not spend it.
        state[HEAD_STATE] = head
        app_scope = {**scope, "method": "GET"} if head else scope

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                out = MutableHeaders(scope=message)
                present = {key for key, _ in out.raw}  # one pass, not one per header (the raw list)
                out.raw.extend(pair for pair in _SECURITY_RAW if pair[0] not in present)
                if self.hsts:
                    out["strict-transport-security"] = "max-age=31536000"
                if not path.startswith("/static/"):
                    out["cache-control"] = "no-store"
                    out["pragma"] = "no-cache"
                html = out.get("content-type", "").startswith("text/html")  # forms live on pages only
                wanted = html or bool(state.get("issue_pre_cookie"))  # e.g. GET /api/v1/reset/policy
                if new_pre is not None and not state.get("session_token") and wanted:
                    out.append("set-cookie", f"{self.pre_cookie}={new_pre}; {cookie_flags(self.secure)}")
                vary = out.get("vary")
                out["vary"] = f"{vary}, Cookie, Accept-Language" if vary else "Cookie, Accept-Language"
            elif head and message["type"] == "http.response.body":
                if message.get("more_body"):
                    # A streamed answer (an export, a progress stream): a HEAD gets its headers
                    # and an empty body now, and the stream is stopped before it reads more.
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    raise _HeadAnswered
                message = {**message, "body": b""}
            await send(message)

        try:
            length = headers.get("content-length")
            if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > self.max_body):
                await self._refuse(scope, send_wrapper, 413, "too_large", self._too_large())
                return
            table = getattr(getattr(scope.get("app"), "state", None), "route_table", None)
            meant = table.slashless(path) if isinstance(table, RouteTable) else None
            if meant is not None:  # /kpi/: a page is sent on to /kpi, at the public URL (never Host)
                await self._slash(scope, send_wrapper, meant)
                return
            allowed = table.allowed(str(scope.get("method", "")), path) if isinstance(table, RouteTable) else None
            if allowed is not None:  # before the CSRF check: nothing runs, nothing changes
                await self._wrong_address(scope, send_wrapper, allowed)
                return
            if _pairs_not_utf8(bytes(scope.get("query_string") or b"")):
                await self._refuse(
                    scope,
                    send_wrapper,
                    422,
                    "invalid_input",
                    i18n.gettext(
                        "The address could not be read: its query was not sent as UTF-8 text. Nothing was changed."
                    ),
                )
                return
            if scope.get("method") in UNSAFE:
                body = await _read_body(receive, self.max_body)
                if body is None:
                    await self._refuse(scope, send_wrapper, 413, "too_large", self._too_large())
                    return
                if not self._csrf_passes(headers, body, state, path):
                    await self._refuse(
                        scope,
                        send_wrapper,
                        403,
                        "csrf_failed",
                        i18n.gettext(
                            "This form has expired or did not come from this site. Reload the page and try again."
                        ),
                    )
                    return
                unreadable = body_not_utf8(headers, body)
                if unreadable is not None:
                    await self._refuse(
                        scope,
                        send_wrapper,
                        422,
                        "invalid_input",
                        i18n.gettext(
                            "The form could not be read: it was not sent as UTF-8 text. Nothing was changed. "
                            "Reload the page and send it again."
                        )
                        if unreadable == "form"
                        else i18n.gettext(
                            "The request body could not be read: it was not sent as UTF-8 text "
                            "(Content-Type: application/json, with no charset or charset=utf-8). "
                            "Nothing was changed."
                        ),
                    )
                    return
                receive = _replay(body, receive)
            else:
                receive = _limited(receive, self.max_body)
            try:
                await self.app(app_scope, receive, send_wrapper)
            except _TooLarge:
                if status[0] == 0:
                    await self._refuse(scope, send_wrapper, 413, "too_large", self._too_large())
            except Exception as exc:
                if not _only_head_answered(exc):
                    raise
        finally:
            template = route_template(app_scope.get("route"), path)
            REQUESTS.labels(route=template, method=str(scope.get("method", "")), status=str(status[0] or 500)).inc()
            i18n.current_lang.reset(lang_token)

    def _too_large(self) -> str:
        limit_kb = max(1, self.max_body // 1024)
        return i18n.gettext("The request is too large. At most %(kb)s KB can be sent.") % {"kb": limit_kb}

    async def _slash(self, scope: Scope, send: Send, meant: str) -> None:
        """An address with a final ``/`` that a route serves without it: GET / HEAD are sent
        there (308) at the configured public URL; any other method gets 404 naming it (a
        client that follows a redirect with its body and credentials must not be sent on)."""
        if scope.get("method") in ("GET", "HEAD"):
            query = bytes(scope.get("query_string") or b"").decode("latin-1")
            location = self.base_path + meant + (f"?{query}" if query else "")
            await self._refuse(
                scope,
                send,
                308,
                "moved",
                i18n.gettext("This page is at %(path)s.") % {"path": meant},
                {"Location": location},
            )
            return
        message = i18n.gettext("There is no page at this address; did you mean %(path)s, without the final /?") % {
            "path": meant
        }
        await self._refuse(scope, send, 404, "not_found", message)

    async def _wrong_address(self, scope: Scope, send: Send, allowed: frozenset[str]) -> None:
        if allowed is NOT_FOUND:
            await self._refuse(scope, send, 404, "not_found", i18n.gettext("There is no page at this address."))
            return
        listed = ", ".join(sorted(allowed | ({"HEAD"} if "GET" in allowed else set())))
        message = i18n.gettext("This address does not accept %(method)s requests; it accepts %(allowed)s.") % {
            "method": _clip(str(scope.get("method", "")), 16),
            "allowed": listed,
        }
        await self._refuse(scope, send, 405, "method_not_allowed", message, {"Allow": listed})

    def _csrf_passes(self, headers: Headers, body: bytes, state: MutableMapping[str, Any], path: str) -> bool:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and is_api(path):  # a token call (the pages take no token)
            return True
        given = headers.get("x-csrf-token")
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if given is None and kind == "application/x-www-form-urlencoded":
            try:
                # "replace": a raw byte that is not UTF-8 in another field must not fail the
                # token (403 "expired"); body_not_utf8 refuses such a form next (422). A token
                # is ASCII, so one that held such a byte cannot match.
                values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)
            except ValueError:
                return False
            found = values.get("csrf_token") or []
            given = found[0] if len(found) == 1 else None
        elif given is None and kind == "multipart/form-data":
            # a form a client sent as multipart (the pages accept it too): its field, as above
            given = _multipart_field(headers.get("content-type", ""), body, "csrf_token")
        session = state.get("session_token")
        if session:
            return csrf_ok(session, given, "session")
        return csrf_ok(state.get("pre_session"), given, "pre")

    async def _refuse(
        self, scope: Scope, send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        from portal.errors import error_response

        response = error_response(Request(scope), status, code, message, headers)
        await response(scope, _empty_receive, send)


def _multipart_field(content_type: str, body: bytes, name: str) -> str | None:
    """The one text field *name* of a ``multipart/form-data`` *body* (the standard library's
    MIME parser, RFC 7578); None when it is missing, repeated, not UTF-8 or the body is not
    multipart. *body* is already bounded by the portal's body limit."""
    try:
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
    except (UnicodeEncodeError, ValueError):
        return None
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return None
    found = [
        part.get_payload(decode=True)
        for part in message.iter_parts()
        if isinstance(part, EmailMessage) and part.get_param("name", header="content-disposition") == name
    ]
    if len(found) != 1 or not isinstance(found[0], bytes):
        return None
    try:
        return found[0].decode("utf-8")
    except UnicodeDecodeError:
        return None


_UTF8_NAMES = frozenset({"utf-8", "utf8"})


def _charset(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type value, lower case, quotes removed; None
    when absent (RFC 9110 8.3.1: parameter names are case-insensitive)."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip().lower()
    return None


def body_not_utf8(headers: Headers, body: bytes) -> str | None:
    """``"form"`` or ``"json"`` when *body* must not be read because it is not UTF-8 text;
    None when it may be.

    * A ``charset`` other than UTF-8 on any body (``application/json; charset=latin-1``): the
      body parsers read UTF-8 whatever is declared, so the Latin-1 bytes of ``Ã©`` came out as
      ``é`` and a password was set that the client never sent.
    * A form (URL-encoded or multipart) whose names or values are not UTF-8: the form parser
      would not refuse it; it reads such bytes as U+FFFD (URL-encoded; ``é`` and ``ü`` alike)
      or as Latin-1 (multipart), so what a route gets is not what was typed.
    * A JSON body that is not UTF-8 (RFC 8259 8.1: JSON between systems MUST be UTF-8): the
      JSON parser would guess UTF-16 or UTF-32 from NUL bytes, or give a vague 400 for bytes
      that are no text. A UTF-8 byte order mark is allowed (8.1: it MAY be ignored; the text
      is the same).
    """
    content_type = headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    is_form = kind in ("application/x-www-form-urlencoded", "multipart/form-data")
    charset = _charset(content_type)
    if charset is not None and charset not in _UTF8_NAMES:
        return "form" if is_form else "json"
    if kind == "application/x-www-form-urlencoded":
        return "form" if _pairs_not_utf8(body) else None
    if kind == "multipart/form-data":
        try:
            body.decode("utf-8")  # boundaries and part headers are ASCII; no route takes a file
        except UnicodeDecodeError:
            return "form"
        return None
    if kind in ("", "application/json") or kind.endswith("+json"):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return "json"
        # a NUL byte never belongs in JSON text (escaped in strings, absent outside): UTF-16/32
        return "json" if b"\x00" in body else None
    return None


def _pairs_not_utf8(encoded: bytes) -> bool:
    """True when a name or value of URL-encoded *encoded* (a form body or a query string) is
    not UTF-8 once percent-decoded: Starlette would read it as U+FFFD, and a filter such as
    ``actor=jos%E9`` would search for ``jos\ufffd`` and answer that nothing matched."""
    try:
        for pair in encoded.split(b"&"):
            for part in pair.split(b"=", 1):
                unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _cookies(header: str | None) -> dict[str, str]:
    if not header:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # noqa: BLE001 - a malformed Cookie header is treated as no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when it grows past *limit* bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    """Hand the buffered body over once; then wait on the real channel (for disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


def _limited(receive: Receive, limit: int) -> Receive:
    size = 0

    async def wrapped() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise _TooLarge()
        return message

    return wrapped


class _TooLarge(Exception):
    """A body without Content-Length on a safe method grew past the limit."""
