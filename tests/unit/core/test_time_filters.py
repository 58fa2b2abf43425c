"""Time filters compare instants (item 14): one parser (runner.timeparse) for every spelling,
and the SQL filter on the stored UTC text is right whatever offset the caller used."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from runner.service import Firstline
from runner.timeparse import EXAMPLES, TimeParseError, parse_instant, stored
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases

T = datetime(2026, 11, 30, 3, 22, tzinfo=UTC)  # 04:22 at +01:00


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T04:22+01:00", T),
        ("2026-11-30T04:22+0100", T),
        ("2026-11-30T04:22+01", T),
        ("2026-11-30T03:22Z", T),
        ("2026-11-30t03:22z", T),
        ("2026-11-30 03:22", T),
        ("2026-11-30T03:22", T),  # no offset means UTC
        ("2026-11-29T21:52-05:30", T),
        ("2026-11-30T17:22+14:00", T),  # Kiritimati: the furthest ahead a clock runs
        ("2026-11-29T15:22-12:00", T),  # Baker Island: the furthest behind
        ("2026-11-30T03:22:00", T),
        ("2026-11-30T03:22:00.000000Z", T),
        ("2026-11-30T03:22:07.5Z", T + timedelta(seconds=7, microseconds=500000)),
        ("2026-11-30T04:22:07,123456+01:00", T + timedelta(seconds=7, microseconds=123456)),
        ("2026-11-30", datetime(2026, 11, 30, tzinfo=UTC)),
        # beyond microseconds (nanoseconds from other systems): cut, never rounded up
        ("2026-11-30T03:22:07.1234567", T + timedelta(seconds=7, microseconds=123456)),
        ("2026-11-30T04:22:07.123456789+01:00", T + timedelta(seconds=7, microseconds=123456)),
        ("2026-11-30T03:22:07.999999999Z", T + timedelta(seconds=7, microseconds=999999)),
        ("9999-12-31T23:59:59.999999999Z", datetime.max.replace(tzinfo=UTC)),
        ("0001-01-01T00:00Z", datetime.min.replace(tzinfo=UTC)),
        ("  2026-11-30T03:22Z  ", T),
    ],
)
def test_every_spelling_of_the_same_instant_parses_to_it(text: str, expected: datetime) -> None:
    got = parse_instant(text)
    assert got == expected and got.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "yesterday",
        "2026-13-01",
        "2026-02-30",
        "2026-11-30T24:00",
        "2026-11-30T03:60",
        "2026-11-30T03:22+24:00",
        "2026-11-30T03:22+01:60",
        "2026-11-30T03",
        "30-11-2026",
        "2026/11/30",
        "1764472920",
        "",
        "   ",
        "x" * 10_000,
        "2026-11-30T03:22Z\n",
        "２０２６-11-30",  # fullwidth digits
        "٢٠٢٦-١١-٣٠",  # Arabic-Indic digits
        "0001-01-01T00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59-01:00",  # after year 9999 in UTC
    ],
)
def test_values_that_are_not_times_are_refused_with_a_short_clean_message(text: str) -> None:
    with pytest.raises(TimeParseError) as info:
        parse_instant(text, what="--since")
    msg = str(info.value)
    assert msg.startswith("--since") and EXAMPLES in msg
    assert len(msg) < 260 and "\n" not in msg


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("10000-01-01", "'10000-01-01': the year 10000 is out of range (years 0001 to 9999, four digits)"),
        ("+10000-01-01T00:00Z", "the year +10000 is out of range"),
        ("0000-06-01", "the year 0000 is out of range"),
        ("2026-13-01", "'2026-13-01': there is no month 13 (months 01 to 12)"),
        ("2026-00-10", "there is no month 00"),
        ("2026-02-30", "'2026-02-30': there is no day 30 in month 02 of 2026 (it has 28 days)"),
        ("2025-04-31T10:00Z", "there is no day 31 in month 04 of 2025 (it has 30 days)"),
        ("2026-11-30T24:00", "24:00 is not a time of day (hours 00 to 23, minutes and seconds 00 to 59)"),
        ("2026-11-30T23:59:60Z", "23:59:60 is not a time of day"),
        ("2026-11-30T03:22+01:60", "the offset +01:60 is out of range (clocks run from -12:00 to +14:00)"),
        ("2026-11-30T03:22+15:00", "the offset +15:00 is out of range"),  # no clock: a typo (a tester's find)
        ("2026-11-30T03:22+14:01", "the offset +14:01 is out of range"),
        ("2026-11-30T03:22-12:30", "the offset -12:30 is out of range"),
        ("2026-11-30T03:22+2359", "the offset +2359 is out of range"),
        ("9999-12-31T23:59:59.999999999-00:01", "is outside the times that can be stored"),
        ("0001-01-01T00:00+01:00", "is outside the times that can be stored"),
        ("yesterday", "'yesterday' is not a date or time"),
        ("２０２６-11-30", "'２０２６-11-30' is not a date or time"),  # quoted as typed (was '????-11-30')
        ("2026-11-30\u200f", "'2026-11-30?' is not a date or time"),  # a direction mark: not shown as such
        # the faulty part at the end is shown (the first 24 characters alone hid it)
        ("2026-12-02T00:57:11.110890+1:00", "'2026-12-02T00:57:11.110890+1:00' is not a date or time"),
        ("2026-12-02T00:57:11.110890 UTC", "'2026-12-02T00:57:11.110890 UTC' is not a date or time"),
        ("2026-12-02T00:57:11.1108901234567890123456+01:00xyz", "'2026-12-02T00:57:11.1108…34567890123456+01:00xyz'"),
    ],
)
def test_the_message_says_which_part_is_wrong_and_the_format_expected(text: str, says: str) -> None:
    with pytest.raises(TimeParseError) as info:
        parse_instant(text, what="--since")
    msg = str(info.value)
    assert says in msg and f"use e.g. {EXAMPLES}" in msg, msg
    assert msg.startswith("--since '") and len(msg) < 260


def test_a_leap_day_is_a_date() -> None:
    assert parse_instant("2024-02-29") == datetime(2024, 2, 29, tzinfo=UTC)
    with pytest.raises(TimeParseError, match="it has 28 days"):
        parse_instant("2100-02-29")


def test_stored_form_is_the_ledger_form() -> None:
    assert stored(T) == "2026-11-30T03:22:00.000000+00:00"
    assert stored(T.astimezone(timezone(timedelta(hours=5, minutes=45)))) == stored(T)
    with pytest.raises(ValueError, match="naive"):
        stored(datetime(2026, 11, 30))


def _run_three(app: Firstline) -> list[dict[str, object]]:
    FakeConnector.script = {"account_status": [{"locked": False}] * 6}
    for user in ("alice", "bob", "carol"):
        app.run("fake-unlock", {"user": user}, requester="agent7")
    return [json.loads(line) for line in app.export_audit("jsonl")]


def _shifted(moment: datetime, hours: int, minutes: int = 0) -> str:
    """*moment* spelled in another offset, with microseconds, e.g. 2026-11-30T09:52:07.123456+05:30."""
    return moment.astimezone(timezone(timedelta(hours=hours, minutes=minutes))).isoformat()


@pytest.mark.parametrize(("hours", "minutes"), [(1, 0), (-5, -30), (13, 0), (0, 0), (-12, 0)])
def test_audit_since_and_until_select_by_instant_in_any_offset(app: Firstline, hours: int, minutes: int) -> None:
    events = _run_three(app)
    times = [datetime.fromisoformat(str(e["ts"])) for e in events]
    pivot_i = len(events) // 2
    pivot = times[pivot_i]
    since = _shifted(pivot, hours, minutes)
    got = [json.loads(line)["seq"] for line in app.export_audit("jsonl", since=since)]
    assert got == [e["seq"] for e, t in zip(events, times, strict=True) if t >= pivot] and got
    got = [json.loads(line)["seq"] for line in app.export_audit("jsonl", until=since)]
    assert got == [e["seq"] for e, t in zip(events, times, strict=True) if t < pivot] and got
    both = [json.loads(line)["seq"] for line in app.export_audit("jsonl", since=times[1], until=times[-1])]
    assert both == [e["seq"] for e in events[1:-1]]


def test_the_reported_case_returns_the_later_events(app: Firstline) -> None:
    """`--since 2026-11-30T04:22+01:00` compared as text matched nothing ('+' sorts before digits)."""
    events = _run_three(app)
    first = datetime.fromisoformat(str(events[0]["ts"]))
    plus_one = first.astimezone(timezone(timedelta(hours=1))).strftime("%Y-%m-%dT%H:%M%z")
    plus_one = plus_one[:-2] + ":" + plus_one[-2:]  # 2026-11-30T04:22+01:00, minute precision
    got = list(app.export_audit("jsonl", since=plus_one))
    assert len(got) == len(events)


def test_tickets_list_filters_by_opened_at(app: Firstline) -> None:
    _run_three(app)
    rows = app.list_tickets(limit=10)
    opened = sorted(datetime.fromisoformat(r["opened_at"]) for r in rows)
    got = app.list_tickets(since=_shifted(opened[1], -5, -30), limit=10)
    assert sorted(r["number"] for r in got) == ["FL-000002", "FL-000003"]
    got = app.list_tickets(until=_shifted(opened[1], 9), limit=10)
    assert [r["number"] for r in got] == ["FL-000001"]
    assert app.list_tickets(since=opened[-1] + timedelta(microseconds=1), limit=10) == []
    with pytest.raises(TimeParseError):
        app.list_tickets(since="2026-13-01")
    with pytest.raises(Exception, match="timezone"):
        app.list_tickets(since=datetime(2026, 11, 30))
