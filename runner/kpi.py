"""First-level KPIs computed from ticket rows, never from free text (``docs/kpi.md``).

The definitions follow ``shared/itsm.md`` §C (MetricNet / HDI conventions) on Firstline's
ticket model. The population is every ticket *opened* in ``[since, until)`` (instants
compared in UTC). A ticket is **decided** once it is final: ``resolved``, ``escalated`` or
``closed`` (the requester must act, ``requester_action_needed``); every other state
(``queued``, ``running``, ``awaiting_approval``, and ``in_progress`` from before ledger
revision 0006) is **open**.

* **Tickets per day**: tickets opened per UTC calendar day; days without tickets count 0.
* **First-contact resolution rate** (gross FCR): FCR tickets / decided tickets. A ticket is
  resolved at first contact when (1) its state is ``resolved``, (2) it was never handed to
  a second-level group (``assignment_group`` empty: no escalation, no reassignment), and
  (3) no *repeat* follows it: no other ticket from the same requester in the same
  category opened less than 7 days (``REPEAT_WINDOW``) after it — a later ticket at
  exactly 7 days is not a repeat. Repeats are looked for in the whole ledger, also after
  ``until``; a ticket younger than 7 days can still lose its FCR status (provisional).
* **Self-service share**: self-service tickets / all tickets opened. Self-service = the
  requester acted for themself (``opened_by`` equals the requester, or is unknown for
  tickets from before revision 0003) through the ``portal`` or the ``api`` channel. Tickets
  an agent ran for someone else, and CLI or worker tickets, are not self-service.
* **Escalation rate**: escalated tickets / decided tickets. Escalated = decided and either
  in state ``escalated`` or handed to a group (``assignment_group`` set), whatever the
  second level did after.
* **Time to resolve**: ``resolved_at − opened_at`` of ``resolved`` tickets, in seconds:
  the median (the mean of the two middle values for an even count), the 90th percentile
  (nearest rank) and the mean; ``None`` when no ticket was resolved. Escalated and closed
  tickets are not resolved, so they are not in it.

Rates are fractions in [0, 1], ``None`` when their denominator is 0. The same figures are
computed per runbook and per category (the runbook's ``category`` stored on the ticket).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from runner.errors import ParameterError
from runner.ledger.store import reading
from runner.ledger.tables import ticket
from runner.timeparse import parse_instant, stored

__all__ = [
    "DECIDED_STATES",
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "REPEAT_WINDOW",
    "SELF_SERVICE_CHANNELS",
    "KpiReport",
    "KpiSet",
    "compute",
    "parse_range",
]

REPEAT_WINDOW = timedelta(days=7)
DECIDED_STATES = frozenset({"resolved", "escalated", "closed"})
SELF_SERVICE_CHANNELS = frozenset({"portal", "api"})
DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass
class KpiSet:
    """The figures for one group of tickets (all, one runbook or one category)."""

    tickets: int = 0
    open: int = 0
    decided: int = 0
    resolved: int = 0
    fcr: int = 0
    escalated: int = 0
    self_service: int = 0
    fcr_rate: float | None = None
    escalation_rate: float | None = None
    self_service_share: float | None = None
    median_resolve_s: float | None = None
    p90_resolve_s: float | None = None
    mean_resolve_s: float | None = None
    _durations: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_durations")
        return out


@dataclass
class KpiReport:
    """KPIs over ``[since, until)`` (stored-form UTC text). ``per_day``: (ISO date, tickets
    opened) for every UTC day the range touches; ``per_day_by_runbook`` /
    ``per_day_by_category``: the same days, counted per runbook / category."""

    since: str
    until: str
    overall: KpiSet
    per_day: list[tuple[str, int]]
    per_runbook: dict[str, KpiSet]
    per_category: dict[str, KpiSet]
    per_day_by_runbook: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    per_day_by_category: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "overall": self.overall.as_dict(),
            "per_day": [{"day": d, "tickets": n} for d, n in self.per_day],
            "per_runbook": {k: v.as_dict() for k, v in self.per_runbook.items()},
            "per_category": {k: v.as_dict() for k, v in self.per_category.items()},
            "per_day_by_runbook": {
                k: [{"day": d, "tickets": n} for d, n in v] for k, v in self.per_day_by_runbook.items()
            },
            "per_day_by_category": {
                k: [{"day": d, "tickets": n} for d, n in v] for k, v in self.per_day_by_category.items()
            },
        }


def parse_range(
    since: object = None, until: object = None, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The KPI range from request values: text for ``runner.timeparse.parse_instant`` or aware
    datetimes; empty *until* = now, empty *since* = ``DEFAULT_DAYS`` before *until*.
    ``ParameterError`` for bad times, an empty or reversed range, or one over ``MAX_DAYS``."""
    given_end = _bound(until, "until")
    end = given_end or (now or datetime.now(UTC))
    start = _bound(since, "since") or _shift(end, -timedelta(days=DEFAULT_DAYS))
    if end <= start:
        if given_end is None:  # no until was typed: it is now, and since lies after it
            raise ParameterError("since must be in the past (the range ends now when until is empty)")
        raise ParameterError("until must be later than since (since is inclusive, until exclusive)")
    if end - start > timedelta(days=MAX_DAYS):
        raise ParameterError("the range is too long: at most %(days)s days", days=MAX_DAYS)
    return start, end


