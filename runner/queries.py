"""Typed, read-only queries over tickets and audit events: the auditor's search, pages and exports.

Every surface (portal pages, ``/api/v1``, later the CLI) builds a ``TicketFilter`` or
``EventFilter`` — usually with ``from_params()`` from a query string — and calls one of::

    page_tickets(engine, f, cursor=None, limit=50) -> Page      newest first (id desc)
    page_events(engine, f, cursor=None, limit=50)  -> Page      newest first (seq desc)
    count_tickets(engine, f, cap=None) / count_events(engine, f, cap=None) -> int
    export_tickets(engine, f, fmt) / export_events(engine, f, fmt) -> Iterator[str]
    chain_status(engine, key, checkpoint_file) -> ChainStatus

Rules (the portal's auditor section in ``docs/portal.md`` repeats them):

* **Person filters** (``actor``, ``on_behalf_of``) take any sign-in form and match every
  stored form of that person (``Directories.search_forms``, given to ``from_params``): ``=``
  or ``IN``, and a page walks each form's index (``_page``). **Enumerated filters**
  (``ENUMERATED``: state, channel, outcome) refuse other values (``NotOneOf``, 422).
  ``runbook``, ``directory``, ``action``, ``resolution_code`` and ``category`` refuse a value
  no stored one can be (``Runbook``'s slugs and categories, the inventory's directory keys
  are lower-case): ``directory=CORP`` answered "nothing" where ``corp`` has every event.
* **Filters** are otherwise exact matches, except ``target`` (case-insensitive substring, ``%`` and
  ``_`` taken literally). A ``target`` is first matched against the distinct values
  (``audit_target`` / ``ticket_subject``, revision 0014); up to ``TARGET_VALUES`` of them,
  the rows are found by those exact values (index on (column, key)), beyond that by a
  scan of the rows, as before; either way the same rows in the same order. ``actor`` is
  who acted (ticket: ``opened_by``, or the requester for tickets opened before revision
  0003); ``on_behalf_of`` is the requester. Events can also be filtered by their ticket's
  ``channel``, ``state`` and ``directory`` (events without a ticket then never match).
* **Time range**: ``since`` inclusive, ``until`` exclusive, on ``ticket.opened_at`` /
  ``audit_event.ts``. Text goes through ``runner.timeparse.parse_instant`` (``Z``,
  ``+01:00``...; no offset means UTC); datetimes must be aware. Stored times are fixed-width
  UTC text (``runner.timeparse.stored``), so comparing text compares instants.
* **Counts** shown beside a page are capped: ``count_*(..., cap=COUNT_CAP)`` reads at most
  ``cap + 1`` matches, and ``LedgerReader`` answers ``Count(COUNT_CAP, capped=True)`` for
  "more than 10,000" (an exact count of 600,000 matches reads 600,000 index entries).
* **Pages** use keyset pagination on the primary key (``ticket.id`` / ``audit_event.seq``,
  unique, so equal timestamps never make a row skip or repeat). The cursor
  (``runner.cursors``: the last key, the kind and a fingerprint of the filter) from another
  filter or kind, or malformed, raises ``ParameterError``; it is not signed (it names only a
  position among rows the auditor may read anyway).
* **Exports** are generators: nothing is read until iterated; rows are fetched
  ``EXPORT_BATCH`` at a time by keyset in ascending (chain) order, each batch on a
  short-lived connection, bounded by the newest key when the export started. Memory stays
  constant whatever the number of rows. CSV cells go through ``csv_cell``; JSON Lines
  escape every non-ASCII character, so each record is exactly one line for any tool.

Every value a person gives is validated here (``ParameterError`` naming the field, never
echoing more than a short clean excerpt); nothing in this module writes to the database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, Select, and_, func, literal, or_, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Integer, String

from runner import cursors, kpi
from runner.errors import ParameterError
from runner.ledger import audit as audit_mod
from runner.ledger.store import SQLITE_LOWER, reading
from runner.ledger.tables import audit_event, audit_head, audit_target, ticket, ticket_subject
from runner.ledger.tickets import FINAL_STATES, OPEN_STATES, RUNNING_STATES
from runner.routing import Directories
from runner.runs import CHANNELS
from runner.safetext import shown
from runner.ticketnumber import canonical
from runner.timeparse import parse_instant, stored

__all__ = [
    "COUNT_CAP",
    "DEFAULT_LIMIT",
    "EVENT_COLUMNS",
    "EXPORT_BATCH",
    "MAX_LIMIT",
    "TARGET_VALUES",
    "TICKET_COLUMNS",
    "ChainStatus",
    "ChainVerifier",
    "Count",
    "EventFilter",
    "LedgerReader",
    "Page",
    "TicketFilter",
    "chain_status",
    "count_events",
    "count_tickets",
    "csv_cell",
    "export_events",
    "export_tickets",
    "page_events",
    "page_tickets",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
EXPORT_BATCH = 500
COUNT_CAP = 10_000  # a page's count reads at most this many matches (and one more: "more than")
TARGET_VALUES = 100  # a "part of" target matching more distinct values than this scans the rows
TIME_PROBE = 50_000  # a time range of at most this many rows bounds the key by itself first
MAX_VALUE = 256  # the widest filterable column (audit_event.target)
NO_ZONE = "%(what)s has no time zone; give an offset (naive times are not instants)"
FORMATS = ("csv", "jsonl")
# The values of the enumerated filters: anything else is refused (``NotOneOf``), never
# answered with an empty page an auditor would read as "nobody did that".
STATE_VALUES = tuple(dict.fromkeys((*OPEN_STATES, *RUNNING_STATES, *FINAL_STATES)))
CHANNEL_VALUES = CHANNELS
OUTCOME_VALUES = audit_mod.OUTCOMES
ENUMERATED = {"state": STATE_VALUES, "channel": CHANNEL_VALUES, "outcome": OUTCOME_VALUES}
BRANCHES = 64  # at most this many newest-first index walks for one page (see _page)
Format = Literal["csv", "jsonl"]

# Column order of the exports (and of the API's items).
TICKET_COLUMNS = (
    "number",
    "id",
    "opened_at",
    "updated_at",
    "resolved_at",
    "deadline_at",
    "state",
    "requester",
    "opened_by",
    "subject",
    "channel",
    "category",
    "type",
    "runbook",
    "runbook_sha256",
    "directory",
    "impact",
    "urgency",
    "priority",
    "assignment_group",
    "resolution_code",
    "resolution_note",
    "reason",
    "message",
    "correlation_id",
    "params",
    "work_note",  # the agent's reason for a one-click fix (None for other tickets)
    # revision 0015: when the ticket reached its final state, whatever it is (resolved_at is
    # set for resolved tickets only). Last, so that existing consumers' columns keep their place.
    "closed_at",
)
EVENT_COLUMNS = audit_mod.RECORD_COLUMNS
_EVENT_SELECT = tuple(audit_event.c[k] for k in EVENT_COLUMNS)  # not the stored canonical text

_TOKEN = re.compile(r"[a-z][a-z0-9_.\-]{0,63}", re.ASCII)  # state, channel, outcome, action, codes
# runbook.Category's form: what a stored category can be (any other value matches nothing)
_CATEGORY = re.compile(r"[a-z][a-z0-9_-]*(/[a-z][a-z0-9_-]*)*", re.ASCII)
_FORMULA_START = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")  # and their fullwidth forms


# -- the ticket number in SQL -------------------------------------------------------------
class _TicketNumber(FunctionElement[str]):
    """``runner.ledger.tickets.number_of`` in SQL: ``FL-`` and the id, zero-padded to six digits."""

    type = String()
    inherit_cache = True


@compiles(_TicketNumber, "sqlite")
def _number_sqlite(element: _TicketNumber, compiler: Any, **kw: Any) -> str:
    # The sqlite dialect binds with "?", so a "%" in SQL text is literal.
    arg: str = compiler.process(element.clauses, **kw)
    return "printf('FL-%06d', " + arg + ")"


@compiles(_TicketNumber)
def _number_default(element: _TicketNumber, compiler: Any, **kw: Any) -> str:
    arg: str = compiler.process(element.clauses, **kw)
    # lpad cuts longer text, so ids of seven digits and more are written out whole.
    padded = f"lpad(CAST({arg} AS TEXT), 6, '0')"
    return f"('FL-' || CASE WHEN {arg} < 1000000 THEN {padded} ELSE CAST({arg} AS TEXT) END)"


class _TicketId(FunctionElement[int]):
    """The id inside a ticket number (``FL-000123`` -> 123); NULL (PostgreSQL) or 0 (SQLite)
    for text that is not a ticket number, which matches no ticket."""

    type = Integer()
    inherit_cache = True


@compiles(_TicketId, "sqlite")
def _id_sqlite(element: _TicketId, compiler: Any, **kw: Any) -> str:
    arg: str = compiler.process(element.clauses, **kw)
    return f"CAST(substr({arg}, 4) AS INTEGER)"


@compiles(_TicketId)
def _id_default(element: _TicketId, compiler: Any, **kw: Any) -> str:
    arg: str = compiler.process(element.clauses, **kw)
    # a cast of anything but digits would fail the query: only ticket numbers are cast
    return f"(CASE WHEN {arg} ~ '^FL-[0-9]{{1,9}}$' THEN CAST(substr({arg}, 4) AS INTEGER) END)"


class _Lower(FunctionElement[str]):
    """Lower case for the case-insensitive "part of" target, the same on both databases.
    PostgreSQL's ``lower()`` folds every letter; SQLite's folds ASCII only, so a target
    ``ärger`` missed ``Ärger`` there (an empty page that read "nobody"). On SQLite it is
    Python's ``str.lower`` (what the typed target goes through), which
    ``runner.ledger.store`` gives every connection as ``SQLITE_LOWER``."""

    type = String()
    inherit_cache = True


@compiles(_Lower, "sqlite")
def _lower_sqlite(element: _Lower, compiler: Any, **kw: Any) -> str:
    arg: str = compiler.process(element.clauses, **kw)
    return f"{SQLITE_LOWER}({arg})"


@compiles(_Lower)
def _lower_default(element: _Lower, compiler: Any, **kw: Any) -> str:
    arg: str = compiler.process(element.clauses, **kw)
    return f"lower({arg})"


# -- validation of what people type -------------------------------------------------------
class NotOneOf(ParameterError):
    """An enumerated filter's value that is not one of its values: the message names the
    parameter and lists them; ``translated`` gives it in the reader's language (the pages)."""

    TEMPLATE = "%(field)s '%(value)s' is not a valid value; choose one of: %(values)s"

    def __init__(self, field: str, value: str, allowed: Sequence[str]) -> None:
        self.field, self.allowed = field, tuple(allowed)
        self.template = self.TEMPLATE
        self.values: dict[str, object] = {"field": field, "value": _excerpt(value), "values": ", ".join(allowed)}
        super().__init__(self.template % self.values)

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of *gettext* (the values are the stored words)."""
        try:
            return gettext(self.template) % self.values
        except (KeyError, ValueError, TypeError):  # a translation whose placeholders do not fit
            return str(self)


def _excerpt(value: str) -> str:
    return shown(value, 24)


def _text(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParameterError("%(what)s must be text", what=what)
    value = value.strip(" ")
    if not value:
        return None
    if len(value) > MAX_VALUE:
        raise ParameterError("%(what)s is too long (at most %(max)s characters)", what=what, max=MAX_VALUE)
    if any(not ch.isprintable() for ch in value):
        raise ParameterError("%(what)s contains control or invisible characters", what=what)
    return value


def _token(value: object, what: str) -> str | None:
    text = _fold(_text(value, what))
    if text is not None and not _TOKEN.fullmatch(text):
        raise ParameterError(
            "%(what)s '%(value)s' is not a valid value (lower-case letters, digits, '_', '.', '-')",
            what=what,
            value=_excerpt(text),
        )
    return text


def _category(value: object, what: str) -> str | None:
    text = _fold(_text(value, what))
    if text is not None and (len(text) > 100 or not _CATEGORY.fullmatch(text)):
        raise ParameterError(
            "%(what)s '%(value)s' is not a category (lower-case letters, digits, '_' and '-', "
            "parts separated by '/', e.g. identity/password)",
            what=what,
            value=_excerpt(text),
        )
    return text


def _fold(text: str | None) -> str | None:
    """ASCII letters in lower case: every stored word (state, channel, outcome, action, runbook,
    directory key) is written so, and ``outcome=FAILURE`` was refused while ``actor`` matched in
    any case (a tester's find). Other letters stay as typed (and are refused by the pattern)."""
    return text.lower() if text is not None and text.isascii() else text


def _one_of(value: object, what: str) -> str | None:
    """An enumerated filter (``ENUMERATED``): one of its values (ASCII in any case), or ``NotOneOf``."""
    text = _fold(_text(value, what))
    if text is not None and text not in ENUMERATED[what]:
        raise NotOneOf(what, text, ENUMERATED[what])
    return text


def _person(value: object, what: str, dirs: Directories | None) -> tuple[str, ...] | None:
    """A person filter (actor, on_behalf_of): the stored forms the name stands for, in any
    of the sign-in forms (``Directories.search_forms``); without *dirs*, the name as given."""
    text = _text(value, what)
    if text is None:
        return None
    return dirs.search_forms(text) if dirs is not None else (text,)


def _in(col: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """``col = v`` for one value, ``col IN (...)`` for several: both read (col, key) indexes."""
    term: ColumnElement[bool] = col == values[0] if len(values) == 1 else col.in_(list(values))
    return term


def _number(value: object, what: str) -> str | None:
    text = _text(value, what)
    if text is None:
        return None
    return canonical(text)  # runner.ticketnumber: the spellings every surface accepts


def _instant(value: object, what: str) -> str | None:
    """A bound in the stored form, or None. Text: ``parse_instant``; datetimes must be aware."""
    if value is None or (isinstance(value, str) and not value.strip(" ")):
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParameterError(NO_ZONE, what=what)
        return stored(value)
    if not isinstance(value, str):
        raise ParameterError("%(what)s must be a date or time", what=what)
    return stored(parse_instant(value, what=what))


def _check_range(since: str | None, until: str | None) -> None:
    if since is not None and until is not None and until <= since:
        raise ParameterError("until must be later than since (since is inclusive, until exclusive)")


# -- filters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TicketFilter:
    """What to select among tickets. Times are stored-form UTC text (build with ``from_params``).

    ``actor``: who opened it (``opened_by``, or the requester for old tickets); ``on_behalf_of``:
    the requester; ``target``: substring of the subject; the rest are exact matches.
    """

    actor: tuple[str, ...] | None = None
    on_behalf_of: tuple[str, ...] | None = None
    target: str | None = None
    runbook: str | None = None
    channel: str | None = None
    state: str | None = None
    directory: str | None = None
    category: str | None = None
    resolution_code: str | None = None
    number: str | None = None
    since: str | None = None
    until: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any], dirs: Directories | None = None) -> TicketFilter:
        """Build from request parameters (strings; empty means "any"). Unknown keys are ignored
        (the route decides which keys it accepts). ``ParameterError`` names the bad field
        (``NotOneOf`` for an enumerated one). *dirs*: the inventory's directories, which
        person filters are read with (``_person``)."""
        f = cls(
            actor=_person(params.get("actor"), "actor", dirs),
            on_behalf_of=_person(params.get("on_behalf_of"), "on_behalf_of", dirs),
            target=_text(params.get("target"), "target"),
            runbook=_token(params.get("runbook"), "runbook"),
            channel=_one_of(params.get("channel"), "channel"),
            state=_one_of(params.get("state"), "state"),
            directory=_token(params.get("directory"), "directory"),
            category=_category(params.get("category"), "category"),
            resolution_code=_token(params.get("resolution_code"), "resolution_code"),
            number=_number(params.get("ticket"), "ticket"),
            since=_instant(params.get("since"), "since"),
            until=_instant(params.get("until"), "until"),
        )
        _check_range(f.since, f.until)
        return f

    def conditions(
        self, *, page: bool = False, actor: bool = True, targets: Sequence[str] | None = None
    ) -> list[ColumnElement[bool]]:
        """The WHERE terms. *page*: the shape for a keyset page (see ``_page``): the time
        range is left to the key bounds ``_page`` adds, so no index on time is walked.
        *actor*: False leaves the actor out (``actor_branches`` has it). *targets*: the
        subjects the "part of" target matches (``_target_values``), compared exactly
        instead of by substring; None: the substring on every row."""
        c = ticket.c
        out: list[ColumnElement[bool]] = []
        if self.actor is not None and actor:
            out.append(or_(*self.actor_branches()))
        if self.on_behalf_of is not None:
            out.append(_in(c.requester, self.on_behalf_of))
        for value, col in (
            (self.runbook, c.runbook),
            (self.channel, c.channel),
            (self.state, c.state),
            (self.directory, c.directory),
            (self.category, c.category),
            (self.resolution_code, c.resolution_code),
        ):
            if value is not None:
                out.append(col == value)
        if self.target is not None:
            out.append(_target_term(c.subject, self.target, targets))
        if self.number is not None:
            out.append(c.id == int(self.number.removeprefix("FL-")))
        out.extend(_time_range(c.opened_at, self.since, self.until, page))
        return out

    def actor_branches(self) -> list[ColumnElement[bool]]:
        """Who acted: opened_by, or the requester for tickets from before revision 0003 —
        two conditions, each served by its own index ((opened_by, id), (requester, id))."""
        c = ticket.c
        assert self.actor is not None
        return [_in(c.opened_by, self.actor), and_(c.opened_by.is_(None), _in(c.requester, self.actor))]

    def __post_init__(self) -> None:
        _forms_of(self)

    def singles(self) -> list[TicketFilter]:
        """This filter split into one filter per combination of the person filters' forms
        (their rows together are this filter's rows; see ``_page``)."""
        return _singles(self)


