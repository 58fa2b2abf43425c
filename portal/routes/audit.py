"""The auditor's pages (role ``auditor``, GET only): search tickets and audit events with a
filter form, keyset "next page" links, export links for the current filter and the audit
chain's verification status. Nothing here changes state (a unit test checks every route
under ``/audit`` is GET/HEAD).

A filter the runner refuses (``ParameterError``: a bad time, a forged cursor...) renders
the same page with the message and status 422, keeping what was typed. So does a query
parameter the page cannot apply (misspelt, or given twice; the API's rule,
``portal.api.audit.query_problem``): the page's own form and links send only the filter
fields (empty ones too), ``limit`` and ``cursor``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from portal import i18n
from portal.api.audit import EVENT_KEYS, PAGE_KEYS, TICKET_KEYS, EventParams, Reader, TicketParams, query_problem
from portal.deps import allow
from portal.i18n import DEFAULT_LANG
from portal.rendering import render
from portal.texts import N_
from runner.auth import Principal
from runner.errors import ParameterError
from runner.queries import DEFAULT_LIMIT, MAX_LIMIT, ChainStatus, Count, NotOneOf
from runner.safetext import shown

router = APIRouter(tags=["audit pages"])
Auditor = Annotated[Principal, Depends(allow("auditor"))]
Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
TIME_EXAMPLES = "2026-11-27, 2026-11-27T08:55+01:00, 2026-11-27 07:55Z"  # shown in every language
CELL_LIMIT = 120  # characters of one value shown in a table cell (the export has them whole)
# runner.queries.NotOneOf (a state, channel or outcome that is none of its values), for the catalogues
NOT_ONE_OF = N_("%(field)s '%(value)s' is not a valid value; choose one of: %(values)s")
assert NOT_ONE_OF == NotOneOf.TEMPLATE

# (field, label) of the filter forms, in order; labels are msgids.
TICKET_FIELDS = (
    ("actor", N_("Opened by")),
    ("on_behalf_of", N_("On behalf of")),
    ("target", N_("Subject contains")),
    ("runbook", N_("Runbook")),
    ("channel", N_("Channel")),
    ("state", N_("State")),
    ("directory", N_("Directory")),
    ("category", N_("Category")),
    ("resolution_code", N_("Resolution code")),
    ("ticket", N_("Ticket number")),
    ("since", N_("From (inclusive)")),
    ("until", N_("Until (exclusive)")),
)
EVENT_FIELDS = (
    ("actor", N_("Actor")),
    ("on_behalf_of", N_("On behalf of")),
    ("action", N_("Action")),
    ("target", N_("Target contains")),
    ("outcome", N_("Outcome")),
    ("runbook", N_("Runbook")),
    ("ticket", N_("Ticket number")),
    ("channel", N_("Channel of the ticket")),
    ("state", N_("State of the ticket")),
    ("directory", N_("Directory of the ticket")),
    ("since", N_("From (inclusive)")),
    ("until", N_("Until (exclusive)")),
)
TICKET_TABLE = (
    ("number", N_("Ticket")),
    ("opened_at", N_("Opened (UTC)")),
    ("state", N_("State")),
    ("requester", N_("On behalf of")),
    ("opened_by", N_("Opened by")),
    ("runbook", N_("Runbook")),
    ("channel", N_("Channel")),
    ("directory", N_("Directory")),
    ("resolution_code", N_("Resolution code")),
    ("reason", N_("Reason")),
    ("work_note", N_("Agent's reason")),
)
EVENT_TABLE = (
    ("seq", N_("Seq")),
    ("ts", N_("Time (UTC)")),
    ("actor", N_("Actor")),
    ("on_behalf_of", N_("On behalf of")),
    ("action", N_("Action")),
    ("target", N_("Target")),
    ("outcome", N_("Outcome")),
    ("ticket", N_("Ticket")),
    ("runbook", N_("Runbook")),
    ("client_ip", N_("Client address")),
)
assert {k for k, _ in TICKET_FIELDS} == set(TICKET_KEYS) and {k for k, _ in EVENT_FIELDS} == set(EVENT_KEYS)


def _cell(key: str, value: Any) -> str:
    if value is None or value == "":
        return "–"
    text = str(value)
    if key in ("ts", "opened_at") and len(text) >= 19:
        return text[:19].replace("T", " ")
    return shown(text, CELL_LIMIT)  # hidden characters escaped: what you see is what is stored


def _link(key: str, value: Any) -> str | None:
    """Ticket numbers link to that ticket's audit events."""
    if key in ("number", "ticket") and isinstance(value, str) and value.startswith("FL-"):
        return _url("/audit/events", {"ticket": value})
    return None


