"""The auditor's JSON API (read-only, role ``auditor``): tickets, audit events, streamed
exports of the current filter, the audit chain's verification status.

``GET /api/v1/tickets``, ``GET /api/v1/audit/events``, ``GET /api/v1/audit/export``,
``GET /api/v1/audit/verify``. Filters, pages and exports are ``runner.queries``; this
module only declares the query parameters (so OpenAPI lists them) and shapes answers.
Every route here is GET (a unit test checks): nothing an auditor does changes state.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from portal import i18n
from portal.deps import allow, context_of
from portal.errors import PortalError, unknown_fields_text
from portal.security import is_head
from runner.auth import Principal
from runner.queries import COUNT_CAP, DEFAULT_LIMIT, MAX_LIMIT, MAX_VALUE, LedgerReader

router = APIRouter(tags=["audit"])
Auditor = Annotated[Principal, Depends(allow("auditor"))]

TIME_HELP = (
    "since: inclusive, until: exclusive; 2026-11-27, 2026-11-27T08:55+01:00, 2026-11-27T07:55Z; no offset means UTC"
)
TICKET_KEYS = (
    "actor",
    "on_behalf_of",
    "target",
    "runbook",
    "channel",
    "state",
    "directory",
    "category",
    "resolution_code",
    "ticket",
    "since",
    "until",
)
EVENT_KEYS = (
    "actor",
    "on_behalf_of",
    "action",
    "target",
    "outcome",
    "runbook",
    "ticket",
    "channel",
    "state",
    "directory",
    "since",
    "until",
)
MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


PAGE_KEYS = ("cursor", "limit")
EXPORT_KEYS = ("format", "kind")


def query_problem(
    request: Request, accepted: tuple[str, ...], other: tuple[str, ...] = (), kind: str = ""
) -> str | None:
    """What is wrong with the query string, in the request's language, or None: a parameter
    given more than once (which value would count?), one this route does not take, or
    (export) a filter of the other kind. Dropped, it would answer with more (or other) rows
    than asked, looking like the filtered ones. The one rule of the API and the pages."""
    counts = Counter(key for key, _ in request.query_params.multi_items())
    repeated = [key for key, n in counts.items() if n > 1 and key in accepted + other]
    if repeated:
        text = i18n.gettext("is given more than once; give each filter once")
        return "; ".join(f"{key}: {text}" for key in repeated)
    wrong_kind = [key for key in counts if key in other and key not in accepted]
    if wrong_kind:
        text = i18n.gettext("is not a filter of the kind=%(kind)s export") % {"kind": kind}
        return "; ".join(f"{key}: {text}" for key in wrong_kind)
    unknown = [key for key in counts if key not in accepted]
    if unknown:
        return unknown_fields_text(unknown, accepted)
    return None


def refuse_query(request: Request, accepted: tuple[str, ...], other: tuple[str, ...] = (), kind: str = "") -> None:
    """422 (``invalid_input``) with ``query_problem``'s message, if any."""
    problem = query_problem(request, accepted, other, kind)
    if problem is not None:
        raise PortalError(422, "invalid_input", problem)


def refuse_export_query(request: Request) -> None:
    """The export's parameters: format, kind and the filters of that kind, each once."""
    kinds = request.query_params.getlist("kind")
    if len(kinds) > 1:
        refuse_query(request, EXPORT_KEYS + EVENT_KEYS + TICKET_KEYS)  # names every repeated one
    kind = kinds[0] if kinds else "events"
    if kind not in ("events", "tickets"):
        return  # the route's own validation names the bad kind
    keys = EVENT_KEYS if kind == "events" else TICKET_KEYS
    other = tuple(k for k in (*EVENT_KEYS, *TICKET_KEYS) if k not in keys)
    refuse_query(request, EXPORT_KEYS + keys, other, kind)


def reader(request: Request) -> LedgerReader:
    """The shared ``LedgerReader`` of this portal (made on first use)."""
    extras = context_of(request).extras
    found = extras.get("ledger_reader")
    if not isinstance(found, LedgerReader):
        found = LedgerReader.of(context_of(request).firstline)
        extras["ledger_reader"] = found
    return found


Reader = Annotated[LedgerReader, Depends(reader)]
Text = Annotated[str | None, Query(max_length=MAX_VALUE)]


def ticket_params(
    actor: Annotated[str | None, Query(max_length=MAX_VALUE, description="Who opened it")] = None,
    on_behalf_of: Annotated[str | None, Query(max_length=MAX_VALUE, description="The requester")] = None,
    target: Annotated[str | None, Query(max_length=MAX_VALUE, description="Part of the subject")] = None,
    runbook: Text = None,
    channel: Text = None,
    state: Text = None,
    directory: Text = None,
    category: Text = None,
    resolution_code: Text = None,
    ticket: Annotated[str | None, Query(max_length=MAX_VALUE, description="FL-000123")] = None,
    since: Annotated[str | None, Query(max_length=MAX_VALUE, description=TIME_HELP)] = None,
    until: Annotated[str | None, Query(max_length=MAX_VALUE, description=TIME_HELP)] = None,
) -> dict[str, str]:
    """The ticket filter's fields as given (validated by ``runner.queries.TicketFilter``)."""
    given = locals()
    return {k: given[k] for k in TICKET_KEYS if given[k] not in (None, "")}