@dataclass(frozen=True)
class EventFilter:
    """What to select among audit events (see ``TicketFilter``). ``ticket`` is a ticket
    number; ``channel``, ``state`` and ``directory`` select through the event's ticket."""

    actor: tuple[str, ...] | None = None
    on_behalf_of: tuple[str, ...] | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    runbook: str | None = None
    ticket: str | None = None
    channel: str | None = None
    state: str | None = None
    directory: str | None = None
    since: str | None = None
    until: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any], dirs: Directories | None = None) -> EventFilter:
        """Build from request parameters; see ``TicketFilter.from_params``."""
        f = cls(
            actor=_person(params.get("actor"), "actor", dirs),
            on_behalf_of=_person(params.get("on_behalf_of"), "on_behalf_of", dirs),
            action=_token(params.get("action"), "action"),
            target=_text(params.get("target"), "target"),
            outcome=_one_of(params.get("outcome"), "outcome"),
            runbook=_token(params.get("runbook"), "runbook"),
            ticket=_number(params.get("ticket"), "ticket"),
            channel=_one_of(params.get("channel"), "channel"),
            state=_one_of(params.get("state"), "state"),
            directory=_token(params.get("directory"), "directory"),
            since=_instant(params.get("since"), "since"),
            until=_instant(params.get("until"), "until"),
        )
        _check_range(f.since, f.until)
        return f

    def conditions(self, *, page: bool = False, targets: Sequence[str] | None = None) -> list[ColumnElement[bool]]:
        """The WHERE terms; *page* and *targets* as in ``TicketFilter.conditions``, and events of a
        ticket's channel/state/directory found ticket by ticket (newest events first)
        instead of from the list of those tickets (what a count wants)."""
        c = audit_event.c
        out: list[ColumnElement[bool]] = []
        for forms, col in ((self.actor, c.actor), (self.on_behalf_of, c.on_behalf_of)):
            if forms is not None:
                out.append(_in(col, forms))
        for value, col in (
            (self.action, c.action),
            (self.outcome, c.outcome),
            (self.runbook, c.runbook),
            (self.ticket, c.ticket),
        ):
            if value is not None:
                out.append(col == value)
        if self.target is not None:
            out.append(_target_term(c.target, self.target, targets))
        through = [
            col == value
            for value, col in (
                (self.channel, ticket.c.channel),
                (self.state, ticket.c.state),
                (self.directory, ticket.c.directory),
            )
            if value is not None
        ]
        if through and page:
            # Correlated on the ticket's primary key (the id inside the event's ticket number,
            # and that number exactly): a page walks events newest first, looks each ticket
            # up and stops after one page, instead of first listing every ticket. A scalar
            # subquery, not EXISTS, so PostgreSQL keeps it per row rather than turning it
            # into a join that sorts every match.
            found = (
                select(ticket.c.id)
                .where(ticket.c.id == _TicketId(c.ticket), _TicketNumber(ticket.c.id) == c.ticket, *through)
                .scalar_subquery()
            )
            out.append(found.is_not(None))
        elif through:
            # A count or export: the tickets first (ix_ticket_channel_id...), then their events
            # through ix_audit_event_ticket.
            out.append(c.ticket.in_(select(_TicketNumber(ticket.c.id)).where(*through)))
        out.extend(_time_range(c.ts, self.since, self.until, page))
        return out

    def __post_init__(self) -> None:
        _forms_of(self)

    def singles(self) -> list[EventFilter]:
        """See ``TicketFilter.singles``."""
        return _singles(self)