def _rows(items: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> list[list[tuple[str, str | None]]]:
    """Each cell as (text shown, link or None)."""
    return [[(_cell(key, item.get(key)), _link(key, item.get(key))) for key, _ in columns] for item in items]


def _url(path: str, params: Mapping[str, Any]) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(clean)}" if clean else path


def _number(value: int, request: Request) -> str:
    """*value* with the page language's digit grouping (10,000 / 10.000)."""
    return format_decimal(value, locale=getattr(request.state, "lang", DEFAULT_LANG))


def _page(
    request: Request,
    *,
    kind: str,
    reader: Reader,
    params: dict[str, str],
    cursor: str | None,
    limit: int,
) -> Response:
    fields, table, path = (
        (TICKET_FIELDS, TICKET_TABLE, "/audit/tickets")
        if kind == "tickets"
        else (EVENT_FIELDS, EVENT_TABLE, "/audit/events")
    )
    rows: list[list[tuple[str, str | None]]] = []
    count: Count | None = None
    next_url: str | None = None
    # a misspelt or repeated parameter: never the unfiltered (or last-given) rows as if filtered
    error = query_problem(request, (TICKET_KEYS if kind == "tickets" else EVENT_KEYS) + PAGE_KEYS)
    if error is None:
        try:
            page, count = (
                reader.tickets(params, cursor, limit) if kind == "tickets" else reader.events(params, cursor, limit)
            )
            rows = _rows(page.items, table)
            if page.next_cursor:
                next_url = _url(
                    path, {**params, "limit": limit if limit != DEFAULT_LIMIT else None, "cursor": page.next_cursor}
                )
        except ParameterError as exc:
            error = i18n.error_text(exc)
    status: ChainStatus = reader.verify()
    exports = {fmt: _url("/api/v1/audit/export", {"kind": kind, "format": fmt, **params}) for fmt in ("csv", "jsonl")}
    return render(
        request,
        "audit/search.html",
        {
            "kind": kind,
            "action_path": path,
            "fields": fields,
            "values": params,
            "columns": table,
            "rows": rows,
            # capped: "more than 10,000" (10.000 in Dutch)
            "count": None if count is None else _number(count.value, request),
            "count_capped": count is not None and count.capped,
            "error": error,
            "next_url": next_url,
            "first_url": _url(path, params) if cursor else None,
            "exports": exports if error is None else None,
            "chain": status,
            "time_examples": TIME_EXAMPLES,
            "limit": limit,
        },
        status_code=422 if error else 200,
    )


@router.get("/audit")
def audit_home(user: Auditor) -> Response:
    """The auditor's start: the audit events."""
    return RedirectResponse("/audit/events", status_code=303)


@router.get("/audit/tickets")
def audit_tickets(
    request: Request,
    user: Auditor,
    reader: Reader,
    params: TicketParams,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """Every ticket, filtered, newest first."""
    return _page(request, kind="tickets", reader=reader, params=params, cursor=cursor, limit=limit)


@router.get("/audit/events")
def audit_events(
    request: Request,
    user: Auditor,
    reader: Reader,
    params: EventParams,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """Every audit event, filtered, newest first."""
    return _page(request, kind="events", reader=reader, params=params, cursor=cursor, limit=limit)