def _bound(value: object, what: str) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip(" ")):
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParameterError("%(what)s has no time zone; give an offset (naive times are not instants)", what=what)
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ParameterError("%(what)s must be a date or time", what=what)
    return parse_instant(value, what=what)


def _shift(moment: datetime, delta: timedelta) -> datetime:
    """*moment* + *delta*, held at the first or last instant there is (year 1 / 9999) instead
    of overflowing: a range may end at 9999-12-31T23:59:59.999999, which ``timeparse`` accepts."""
    try:
        return moment + delta
    except OverflowError:
        return (datetime.max if delta > timedelta(0) else datetime.min).replace(tzinfo=UTC)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _finish(s: KpiSet) -> KpiSet:
    s.fcr_rate = _rate(s.fcr, s.decided)
    s.escalation_rate = _rate(s.escalated, s.decided)
    s.self_service_share = _rate(s.self_service, s.tickets)
    d = sorted(s._durations)
    if d:
        mid = len(d) // 2
        s.median_resolve_s = d[mid] if len(d) % 2 else (d[mid - 1] + d[mid]) / 2
        s.p90_resolve_s = d[max(0, math.ceil(0.9 * len(d)) - 1)]
        s.mean_resolve_s = sum(d) / len(d)
    return s


def compute(engine: Engine, since: datetime, until: datetime) -> KpiReport:
    """Every KPI for tickets opened in ``[since, until)`` (aware datetimes; see the module
    docstring for the definitions). Reads the ticket table only; writes nothing."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ParameterError("since and until must carry a time zone")
    lower, upper = stored(since), stored(until)
    horizon = stored(_shift(until, REPEAT_WINDOW))
    c = ticket.c
    q = (
        select(
            c.id,
            c.requester,
            c.opened_by,
            c.category,
            c.runbook,
            c.channel,
            c.state,
            c.assignment_group,
            c.opened_at,
            c.resolved_at,
        )
        .where(c.opened_at >= lower, c.opened_at < horizon)
        .order_by(c.opened_at, c.id)
    )
    overall = KpiSet()
    per_runbook: dict[str, KpiSet] = defaultdict(KpiSet)
    per_category: dict[str, KpiSet] = defaultdict(KpiSet)
    days: dict[date, int] = {}
    day = since.astimezone(UTC).date()
    while datetime(day.year, day.month, day.day, tzinfo=UTC) < until:
        days[day] = 0
        if day == date.max:  # 9999-12-31: there is no next day
            break
        day += timedelta(days=1)
    # Tickets in the range wait here until we know whether a repeat follows (same requester
    # and category, opened within REPEAT_WINDOW); rows are read in opened_at order.
    last_of: dict[tuple[str, str], tuple[Any, datetime]] = {}
    pending: list[tuple[Any, datetime, bool]] = []  # (row, opened, repeated)
    index: dict[int, int] = {}
    with reading(engine) as conn:
        for row in conn.execute(q):
            opened = _when(row.opened_at)
            key = (row.requester, row.category)
            prev = last_of.get(key)
            if prev is not None and opened - prev[1] < REPEAT_WINDOW and prev[0].id in index:
                i = index[prev[0].id]
                pending[i] = (pending[i][0], pending[i][1], True)
            if row.opened_at < upper:
                index[row.id] = len(pending)
                pending.append((row, opened, False))
            last_of[key] = (row, opened)
    by_runbook: dict[str, dict[date, int]] = defaultdict(lambda: dict.fromkeys(days, 0))
    by_category: dict[str, dict[date, int]] = defaultdict(lambda: dict.fromkeys(days, 0))
    for row, opened, repeated in pending:
        d = opened.date()
        days[d] = days.get(d, 0) + 1
        by_runbook[row.runbook][d] = by_runbook[row.runbook].get(d, 0) + 1
        by_category[row.category][d] = by_category[row.category].get(d, 0) + 1
        for s in (overall, per_runbook[row.runbook], per_category[row.category]):
            _count(s, row, opened, repeated)
    return KpiReport(
        since=lower,
        until=upper,
        overall=_finish(overall),
        per_day=[(d.isoformat(), n) for d, n in sorted(days.items())],
        per_runbook={k: _finish(v) for k, v in sorted(per_runbook.items())},
        per_category={k: _finish(v) for k, v in sorted(per_category.items())},
        per_day_by_runbook={
            k: [(d.isoformat(), n) for d, n in sorted(v.items())] for k, v in sorted(by_runbook.items())
        },
        per_day_by_category={
            k: [(d.isoformat(), n) for d, n in sorted(v.items())] for k, v in sorted(by_category.items())
        },
    )


def _count(s: KpiSet, row: Any, opened: datetime, repeated: bool) -> None:
    s.tickets += 1
    if row.state not in DECIDED_STATES:
        s.open += 1
    else:
        s.decided += 1
    handed_over = row.state == "escalated" or bool(row.assignment_group)
    if handed_over and row.state in DECIDED_STATES:
        s.escalated += 1
    if row.state == "resolved":
        s.resolved += 1
        if not handed_over and not repeated:
            s.fcr += 1
        if row.resolved_at:
            s._durations.append(max(0.0, (_when(row.resolved_at) - opened).total_seconds()))
    if row.channel in SELF_SERVICE_CHANNELS and (row.opened_by is None or row.opened_by == row.requester):
        s.self_service += 1