def _forms_of(f: Any) -> None:
    """A person filter given as one text (``EventFilter(actor="alice")``) is that one form;
    an empty tuple matches nothing and is refused."""
    for name in ("actor", "on_behalf_of"):
        value = getattr(f, name)
        if isinstance(value, str):
            object.__setattr__(f, name, (value,))
        elif value is not None and not value:
            raise ParameterError("%(name)s needs at least one name", name=name)


def _singles(f: Any) -> list[Any]:
    actors: list[tuple[str, ...] | None] = [(a,) for a in f.actor] if f.actor else [None]
    behalf: list[tuple[str, ...] | None] = [(b,) for b in f.on_behalf_of] if f.on_behalf_of else [None]
    return [replace(f, actor=a, on_behalf_of=b) for a in actors for b in behalf]


def _target_term(col: Any, target: str, targets: Sequence[str] | None) -> ColumnElement[bool]:
    if targets is None:
        return _Lower(col).contains(target.lower(), autoescape=True)
    exact: ColumnElement[bool] = col.in_(list(targets))
    return exact


def _target_values(conn: Any, f: TicketFilter | EventFilter) -> tuple[str, ...] | None:
    """The stored values (``audit_target`` / ``ticket_subject``) that *f*'s "part of" target
    matches — the same test the rows would get, so the rows holding them are exactly the
    rows it matches; None when *f* has no target or it matches more than ``TARGET_VALUES``
    values (then the rows are tested one by one). Reads the short list of distinct values,
    not the rows: a few ms for 20,000 people."""
    if f.target is None:
        return None
    col = (audit_target if isinstance(f, EventFilter) else ticket_subject).c.value
    q = select(col).where(_target_term(col, f.target, None)).limit(TARGET_VALUES + 1)
    found = tuple(str(v) for v in conn.execute(q).scalars())
    return None if len(found) > TARGET_VALUES else found


