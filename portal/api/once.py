"""Rules every ``/api/v1`` request meets before its route looks at it (``create_app`` adds
them to each API router): nothing the client sent is silently dropped or chosen between.

* ``json_keys_once``: a body that is not JSON by its content type is refused with 415
  (``unsupported_media_type``); a JSON body that gives a key twice in one object
  (``{"user": "bob", "user": "alice"}``) is refused with 422. A JSON parser keeps the last
  one, so the request would run for ``alice`` and answer as if done as asked.
* ``query_as_declared``: a query parameter the route does not take (``/api/v1/kpi?sinse=``,
  ``POST /api/v1/fixes/account-unlock?user=bob``), or one given twice (``limit=1&limit=50``),
  is refused with 422, as the auditor's filters are (``portal.api.audit.query_problem``):
  dropped, the answer covers more or other than asked (the KPIs of the default range, a
  page of another size) and looks like the one asked for.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from email.message import Message
from typing import Any

from fastapi import Request

from portal import i18n
from portal.api.audit import query_problem
from portal.errors import PortalError, declared_names


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Repeated(key)
        seen.add(key)
    return dict(pairs)


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this content type as JSON (no content type: it may)."""
    if not content_type or content_type == "application/json":  # the usual ones, without parsing
        return True
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def json_keys_once(request: Request) -> None:
    """422 (``invalid_input``) when the JSON body repeats a key within one object, naming it
    when it is a name the API declares (else ``?``: a key the client chose may be a secret)."""
    if getattr(request.scope.get("route"), "body_field", None) is None:
        return  # the route takes no body: FastAPI never reads it
    if not _is_json(request.headers.get("content-type")):
        # a JSON route sent another kind of body (text/plain, a form): said as such, not
        # "request: must be a JSON object" about a body that may well be JSON
        raise PortalError(
            415,
            "unsupported_media_type",
            i18n.gettext("This request takes a JSON body: send it with Content-Type: application/json."),
        )
    body = await request.body()  # read once per request: the route's own parsing reuses it
    if not body:
        return
    try:
        json.loads(body, object_pairs_hook=_pairs_once)
    except _Repeated as exc:
        shown = exc.key if exc.key in declared_names(request.app) else "?"
        text = i18n.gettext("is given more than once; give each field once")
        raise PortalError(422, "invalid_input", f"{shown}: {text}") from None
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep: the route's own parsing answers
        return


def _declared_query(app: Any) -> dict[tuple[str, str], tuple[str, ...]]:
    """(path, METHOD) → the query parameters that operation declares (its OpenAPI document), cached."""
    table = getattr(app.state, "declared_query", None)
    if table is None:
        table = {}
        for path, methods in app.openapi().get("paths", {}).items():
            for method, op in methods.items():
                names = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
                table[(path, method.upper())] = tuple(names)
        app.state.declared_query = table
    found: dict[tuple[str, str], tuple[str, ...]] = table
    return found


def query_as_declared(prefix: str) -> Callable[[Request], Awaitable[None]]:
    """The check for routes mounted under *prefix*: 422 (``invalid_input``) when the query
    string holds a parameter the operation does not declare, or one it declares more than
    once (``query_problem``'s message)."""

    async def check(request: Request) -> None:
        if not request.url.query:
            return
        path = str(getattr(request.scope.get("route"), "path_format", ""))
        if not path.startswith(prefix + "/"):  # the router's own route (included lazily, without its prefix)
            path = prefix + path
        method = "GET" if request.method == "HEAD" else request.method
        accepted = _declared_query(request.app).get((path, method))
        if accepted is None:
            return
        problem = query_problem(request, accepted)
        if problem is not None:
            raise PortalError(422, "invalid_input", problem)

    return check