def event_params(
    actor: Annotated[str | None, Query(max_length=MAX_VALUE, description="Who acted")] = None,
    on_behalf_of: Annotated[str | None, Query(max_length=MAX_VALUE, description="On whose behalf")] = None,
    action: Text = None,
    target: Annotated[str | None, Query(max_length=MAX_VALUE, description="Part of the target")] = None,
    outcome: Text = None,
    runbook: Text = None,
    ticket: Annotated[str | None, Query(max_length=MAX_VALUE, description="FL-000123")] = None,
    channel: Annotated[str | None, Query(max_length=MAX_VALUE, description="Of the event's ticket")] = None,
    state: Annotated[str | None, Query(max_length=MAX_VALUE, description="Of the event's ticket")] = None,
    directory: Annotated[str | None, Query(max_length=MAX_VALUE, description="Of the event's ticket")] = None,
    since: Annotated[str | None, Query(max_length=MAX_VALUE, description=TIME_HELP)] = None,
    until: Annotated[str | None, Query(max_length=MAX_VALUE, description=TIME_HELP)] = None,
) -> dict[str, str]:
    """The event filter's fields as given (validated by ``runner.queries.EventFilter``)."""
    given = locals()
    return {k: given[k] for k in EVENT_KEYS if given[k] not in (None, "")}


def export_params(
    actor: Text = None,
    on_behalf_of: Text = None,
    action: Annotated[str | None, Query(max_length=MAX_VALUE, description="Events only")] = None,
    target: Text = None,
    outcome: Annotated[str | None, Query(max_length=MAX_VALUE, description="Events only")] = None,
    runbook: Text = None,
    ticket: Text = None,
    channel: Text = None,
    state: Text = None,
    directory: Text = None,
    category: Annotated[str | None, Query(max_length=MAX_VALUE, description="Tickets only")] = None,
    resolution_code: Annotated[str | None, Query(max_length=MAX_VALUE, description="Tickets only")] = None,
    since: Annotated[str | None, Query(max_length=MAX_VALUE, description=TIME_HELP)] = None,
    until: Annotated[str | None, Query(max_length=MAX_VALUE, description=TIME_HELP)] = None,
) -> dict[str, str]:
    """Every filter field of either kind; the export keeps those of the kind it exports."""
    given = locals()
    return {k: v for k, v in given.items() if v not in (None, "")}


TicketParams = Annotated[dict[str, str], Depends(ticket_params)]
EventParams = Annotated[dict[str, str], Depends(event_params)]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]


class PageOut(BaseModel):
    items: list[dict[str, Any]] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")
    count: int = Field(
        description=f"How many match the filter in all, counted up to {COUNT_CAP:,}: when count_capped is "
        f"true, more than count ({COUNT_CAP:,}) match"
    )
    count_capped: bool = Field(
        default=False, description=f"True when more than {COUNT_CAP:,} match (count then is {COUNT_CAP:,})"
    )
    limit: int


class ChainOut(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None
    problem: str
    checked_at: str


@router.get("/tickets")
def list_tickets(
    request: Request,
    user: Auditor,
    reader: Reader,
    params: TicketParams,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> PageOut:
    """Tickets matching the filter, newest first, one keyset page at a time."""
    refuse_query(request, TICKET_KEYS + PAGE_KEYS)
    page, count = reader.tickets(params, cursor, limit)
    return PageOut(
        items=page.items, next_cursor=page.next_cursor, count=count.value, count_capped=count.capped, limit=page.limit
    )


@router.get("/audit/events")
def list_events(
    request: Request,
    user: Auditor,
    reader: Reader,
    params: EventParams,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> PageOut:
    """Audit events matching the filter, newest first, one keyset page at a time."""
    refuse_query(request, EVENT_KEYS + PAGE_KEYS)
    page, count = reader.events(params, cursor, limit)
    return PageOut(
        items=page.items, next_cursor=page.next_cursor, count=count.value, count_capped=count.capped, limit=page.limit
    )


@router.get("/audit/export")
def export(
    request: Request,
    user: Auditor,
    reader: Reader,
    given: Annotated[dict[str, str], Depends(export_params)],
    format: Annotated[Literal["csv", "jsonl"], Query(description="csv or jsonl")] = "csv",
    kind: Annotated[Literal["events", "tickets"], Query(description="events or tickets")] = "events",
) -> StreamingResponse:
    """The current filter's rows (the same query parameters as the list) as CSV or JSON Lines,
    oldest first, streamed in batches. CSV cells are neutralised against formulas."""
    refuse_export_query(request)
    keys = EVENT_KEYS if kind == "events" else TICKET_KEYS
    params = {k: v for k, v in given.items() if k in keys}
    body = reader.export(kind, format, params)  # validates everything before the first byte
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        body,
        media_type=MEDIA[format],
        headers={
            "Content-Disposition": f'attachment; filename="firstline-{kind}-{stamp}.{format}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/audit/verify")
def verify(request: Request, user: Auditor, reader: Reader) -> ChainOut:
    """The audit chain's verification status (hash links, signed head and checkpoints), checked
    now. A HEAD (no body to carry the result) gets the last status remembered instead of a
    verification of the whole chain."""
    return ChainOut(**reader.verify(fresh=not is_head(request)).as_dict())