def _time_range(col: Any, since: str | None, until: str | None, page: bool) -> list[ColumnElement[bool]]:
    # On a page, ``col || ''`` keeps the planner off the time index (which would read every
    # row of the range and sort it); ``_page`` bounds the key by the range instead.
    value = col.op("||")("") if page else col
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(value >= since)
    if until is not None:
        out.append(value < until)
    return out


def _fingerprint(kind: str, f: TicketFilter | EventFilter) -> str:
    return cursors.fingerprint([kind, asdict(f)])


def _encode_cursor(kind: str, f: TicketFilter | EventFilter, key: int) -> str:
    return cursors.encode(kind, _fingerprint(kind, f), key)


def _decode_cursor(kind: str, f: TicketFilter | EventFilter, cursor: str) -> int:
    bad = "the page link is not valid (it may belong to another search); start the search again"
    return cursors.decode(kind, _fingerprint(kind, f), cursor, bad)


def _limit(limit: object) -> int:
    if isinstance(limit, str):
        if not (limit.strip().isascii() and limit.strip().isdigit()) or len(limit.strip()) > 4:
            raise ParameterError("limit must be a whole number from 1 to %(max)s", max=MAX_LIMIT)
        limit = int(limit.strip())
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ParameterError("limit must be a whole number from 1 to %(max)s", max=MAX_LIMIT)
    return limit


