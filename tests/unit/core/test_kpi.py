"""KPI definitions (runner.kpi, docs/kpi.md) computed on crafted ticket rows, each rule tested
at its boundary: the 7-day repeat window, escalation, self-service, the range edges,
medians of odd and even counts, empty groups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from runner import kpi
from runner.errors import ParameterError
from tests.databases import MakeDatabaseUrl
from tests.seed import T0, Ledger, open_ledger

pytestmark = pytest.mark.both_databases

DAY = timedelta(days=1)
US = timedelta(microseconds=1)


@pytest.fixture
def ledger(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> Iterator[Ledger]:
    led = open_ledger(make_database_url(tmp_path / "k.db"))
    yield led
    led.engine.dispose()


def report(led: Ledger, since: datetime = T0, until: datetime = T0 + 10 * DAY) -> kpi.KpiReport:
    return kpi.compute(led.engine, since, until)


def test_first_contact_resolution_and_the_seven_day_repeat_window(ledger: Ledger) -> None:
    # alice: a repeat 7 days minus 1 µs later -> the first is not FCR
    ledger.ticket(opened=T0, requester="alice")
    ledger.ticket(opened=T0 + 7 * DAY - US, requester="alice")
    # bob: the next ticket exactly 7 days later is not a repeat -> both FCR
    ledger.ticket(opened=T0, requester="bob")
    ledger.ticket(opened=T0 + 7 * DAY, requester="bob")
    # carol: same time, other category -> not a repeat
    ledger.ticket(opened=T0, requester="carol", category="identity/account")
    ledger.ticket(opened=T0, requester="carol", category="printing")
    r = report(ledger)
    o = r.overall
    assert (o.tickets, o.decided, o.resolved) == (6, 6, 6)
    assert o.fcr == 5 and o.fcr_rate == pytest.approx(5 / 6)


def test_a_repeat_after_the_range_still_counts_and_one_before_does_not(ledger: Ledger) -> None:
    until = T0 + 2 * DAY
    ledger.ticket(opened=T0 - DAY, requester="dave")  # before the range: not in the population
    ledger.ticket(opened=T0, requester="dave")  # in the range; its repeat comes after `until`
    ledger.ticket(opened=until + DAY, requester="dave")
    r = report(ledger, T0, until)
    assert (r.overall.tickets, r.overall.fcr) == (1, 0)


def test_escalated_reassigned_and_closed_tickets_are_not_fcr(ledger: Ledger) -> None:
    ledger.ticket(requester="a1", state="resolved")
    ledger.ticket(requester="a2", state="escalated", reason="connector_error")
    ledger.ticket(requester="a3", state="resolved", assignment_group="service-desk-l2")  # resolved by L2
    ledger.ticket(requester="a4", state="closed", resolution_code="requester_action_needed")
    ledger.ticket(requester="a5", state="in_progress")
    for state in ("queued", "running", "awaiting_approval"):  # open, whatever their group
        ledger.ticket(requester=f"o-{state}", state=state, assignment_group="service-desk-l2")
    o = report(ledger).overall
    assert (o.tickets, o.open, o.decided, o.resolved) == (8, 4, 4, 2)
    assert o.fcr == 1 and o.fcr_rate == pytest.approx(1 / 4)
    assert o.escalated == 2 and o.escalation_rate == pytest.approx(2 / 4)


def test_self_service_is_the_requester_acting_for_themself_on_portal_or_api(ledger: Ledger) -> None:
    ledger.ticket(requester="e1", opened_by="e1", channel="portal")  # yes
    ledger.ticket(requester="e2", opened_by="e2", channel="api")  # yes
    ledger.ticket(requester="e3", opened_by=None, channel="portal")  # yes (before revision 0003)
    ledger.ticket(requester="e4", opened_by="agent7", channel="portal")  # an agent ran it: no
    ledger.ticket(requester="e5", opened_by="e5", channel="cli")  # operator tool: no
    ledger.ticket(requester="e6", opened_by="e6", channel="worker")  # no
    o = report(ledger).overall
    assert o.self_service == 3 and o.self_service_share == pytest.approx(3 / 6)


def test_time_to_resolve_median_p90_and_mean_of_resolved_tickets_only(ledger: Ledger) -> None:
    for i, secs in enumerate((10, 20, 30, 40)):
        ledger.ticket(requester=f"r{i}", resolve_after=timedelta(seconds=secs))
    ledger.ticket(requester="x", state="escalated", resolve_after=timedelta(hours=5))  # not resolved: left out
    o = report(ledger).overall
    assert o.median_resolve_s == 25.0  # even count: mean of the middle two
    assert o.p90_resolve_s == 40.0 and o.mean_resolve_s == 25.0
    ledger.ticket(requester="r9", resolve_after=timedelta(seconds=1000))
    o = report(ledger).overall
    assert o.median_resolve_s == 30.0 and o.p90_resolve_s == 1000.0  # odd count: the middle one


def test_range_is_inclusive_exclusive_and_days_are_utc_days(ledger: Ledger) -> None:
    since, until = T0, T0 + 2 * DAY
    ledger.ticket(opened=since - US, requester="a")
    ledger.ticket(opened=since, requester="b")
    ledger.ticket(opened=until - US, requester="c")
    ledger.ticket(opened=until, requester="d")
    r = report(ledger, since, until)
    assert r.overall.tickets == 2
    assert r.per_day == [("2026-11-02", 1), ("2026-11-03", 0), ("2026-11-04", 1)]  # T0 is 09:00 UTC
    # the same instants given in another offset give the same figures
    plus = timezone(timedelta(hours=5, minutes=30))
    assert report(ledger, since.astimezone(plus), until.astimezone(plus)).overall.tickets == 2


def test_per_runbook_and_per_category(ledger: Ledger) -> None:
    ledger.ticket(requester="a", runbook="unlock-account", category="identity/account")
    ledger.ticket(requester="b", runbook="unlock-account", category="identity/account", state="escalated")
    ledger.ticket(requester="c", runbook="clear-print-queue", category="printing", channel="cli")
    r = report(ledger)
    assert set(r.per_runbook) == {"unlock-account", "clear-print-queue"}
    u = r.per_runbook["unlock-account"]
    assert (u.tickets, u.fcr, u.escalation_rate) == (2, 1, 0.5)
    p = r.per_category["printing"]
    assert (p.tickets, p.fcr_rate, p.self_service_share) == (1, 1.0, 0.0)
    d = r.as_dict()
    assert d["per_category"]["identity/account"]["tickets"] == 2 and "_durations" not in d["overall"]
    assert r.per_day_by_category["printing"][0] == ("2026-11-02", 1)
    assert r.per_day_by_runbook["unlock-account"][0] == ("2026-11-02", 2)
    assert len(r.per_day_by_category["printing"]) == len(r.per_day) == 11  # 09:00 to 09:00 touches 11 days
    assert sum(n for _, n in r.per_day_by_category["printing"]) == 1
    assert d["per_day_by_category"]["printing"][1] == {"day": "2026-11-03", "tickets": 0}


def test_an_empty_range_has_no_rates(ledger: Ledger) -> None:
    o = report(ledger).overall
    assert o.tickets == 0 and o.fcr_rate is None and o.escalation_rate is None
    assert o.self_service_share is None and o.median_resolve_s is None


def test_parse_range_defaults_and_refusals() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert kpi.parse_range(None, None, now=now) == (now - 30 * DAY, now)
    assert kpi.parse_range("2026-11-01T01:00+01:00", "2026-11-02", now=now) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    for since, until in (
        ("2026-11-02", "2026-11-01"),
        ("2026-11-02", "2026-11-02"),
        ("2024-01-01", "2026-01-01"),
        ("soon", None),
        (datetime(2026, 11, 1), None),
    ):
        with pytest.raises(ParameterError):
            kpi.parse_range(since, until, now=now)


def test_a_since_after_now_without_until_says_so() -> None:
    """``/kpi?since=<tomorrow>`` said "until must be later than since" though no until was
    given (a tester's find): the range ends now, so since must lie in the past."""
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    with pytest.raises(ParameterError, match="since must be in the past"):
        kpi.parse_range("2026-12-01", None, now=now)
    with pytest.raises(ParameterError, match="until must be later than since"):
        kpi.parse_range("2026-12-01", "2026-11-30", now=now)