# -- rows ---------------------------------------------------------------------------------
def _ticket_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in TICKET_COLUMNS if k != "number"}
    out["number"] = f"FL-{row['id']:06d}"
    try:
        out["params"] = json.loads(row["params"])
    except (TypeError, ValueError):
        out["params"] = row["params"]
    return {k: out[k] for k in TICKET_COLUMNS}


def _event_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in EVENT_COLUMNS}
    try:
        out["detail"] = json.loads(row["detail"])
    except (TypeError, ValueError):
        out["detail"] = row["detail"]
    return out


@dataclass(frozen=True)
class Page:
    """One page, newest first. ``next_cursor`` is None on the last page."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    limit: int


def _key_bounds(
    conn: Any, f: TicketFilter | EventFilter, key_col: Any, targets: Sequence[str] | None
) -> list[ColumnElement[bool]] | None:
    """The lowest and highest key of the rows matching *f* (which has a time range), as
    conditions; None when nothing matches. The database reads them from whichever index
    serves *f* best — for a time range alone, the time index without table rows — and the
    page then walks the key backwards between them instead of sorting every row of the
    range. Exact whatever the clocks did (keys and times need not rise together); fast
    because they do."""
    terms = f.conditions(targets=targets)
    near = _time_keys(conn, f, key_col)
    if near is not None:
        if near[0] > near[1]:
            return None
        if len(terms) == len(_time_range(key_col, f.since, f.until, False)):  # as many terms as the range has
            return [key_col >= near[0], key_col <= near[1]]  # the time range alone: done
        terms += [key_col >= near[0], key_col <= near[1]]  # the filter's own index, between those keys
    # "+ 0": an aggregate over the rows that match (PostgreSQL would otherwise walk the key
    # index from one end, filtering, to find min and max)
    bounds = select(func.min(key_col + 0), func.max(key_col + 0)).where(*terms)
    low, high = conn.execute(bounds).one()
    return None if low is None else [key_col >= low, key_col <= high]


def _time_keys(conn: Any, f: TicketFilter | EventFilter, key_col: Any) -> tuple[int, int] | None:
    """The lowest and highest key of every row in *f*'s time range, read from the time index
    alone (``(ts, seq)`` / ``(opened_at, id)``) when the range holds at most ``TIME_PROBE``
    rows: the rows matching *f* lie between them, so the filter's own index is then read
    between those keys only (PostgreSQL would otherwise combine, say, every refused event's
    entry with the day's: 150,000 entries for 450 rows). (1, 0) for an empty range; None
    for a wider one — guessed from the keys at its two ends, else found by reading no more
    than ``TIME_PROBE + 1`` entries."""
    time_col = audit_event.c.ts if isinstance(f, EventFilter) else ticket.c.opened_at
    # First a guess from two seeks of the time index: the keys at the range's two ends (keys
    # and times rise together, so their distance is about the number of rows). A wide range
    # is not read at all; a guess gone wrong (clocks went back) costs time, never exactness.
    low_end = high_end = None
    if f.since is not None:
        q = select(key_col).where(time_col >= f.since).order_by(time_col, key_col).limit(1)
        low_end = conn.execute(q).scalar()
        if low_end is None:
            return (1, 0)  # no row at or after since
    if f.until is not None:
        q = select(key_col).where(time_col < f.until).order_by(time_col.desc(), key_col.desc()).limit(1)
        high_end = conn.execute(q).scalar()
        if high_end is None:
            return (1, 0)  # no row before until
    if low_end is None:
        low_end = conn.execute(select(func.min(key_col))).scalar()
    if high_end is None:
        high_end = conn.execute(select(func.max(key_col))).scalar()
    if low_end is None or high_end is None:
        return (1, 0)  # no rows at all
    if int(high_end) - int(low_end) >= TIME_PROBE:
        return None  # wide: the filter's own bounds
    first = select(key_col.label("k")).where(*_time_range(time_col, f.since, f.until, False))
    probe = first.limit(TIME_PROBE + 1).subquery()
    n, low, high = conn.execute(select(func.count(), func.min(probe.c.k), func.max(probe.c.k))).one()
    if n > TIME_PROBE:
        return None
    return (1, 0) if low is None else (int(low), int(high))


def _count(engine: Engine, f: TicketFilter | EventFilter, table: Any, cap: int | None) -> int:
    with reading(engine) as conn:
        targets = _target_values(conn, f)
        if targets == ():
            return 0
        near_terms: list[ColumnElement[bool]] = []
        if f.since is not None or f.until is not None:
            key_col = audit_event.c.seq if table is audit_event else ticket.c.id
            near = _time_keys(conn, f, key_col)
            if near is not None:  # the filter's own index between the time range's keys
                near_terms = [key_col >= near[0], key_col <= near[1]]
        if isinstance(f, TicketFilter) and f.actor is not None:
            # the two branches of "who acted" (disjoint: opened_by is the actor, or is NULL),
            # each from its own index (their OR reads every ticket's row to test it)
            rest = [*f.conditions(actor=False, targets=targets), *near_terms]
            parts = [select(literal(1).label("one")).select_from(table).where(b, *rest) for b in f.actor_branches()]
            matches: Any = union_all(*parts)
        else:
            matches = (
                select(literal(1).label("one")).select_from(table).where(*f.conditions(targets=targets), *near_terms)
            )
        if cap is not None:
            matches = matches.limit(cap + 1)  # read no more than cap + 1 matches: the database stops there
        return int(conn.execute(select(func.count()).select_from(matches.subquery())).scalar_one())


@dataclass(frozen=True)
class Count:
    """How many match: ``value`` exactly, or — ``capped`` — more than ``value`` (``COUNT_CAP``)."""

    value: int
    capped: bool

    @classmethod
    def of(cls, counted: int, cap: int) -> Count:
        """From a ``count_*(..., cap=cap)`` result (which is at most ``cap + 1``)."""
        return cls(cap, True) if counted > cap else cls(counted, False)


def _page(
    engine: Engine,
    kind: str,
    f: TicketFilter | EventFilter,
    key_col: Any,
    base: Select[Any],
    shape: Callable[[Mapping[Any, Any]], dict[str, Any]],
    cursor: str | None,
    limit: object,
) -> Page:
    n = _limit(limit)
    extra: list[ColumnElement[bool]] = []  # the keyset: after the cursor, inside the time range
    if cursor:
        extra.append(key_col < _decode_cursor(kind, f, cursor))
    timed = f.since is not None or f.until is not None
    with reading(engine) as conn:
        targets = _target_values(conn, f)
        if targets == ():
            return Page([], None, n)
        if timed:
            bounds = _key_bounds(conn, f, key_col, targets)
            if bounds is None:
                return Page([], None, n)
            extra += bounds
        # Each branch walks its own index newest first for one page; the page is the newest
        # of all (their OR or IN would read every match and sort them). A person filter that
        # stands for several stored forms (``_person``) is one branch per form; an actor's
        # events in a time range are read from (actor, ts, seq) with the forms' IN instead.
        event_actor_range = timed and isinstance(f, EventFilter) and f.actor is not None
        singles: list[Any] = [f] if event_actor_range else f.singles()
        wheres: list[list[ColumnElement[bool]]] = []
        for one in singles:
            if isinstance(one, TicketFilter) and one.actor is not None:
                # the two branches of "who acted"
                rest = one.conditions(page=True, actor=False, targets=targets)
                wheres += [[branch, *rest] for branch in one.actor_branches()]
            elif targets is not None and len(targets) > 1:
                # one branch per value the target matches, each through (column, key)
                wheres += [one.conditions(page=True, targets=(value,)) for value in targets]
            elif len(singles) > 1:
                wheres.append(one.conditions(page=True, targets=targets))
        if len(wheres) > BRANCHES:
            wheres = []  # too many walks: the filter's IN terms in one query
        if not wheres and event_actor_range:
            # An actor's time range: the page's keys from (actor, ts, seq) alone, newest first,
            # then only their rows (walking (actor, seq), PostgreSQL would read and sort every
            # row of the range: 1,600 rows of an agent's month, 50-90 ms from disk).
            keys = select(key_col).where(*f.conditions(targets=targets), *extra).order_by(key_col.desc()).limit(n + 1)
            terms = [key_col.in_(keys)]
        elif wheres:
            branches = [
                select(key_col).where(*where, *extra).order_by(key_col.desc()).limit(n + 1).subquery()
                for where in wheres
            ]
            terms = [key_col.in_(union_all(*(select(b.c[key_col.name]) for b in branches)))]
        else:
            terms = [*f.conditions(page=True, targets=targets), *extra]
        q = base.where(*terms).order_by(key_col.desc()).limit(n + 1)
        rows = [shape(r) for r in conn.execute(q).mappings()]
    more = len(rows) > n
    rows = rows[:n]
    key = "id" if kind == "tickets" else "seq"
    return Page(rows, _encode_cursor(kind, f, rows[-1][key]) if more else None, n)


def page_tickets(engine: Engine, f: TicketFilter, cursor: str | None = None, limit: object = DEFAULT_LIMIT) -> Page:
    """Tickets matching *f*, newest (highest id) first, after *cursor*; at most *limit* (1..200)."""
    return _page(engine, "tickets", f, ticket.c.id, select(ticket), _ticket_row, cursor, limit)


def page_events(engine: Engine, f: EventFilter, cursor: str | None = None, limit: object = DEFAULT_LIMIT) -> Page:
    """Audit events matching *f*, newest (highest seq) first, after *cursor*; at most *limit*."""
    return _page(engine, "events", f, audit_event.c.seq, select(*_EVENT_SELECT), _event_row, cursor, limit)


def count_tickets(engine: Engine, f: TicketFilter, cap: int | None = None) -> int:
    """How many tickets match *f*; with *cap*, at most ``cap + 1`` (meaning "more than *cap*")."""
    return _count(engine, f, ticket, cap)


def count_events(engine: Engine, f: EventFilter, cap: int | None = None) -> int:
    """How many audit events match *f*; with *cap*, at most ``cap + 1`` (see ``count_tickets``)."""
    return _count(engine, f, audit_event, cap)


# -- exports ------------------------------------------------------------------------------
def csv_cell(value: Any) -> Any:
    """One CSV cell that a spreadsheet shows as the text it is.

    Control, bidi and invisible characters become ``\\uXXXX`` (``runner.safetext.shown``): a
    stored newline cannot start a forged row. A cell whose first visible character is
    ``=``, ``+``, ``-``, ``@`` (or their fullwidth forms) — the characters that make Excel,
    LibreOffice and Google Sheets read a formula (OWASP "CSV Injection") — gets a leading
    ``'``; "first visible" skips every kind of space (a no-break or ideographic space is
    kept as it is, and a spreadsheet may drop it too). Numbers and None pass unchanged;
    dicts and lists become canonical JSON first.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    # str.isprintable() is False for every category shown() escapes (C*, Zl, Zp): a fast path
    text = value if value.isprintable() else shown(value)
    if text.lstrip()[:1] in _FORMULA_START:  # str.lstrip(): every Unicode space, not only " "
        text = "'" + text
    return text


def _export(
    engine: Engine,
    fmt: str,
    table: Any,
    key_col: Any,
    columns: tuple[str, ...],
    conditions: list[ColumnElement[bool]],
    shape: Callable[[Mapping[Any, Any]], dict[str, Any]],
    batch: int,
    bounds: list[ColumnElement[bool]] | None = None,
) -> Iterator[str]:
    """*conditions* in the page shape (key order); *bounds*: the time range in its indexed
    form, read once for the lowest and highest key in it (as ``_page`` does)."""
    if fmt not in FORMATS:
        raise ParameterError("format must be csv or jsonl")

    def lines() -> Iterator[str]:
        first = 0
        with reading(engine) as conn:
            top = conn.execute(select(func.max(key_col))).scalar()
            if top is not None and bounds is not None:
                # "+ 0" as in _key_bounds: from the time index (PostgreSQL otherwise walked the key
                # index back from the newest event for max: 3,000,000 rows for an export of 10,000)
                low, high = conn.execute(select(func.min(key_col + 0), func.max(key_col + 0)).where(*bounds)).one()
                top = None if low is None else min(int(top), int(high))
                first = 0 if low is None else int(low) - 1
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        if fmt == "csv":
            writer.writerow(columns)
            yield buf.getvalue()
        if top is None:
            return
        after = first
        while True:
            rows = _fetch_batch(engine, table, key_col, conditions, after, int(top), batch)
            for row in rows:
                # CSV keeps JSON columns (detail, params) as their stored canonical text
                item = shape(row) if fmt == "jsonl" else _as_stored(row, key_col.name == "id")
                if fmt == "jsonl":
                    yield json.dumps(item, ensure_ascii=True, sort_keys=False, default=str) + "\n"
                else:
                    buf.seek(0)
                    buf.truncate()
                    writer.writerow([csv_cell(item[k]) for k in columns])
                    yield buf.getvalue()
            if len(rows) < batch:
                return
            after = int(rows[-1][key_col.name])

    return lines()


def _as_stored(row: Mapping[Any, Any], is_ticket: bool) -> dict[str, Any]:
    out = dict(row)
    if is_ticket:
        out["number"] = f"FL-{out['id']:06d}"
    return out


def _fetch_batch(
    engine: Engine,
    table: Any,
    key_col: Any,
    conditions: list[ColumnElement[bool]],
    after: int,
    top: int,
    batch: int,
) -> list[Mapping[Any, Any]]:
    """One export batch: at most *batch* rows with *after* < key <= *top*, ascending."""
    chosen = _EVENT_SELECT if table is audit_event else (table,)
    q = select(*chosen).where(*conditions, key_col > after, key_col <= top).order_by(key_col).limit(batch)
    with reading(engine) as conn:
        return list(conn.execute(q).mappings())


def export_tickets(engine: Engine, f: TicketFilter, fmt: str, *, batch: int = EXPORT_BATCH) -> Iterator[str]:
    """Tickets matching *f* as CSV (header + one row per ticket, ``TICKET_COLUMNS``, params as
    JSON) or JSON Lines, oldest first, streamed (see the module docstring).
    ``ParameterError`` at once for an unknown *fmt*."""
    bounds = _time_range(ticket.c.opened_at, f.since, f.until, False) or None
    conds = f.conditions(page=True)
    return _export(engine, fmt, ticket, ticket.c.id, TICKET_COLUMNS, conds, _ticket_row, batch, bounds)


def export_events(engine: Engine, f: EventFilter, fmt: str, *, batch: int = EXPORT_BATCH) -> Iterator[str]:
    """Audit events matching *f* as CSV (``EVENT_COLUMNS``, detail as JSON) or JSON Lines, in
    chain order, streamed. Unfiltered, the export links event to event (``prev_hash``)."""
    bounds = _time_range(audit_event.c.ts, f.since, f.until, False) or None
    conds = f.conditions(page=True)
    return _export(engine, fmt, audit_event, audit_event.c.seq, EVENT_COLUMNS, conds, _event_row, batch, bounds)


# -- chain verification -------------------------------------------------------------------
@dataclass(frozen=True)
class ChainStatus:
    """The audit chain's verification status as shown to auditors.

    ``ok``: every event links, hashes and matches the signed head and checkpoints;
    ``events``: how many were checked; ``first_bad_seq`` / ``problem``: where and what
    failed (None / "" when ok); ``checked_at``: stored-form UTC time of the check.
    """

    ok: bool
    events: int
    first_bad_seq: int | None
    problem: str
    checked_at: str

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def chain_status(engine: Engine, key: bytes, checkpoint_file: Path | None) -> ChainStatus:
    """Verify the whole chain now (``runner.ledger.audit.verify``)."""
    report = audit_mod.verify(engine, key, checkpoint_file)
    return ChainStatus(report.ok, report.events, report.first_bad_seq, report.problem, stored(datetime.now(UTC)))


class ChainVerifier:
    """``chain_status`` with a short memory: a page view re-verifies when the signed head moved
    or *max_age* seconds passed, so a busy auditor page does not walk the chain per request.
    A tampered row is therefore reported at most *max_age* seconds late. Thread-safe enough:
    the worst race verifies twice."""

    def __init__(self, engine: Engine, key: bytes, checkpoint_file: Path | None, max_age: float = 30.0) -> None:
        self.engine, self.key, self.checkpoint_file, self.max_age = engine, key, checkpoint_file, max_age
        self._last: tuple[tuple[int, str] | None, float, ChainStatus] | None = None

    def status(self, *, fresh: bool = False) -> ChainStatus:
        """The remembered status, or a new verification when *fresh*, the head moved or it is too old."""
        with reading(self.engine) as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
        head = None if row is None else (int(row.seq), str(row.hash))
        now = time.monotonic()
        last = self._last
        if not fresh and last is not None and last[0] == head and now - last[1] < self.max_age:
            return last[2]
        result = chain_status(self.engine, self.key, self.checkpoint_file)
        self._last = (head, now, result)
        return result


# -- one reader for every surface ---------------------------------------------------------
class LedgerReader:
    """The auditor's and the KPI page's one runner service: ``from_params`` filters, pages,
    counts, exports, the chain status (remembered ``verify_max_age`` seconds, see
    ``ChainVerifier``) and the KPIs (``runner.kpi``). Read-only; safe to share between threads.
    *directories*: gives the inventory's directories, with which person filters are read
    (``TicketFilter.from_params``); None: person filters are exact."""

    def __init__(
        self,
        engine: Engine,
        key: bytes,
        checkpoint_file: Path | None,
        verify_max_age: float = 30.0,
        directories: Callable[[], Directories] | None = None,
    ) -> None:
        self.engine = engine
        self.verifier = ChainVerifier(engine, key, checkpoint_file, verify_max_age)
        self.directories = directories

    @classmethod
    def of(cls, firstline: Any, verify_max_age: float = 30.0) -> LedgerReader:
        """The reader over a ``runner.service.Firstline``'s ledger, audit key and directories."""
        return cls(
            firstline.engine,
            firstline.audit.key,
            firstline.audit.checkpoint_file,
            verify_max_age,
            directories=lambda: firstline.inventory.directories,
        )

    def _dirs(self) -> Directories | None:
        return self.directories() if self.directories is not None else None

    def tickets(
        self, params: Mapping[str, Any], cursor: str | None = None, limit: object = DEFAULT_LIMIT
    ) -> tuple[Page, Count]:
        """One page of tickets matching *params* and how many match in all (capped: ``Count``)."""
        f = TicketFilter.from_params(params, self._dirs())
        page = page_tickets(self.engine, f, cursor, limit)
        return page, Count.of(count_tickets(self.engine, f, COUNT_CAP), COUNT_CAP)

    def events(
        self, params: Mapping[str, Any], cursor: str | None = None, limit: object = DEFAULT_LIMIT
    ) -> tuple[Page, Count]:
        """One page of audit events matching *params* and how many match in all (capped: ``Count``)."""
        f = EventFilter.from_params(params, self._dirs())
        page = page_events(self.engine, f, cursor, limit)
        return page, Count.of(count_events(self.engine, f, COUNT_CAP), COUNT_CAP)

    def export(self, kind: str, fmt: str, params: Mapping[str, Any]) -> Iterator[str]:
        """The streamed export of *kind* (``tickets`` | ``events``) in *fmt* (``csv`` | ``jsonl``).
        Every argument is checked before this returns (``ParameterError``); rows are read
        only while the iterator is consumed."""
        if kind == "tickets":
            return export_tickets(self.engine, TicketFilter.from_params(params, self._dirs()), fmt)
        if kind == "events":
            return export_events(self.engine, EventFilter.from_params(params, self._dirs()), fmt)
        raise ParameterError("kind must be tickets or events")

    def verify(self, *, fresh: bool = False) -> ChainStatus:
        """The chain status; remembered briefly (pages) unless *fresh* (the API: verified now,
        and remembered, so the pages show a failure the API found at once)."""
        return self.verifier.status(fresh=fresh)

    def kpi(self, since: object = None, until: object = None) -> kpi.KpiReport:
        """``runner.kpi.compute`` over ``runner.kpi.parse_range(since, until)``."""
        start, end = kpi.parse_range(since, until)
        return kpi.compute(self.engine, start, end)
