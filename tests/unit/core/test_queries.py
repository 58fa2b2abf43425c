"""The auditor's queries (runner.queries) on crafted ledgers: every filter, time zones, keyset
pages with equal timestamps, streamed exports with neutralised CSV cells, chain status.

Each test runs on SQLite and, as ``[postgresql]`` (marker ``integration``), on the machine's
PostgreSQL in a database created for the test and dropped afterwards."""

from __future__ import annotations

import csv
import io
import itertools
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from runner import queries
from runner.errors import ParameterError
from runner.ledger.tables import audit_event
from runner.queries import EventFilter, TicketFilter
from tests.databases import MakeDatabaseUrl
from tests.seed import KEY, T0, Ledger, open_ledger

pytestmark = pytest.mark.both_databases


@pytest.fixture
def ledger(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> Iterator[Ledger]:
    led = open_ledger(make_database_url(tmp_path / "q.db"), tmp_path / "cp.jsonl")
    yield led
    led.engine.dispose()


def ids(page: queries.Page, key: str = "id") -> list[int]:
    return [r[key] for r in page.items]


# -- ticket filters -------------------------------------------------------------------------
def test_each_ticket_filter_selects_exactly_its_tickets(ledger: Ledger) -> None:
    a = ledger.ticket(requester="alice", subject="alice", opened_by="agent7", channel="api", runbook="reset-password")
    b = ledger.ticket(requester="bob", subject="bob", opened_by="bob", channel="portal", directory="corp")
    c = ledger.ticket(requester="carol", subject="Carol_50%", opened_by=None, state="escalated", category="printing")
    d = ledger.ticket(
        requester="dave", subject="dave", opened_by="agent7", state="closed", resolution_code="requester_action_needed"
    )
    cases: list[tuple[dict[str, str], list[int]]] = [
        ({"actor": "agent7"}, [d, a]),
        ({"actor": "carol"}, [c]),  # opened_by unknown (before revision 0003): the requester acted
        ({"on_behalf_of": "bob"}, [b]),
        ({"channel": "api"}, [a]),
        ({"runbook": "reset-password"}, [a]),
        ({"state": "escalated"}, [c]),
        ({"state": "closed"}, [d]),
        ({"directory": "corp"}, [b]),
        ({"category": "printing"}, [c]),
        ({"resolution_code": "requester_action_needed"}, [d]),
        ({"target": "CAROL"}, [c]),  # case-insensitive substring
        ({"target": "_50%"}, [c]),  # LIKE wildcards taken literally
        ({"target": "%"}, [c]),
        ({"target": "_"}, [c]),
        ({"ticket": f"FL-{b:06d}"}, [b]),
        ({"ticket": str(b)}, [b]),
        ({"ticket": f"fl-{b:06d}"}, [b]),
        ({"actor": "agent7", "channel": "portal"}, [d]),
        ({"actor": "agent7", "channel": "cli"}, []),
        ({"actor": "nobody"}, []),
        ({}, [d, c, b, a]),
        ({"actor": "", "state": "  "}, [d, c, b, a]),  # empty means any
    ]
    for params, expected in cases:
        f = TicketFilter.from_params(params)
        assert ids(queries.page_tickets(ledger.engine, f)) == expected, params
        assert queries.count_tickets(ledger.engine, f) == len(expected), params


def test_each_event_filter_selects_exactly_its_events(ledger: Ledger) -> None:
    t1 = ledger.ticket(channel="api", directory="corp", state="resolved")
    t2 = ledger.ticket(channel="portal", state="escalated")
    e1 = ledger.event(
        actor="agent7", on_behalf_of="alice", action="ticket.opened", ticket=f"FL-{t1:06d}", target="alice"
    )
    e2 = ledger.event(
        actor="agent7",
        on_behalf_of="alice",
        action="ldap.unlock_account",
        ticket=f"FL-{t1:06d}",
        target="uid=alice,ou=People",
        runbook="unlock-account",
    )
    e3 = ledger.event(actor="bob", action="ticket.escalated", outcome="failure", ticket=f"FL-{t2:06d}", target="bob")
    e4 = ledger.event(actor="admin", action="runbook.vetted", target="=cmd|' /C calc'!A0")
    cases: list[tuple[dict[str, str], list[int]]] = [
        ({"actor": "agent7"}, [e2, e1]),
        ({"on_behalf_of": "alice"}, [e2, e1]),
        ({"action": "ldap.unlock_account"}, [e2]),
        ({"outcome": "failure"}, [e3]),
        ({"runbook": "unlock-account"}, [e2]),
        ({"target": "OU=people"}, [e2]),
        ({"target": "=cmd"}, [e4]),
        ({"ticket": f"FL-{t2:06d}"}, [e3]),
        ({"channel": "api"}, [e2, e1]),  # through the event's ticket
        ({"directory": "corp"}, [e2, e1]),
        ({"state": "escalated"}, [e3]),
        ({"state": "escalated", "actor": "agent7"}, []),
        ({}, [e4, e3, e2, e1]),
    ]
    for params, expected in cases:
        f = EventFilter.from_params(params)
        assert ids(queries.page_events(ledger.engine, f), "seq") == expected, params
        assert queries.count_events(ledger.engine, f) == len(expected), params


def test_events_find_their_ticket_beyond_six_digit_numbers(ledger: Ledger) -> None:
    big = ledger.ticket(id=1234567, channel="worker")
    small = ledger.ticket(id=42, channel="worker")
    e_big = ledger.event(ticket="FL-1234567")
    e_small = ledger.event(ticket="FL-000042")
    ledger.event(ticket="FL-123456")  # what a cut-off number would look like
    assert (big, small) == (1234567, 42)
    page = queries.page_events(ledger.engine, EventFilter.from_params({"channel": "worker"}))
    assert ids(page, "seq") == [e_small, e_big]


# -- time ranges ----------------------------------------------------------------------------
AT = datetime(2026, 11, 30, 3, 22, tzinfo=UTC)  # 04:22 at +01:00


@pytest.mark.parametrize(
    ("since", "until", "inside"),
    [
        ("2026-11-30T04:22+01:00", None, True),  # since is inclusive
        ("2026-11-30T03:22Z", None, True),
        ("2026-11-30T03:22", None, True),  # no offset = UTC
        ("2026-11-30 03:22:00.000001", None, False),
        ("2026-11-30T04:22:00.000001+01:00", None, False),
        ("2026-11-29T22:22-05:00", None, True),  # the same instant
        ("2026-11-29T22:23-05:00", None, False),  # one minute later
        (None, "2026-11-30T04:22+01:00", False),  # until is exclusive
        (None, "2026-11-30T03:22:00.000001Z", True),
        (None, "2026-11-30T04:22:00.000001+0100", True),
        ("2026-11-30", "2026-12-01", True),  # dates: midnight UTC
        ("2026-11-30T04:00+01", "2026-11-30T04:30+01", True),
        (AT, AT + timedelta(microseconds=1), True),  # aware datetimes
        (AT.astimezone(timezone(timedelta(hours=-7))), None, True),
    ],
)
def test_time_range_compares_instants_whatever_the_offset(ledger: Ledger, since: Any, until: Any, inside: bool) -> None:
    ledger.ticket(opened=AT - timedelta(hours=2))
    t = ledger.ticket(opened=AT)
    ledger.event(ts=AT - timedelta(hours=2))
    e = ledger.event(ts=AT)
    params = {"since": since, "until": until}
    got_t = ids(queries.page_tickets(ledger.engine, TicketFilter.from_params(params)))
    got_e = ids(queries.page_events(ledger.engine, EventFilter.from_params(params)), "seq")
    assert (t in got_t) is inside and (e in got_e) is inside


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-02-30"}, "until"),
        ({"since": datetime(2026, 11, 30)}, "since"),  # naive: no defined instant
        ({"since": 12}, "since"),
        ({"since": "2026-12-01", "until": "2026-12-01"}, "until"),
        ({"since": "2026-12-02", "until": "2026-12-01"}, "until"),
        ({"actor": "x" * 300}, "actor"),
        ({"actor": "ali\nce"}, "actor"),
        ({"target": "a\u202eb"}, "target"),
        ({"state": "Resolved; DROP"}, "state"),
        ({"channel": 5}, "channel"),
        ({"ticket": "FL-12a"}, "ticket"),
        ({"ticket": "12345678901"}, "ticket"),
    ],
)
def test_bad_filter_values_are_refused_naming_the_field(params: dict[str, Any], field: str) -> None:
    for cls in (TicketFilter, EventFilter):
        with pytest.raises(ParameterError) as info:
            cls.from_params(params)
        msg = str(info.value)
        assert msg.startswith(field) or f" {field} " in msg or field in msg.split()[0]
        assert "\n" not in msg and len(msg) < 240


@pytest.mark.parametrize(
    ("params", "field", "kinds"),
    [
        ({"runbook": "account status"}, "runbook", (TicketFilter, EventFilter)),
        ({"directory": "EXAMPLE\\corp"}, "directory", (TicketFilter, EventFilter)),
        ({"category": "identity/"}, "category", (TicketFilter,)),
        ({"category": "identity password"}, "category", (TicketFilter,)),
    ],
)
def test_a_filter_value_no_stored_one_can_be_is_refused_not_answered_with_nothing(
    ledger: Ledger, params: dict[str, Any], field: str, kinds: tuple[type, ...]
) -> None:
    """Runbook names, categories and directory keys are stored lower-case: ``directory=CORP``
    answered "no tickets" where ``corp`` had them, looking like an empty result."""
    ledger.ticket(requester="alice", runbook="account-status", directory="corp", category="identity/password")
    for cls in kinds:
        with pytest.raises(ParameterError) as info:
            cls.from_params(params)
        assert str(info.value).startswith(field), str(info.value)
    lower = {k: v.lower() for k, v in params.items() if " " not in v and "\\" not in v and not v.endswith("/")}
    if lower:
        assert queries.count_tickets(ledger.engine, TicketFilter.from_params(lower)) == 1


# -- keyset pages ---------------------------------------------------------------------------
def test_pages_never_skip_or_repeat_with_equal_timestamps(ledger: Ledger) -> None:
    for i in range(23):
        ledger.ticket(opened=T0, requester="alice" if i % 3 else "bob")  # all opened at the same instant
        ledger.event(ts=T0, actor="alice" if i % 3 else "bob")
    for params, kind in (({}, "t"), ({"on_behalf_of": "alice"}, "t"), ({}, "e"), ({"actor": "alice"}, "e")):
        if kind == "t":
            total = queries.count_tickets(ledger.engine, TicketFilter.from_params(params))
        else:
            total = queries.count_events(ledger.engine, EventFilter.from_params(params))
        assert total >= 8
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            if kind == "t":
                page = queries.page_tickets(ledger.engine, TicketFilter.from_params(params), cursor, 4)
                seen += ids(page)
            else:
                page = queries.page_events(ledger.engine, EventFilter.from_params(params), cursor, 4)
                seen += ids(page, "seq")
            pages += 1
            assert len(page.items) <= 4
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            # a row added between two page loads is newer: it never shifts the following pages
            if kind == "t":
                ledger.ticket(opened=T0, requester="alice")
            else:
                ledger.event(ts=T0, actor="alice")
        assert len(seen) == len(set(seen)) == total, (params, kind)
        assert seen == sorted(seen, reverse=True)
        assert pages == -(-total // 4)


def test_a_full_last_page_has_no_next_cursor(ledger: Ledger) -> None:
    for _ in range(4):
        ledger.ticket()
    page = queries.page_tickets(ledger.engine, TicketFilter(), None, 4)
    assert len(page.items) == 4 and page.next_cursor is None


def test_cursors_are_bound_to_their_search(ledger: Ledger) -> None:
    for _ in range(3):
        ledger.ticket(requester="bob")
        ledger.event(actor="bob")
    f = TicketFilter.from_params({"on_behalf_of": "bob"})
    cursor = queries.page_tickets(ledger.engine, f, None, 1).next_cursor
    assert cursor is not None
    assert len(queries.page_tickets(ledger.engine, f, cursor, 1).items) == 1
    with pytest.raises(ParameterError, match="start the search again"):
        queries.page_tickets(ledger.engine, TicketFilter.from_params({"on_behalf_of": "alice"}), cursor, 1)
    with pytest.raises(ParameterError, match="start the search again"):
        queries.page_events(ledger.engine, EventFilter(), cursor, 1)  # a ticket cursor on events
    import base64

    forged = base64.urlsafe_b64encode(b'{"k":"tickets","a":"1 OR 1=1","f":"x"}').decode()
    fingerprint = queries._fingerprint("tickets", f)
    huge = base64.urlsafe_b64encode(json.dumps({"k": "tickets", "a": 10**30, "f": fingerprint}).encode()).decode()
    negative = base64.urlsafe_b64encode(json.dumps({"k": "tickets", "a": -5, "f": fingerprint}).encode()).decode()
    for bad in ("garbage!!", "x" * 500, forged, "eyJ9", "bnVsbA", huge, negative):
        with pytest.raises(ParameterError):
            queries.page_tickets(ledger.engine, f, bad, 1)
    for limit in (0, 201, -1, "abc", "9" * 9, True, 1.5):
        with pytest.raises(ParameterError, match="limit"):
            queries.page_tickets(ledger.engine, f, None, limit)


# -- exports --------------------------------------------------------------------------------
HOSTILE = [
    '=HYPERLINK("http://evil","x")',
    "+1+2",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    " =1",
    "\uff1d1",  # fullwidth '='
    'a\nb,c"d',
    "\u202eevil",
    "plain",
]


def test_csv_export_neutralises_formulas_and_control_characters(ledger: Ledger) -> None:
    for value in HOSTILE:
        ledger.event(actor="agent7", target=value, action="ldap.unlock_account")
    ledger.ticket(subject="=1+1", requester="alice")
    body = "".join(queries.export_events(ledger.engine, EventFilter.from_params({"actor": "agent7"}), "csv"))
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert rows[0] == list(queries.EVENT_COLUMNS)
    assert len(rows) == 1 + len(HOSTILE)  # a stored newline did not start a row
    targets = [r[queries.EVENT_COLUMNS.index("target")] for r in rows[1:]]
    for cell in targets:
        first = cell.lstrip(" ")[:1]
        assert first not in ("=", "+", "-", "@", "\t", "\r", "\uff1d")
        assert "\n" not in cell and "\r" not in cell and "\u202e" not in cell
    assert targets[0] == '\'=HYPERLINK("http://evil","x")'
    assert targets[4] == "\\u0009=1"
    assert targets[6] == "' =1"
    assert targets[8] == 'a\\u000ab,c"d'
    assert targets[-1] == "plain"
    tbody = "".join(queries.export_tickets(ledger.engine, TicketFilter(), "csv"))
    trows = list(csv.DictReader(io.StringIO(tbody, newline="")))
    assert trows[0]["subject"] == "'=1+1" and trows[0]["number"] == "FL-000001"


def test_jsonl_export_keeps_stored_values_exactly_one_record_per_line(ledger: Ledger) -> None:
    for value in [*HOSTILE, "line\u2028sep", "naïve"]:
        ledger.event(target=value)
    lines = list(queries.export_events(ledger.engine, EventFilter(), "jsonl"))
    body = "".join(lines)
    assert body.isascii() and len(body.splitlines()) == len(HOSTILE) + 2
    records = [json.loads(line) for line in body.splitlines()]
    assert [r["target"] for r in records] == [*HOSTILE, "line\u2028sep", "naïve"]
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)  # chain order
    assert all(r["prev_hash"] == p["hash"] for p, r in itertools.pairwise(records))


def test_export_of_the_current_filter_only_and_unknown_format_refused(ledger: Ledger) -> None:
    t = ledger.ticket(requester="bob", channel="api")
    ledger.ticket(requester="alice")
    out = [
        json.loads(x)
        for x in queries.export_tickets(ledger.engine, TicketFilter.from_params({"channel": "api"}), "jsonl")
    ]
    assert [r["id"] for r in out] == [t] and out[0]["params"] == {"user": "alice"}
    with pytest.raises(ParameterError, match="csv or jsonl"):
        queries.export_events(ledger.engine, EventFilter(), "xlsx")


def test_export_is_lazy_batched_and_stops_at_the_rows_present_when_it_started(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(23):
        ledger.event(actor="alice" if i % 2 else "bob")
    statements: list[str] = []
    event.listen(ledger.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    batches: list[int] = []
    real = queries._fetch_batch

    def spy(*args: Any) -> Any:
        rows = real(*args)
        batches.append(len(rows))
        return rows

    monkeypatch.setattr(queries, "_fetch_batch", spy)
    gen = queries.export_events(ledger.engine, EventFilter.from_params({"actor": "alice"}), "jsonl", batch=5)
    assert statements == [] and isinstance(gen, Iterator)  # nothing read before iteration
    first = next(gen)
    assert json.loads(first)["actor"] == "alice"
    ledger.event(actor="alice")  # appended during the export: not part of it
    rest = list(gen)
    assert 1 + len(rest) == 11
    assert batches == [5, 5, 1]


def test_export_memory_stays_bounded_for_a_large_ledger(tmp_path: Path) -> None:
    led = open_ledger(f"sqlite:///{tmp_path / 'big.db'}")
    n = 20_000
    rows = [  # written in one statement: the chain is not what this test is about
        {
            "seq": i + 1,
            "ts": "2026-11-02T09:00:00.000000+00:00",
            "actor": f"user{i % 50}",
            "actor_roles": "",
            "action": "ticket.opened",
            "target": f"user{i}",
            "outcome": "success",
            "detail": json.dumps({"note": "x" * 400}),
            "prev_hash": "0" * 64,
            "hash": "0" * 64,
        }
        for i in range(n)
    ]
    with led.engine.begin() as conn:
        conn.execute(audit_event.insert(), rows)
    del rows
    tracemalloc.start()
    total = 0
    count = 0
    for chunk in queries.export_events(led.engine, EventFilter(), "csv", batch=200):
        total += len(chunk)
        count += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    led.engine.dispose()
    assert count == n + 1
    assert total > 10_000_000
    assert peak < total / 10, (peak, total)  # a few batches, never the whole export


# -- chain status ---------------------------------------------------------------------------
def test_chain_status_reports_verified_then_the_first_altered_event(ledger: Ledger) -> None:
    for i in range(5):
        ledger.event(actor=f"user{i}")
    status = queries.chain_status(ledger.engine, KEY, ledger.checkpoint_file)
    assert status.ok and status.events == 5 and status.first_bad_seq is None
    assert status.as_dict()["checked_at"].endswith("+00:00")
    verifier = queries.ChainVerifier(ledger.engine, KEY, ledger.checkpoint_file, max_age=3600)
    assert verifier.status().ok
    with ledger.engine.begin() as conn:
        conn.execute(update(audit_event).where(audit_event.c.seq == 3).values(actor="mallory"))
    bad = queries.chain_status(ledger.engine, KEY, ledger.checkpoint_file)
    assert not bad.ok and bad.first_bad_seq == 3 and "altered" in bad.problem
    assert verifier.status().ok  # remembered: the signed head did not move, max_age not reached
    ledger.event(actor="user9")  # the head moves: verified again
    assert not verifier.status().ok
    fresh = queries.ChainVerifier(ledger.engine, KEY, ledger.checkpoint_file, max_age=0)
    assert not fresh.status().ok
    assert not queries.chain_status(ledger.engine, b"other-key" * 4, ledger.checkpoint_file).ok


def test_queries_never_write(ledger: Ledger) -> None:
    ledger.ticket()
    ledger.event()
    writes: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *a: Any) -> None:
        if statement.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER"):
            writes.append(statement)

    event.listen(ledger.engine, "before_cursor_execute", spy)
    queries.page_tickets(ledger.engine, TicketFilter())
    queries.page_events(ledger.engine, EventFilter.from_params({"channel": "portal"}))
    queries.count_tickets(ledger.engine, TicketFilter())
    list(queries.export_events(ledger.engine, EventFilter(), "csv"))
    list(queries.export_tickets(ledger.engine, TicketFilter(), "jsonl"))
    queries.chain_status(ledger.engine, KEY, None)
    queries.ChainVerifier(ledger.engine, KEY, None).status()
    assert writes == []
    assert isinstance(datetime.now(UTC), datetime)


def test_revision_0008_indexes_exist_and_serve_the_searches(ledger: Ledger) -> None:
    from sqlalchemy import inspect, select

    from runner.ledger.tables import ticket

    names = {i["name"] for i in inspect(ledger.engine).get_indexes("audit_event")}
    names |= {i["name"] for i in inspect(ledger.engine).get_indexes("ticket")}
    assert {
        "ix_audit_event_ts",
        "ix_audit_event_actor_seq",
        "ix_audit_event_on_behalf_of_seq",
        "ix_audit_event_action_seq",
        "ix_audit_event_ticket",
        "ix_ticket_opened_at",
        "ix_ticket_opened_by_id",
        "ix_ticket_runbook_id",
    } <= names
    if ledger.engine.dialect.name != "sqlite":
        return
    for f, table, key in (
        (EventFilter(actor="a"), audit_event, audit_event.c.seq),
        (EventFilter(on_behalf_of="a"), audit_event, audit_event.c.seq),
        (TicketFilter(actor="a"), ticket, ticket.c.id),
        (TicketFilter(runbook="a"), ticket, ticket.c.id),
    ):
        q = select(table).where(*f.conditions()).order_by(key.desc()).limit(5)
        sql = str(q.compile(ledger.engine, compile_kwargs={"literal_binds": True}))
        with ledger.engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (f, plan)


# -- "part of" through the distinct values (revision 0014) and capped counts -----------------
TARGETS = ("corp:Alice", "corp:alice", "corp:bob", "Carol_50%", "carol 50x", "ÄLICE", "uid=dave,ou=People", None)
NEEDLES = ("alice", "ALICE", "corp:", "_50%", "%", "_", "o", "ä", "Ä", "nobody", "ou=people", "l")


def _naive(ledger: Ledger, table: Any, key: Any, f: EventFilter | TicketFilter) -> list[int]:
    """The rows a substring test of every row selects (``conditions()`` without the values), newest first."""
    from sqlalchemy import select

    with ledger.engine.connect() as conn:
        return list(conn.execute(select(key).where(*f.conditions()).order_by(key.desc())).scalars())


def _walk(page: Any, f: Any, key: str) -> list[int]:
    """Every page of 2 from the first, through the cursors."""
    out: list[int] = []
    cursor = None
    while True:
        p = page(f, cursor)
        out += [r[key] for r in p.items]
        cursor = p.next_cursor
        if cursor is None:
            return out


@pytest.mark.parametrize("values", [queries.TARGET_VALUES, 2])  # 2: broad targets take the scan
def test_a_part_of_target_finds_exactly_what_a_substring_of_every_row_finds(
    ledger: Ledger, values: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "TARGET_VALUES", values)
    for i in range(24):
        target, subject = TARGETS[i % len(TARGETS)], TARGETS[(i * 5) % len(TARGETS)] or "none"
        ledger.event(T0 + timedelta(hours=i), actor=f"agent{i % 3}", target=target)
        ledger.ticket(T0 + timedelta(hours=i), subject=subject, opened_by=f"agent{i % 3}", requester=f"user{i % 4}")
    extra: list[dict[str, str]] = [
        {},
        {"actor": "agent1"},
        {"since": "2026-11-30T04:00Z", "until": "2026-11-30T19:00Z"},
    ]
    seen_some = False
    for needle, more in itertools.product(NEEDLES, extra):
        params = {"target": needle, **more}
        ev = EventFilter.from_params(params)
        tk = TicketFilter.from_params(params)
        expected_ev = _naive(ledger, audit_event, audit_event.c.seq, ev)
        expected_tk = _naive(ledger, queries.ticket, queries.ticket.c.id, tk)
        got_ev = _walk(lambda f, c: queries.page_events(ledger.engine, f, c, 2), ev, "seq")
        got_tk = _walk(lambda f, c: queries.page_tickets(ledger.engine, f, c, 2), tk, "id")
        assert got_ev == expected_ev, params
        assert got_tk == expected_tk, params
        assert queries.count_events(ledger.engine, ev) == len(expected_ev), params
        assert queries.count_tickets(ledger.engine, tk) == len(expected_tk), params
        assert queries.count_events(ledger.engine, ev, cap=3) == min(len(expected_ev), 4), params
        seen_some = seen_some or len(expected_ev) > 4
    assert seen_some  # the cases include pages of several rows and capped counts
    assert _naive(ledger, audit_event, audit_event.c.seq, EventFilter(target="alice")) != []


def test_the_distinct_values_follow_inserts_and_updates_of_the_rows(ledger: Ledger) -> None:
    """The triggers of revision 0014 keep ``audit_target`` / ``ticket_subject``: a value
    written by an insert or changed by an update (an edit the chain then reports) is found."""
    from sqlalchemy import select

    from runner.ledger.tables import audit_target, ticket, ticket_subject

    seq = ledger.event(target="corp:alice")
    ledger.event(target=None)
    tid = ledger.ticket(subject="printer on floor 2")
    with ledger.engine.connect() as conn:
        assert set(conn.execute(select(audit_target.c.value)).scalars()) == {"corp:alice"}
        assert set(conn.execute(select(ticket_subject.c.value)).scalars()) == {"printer on floor 2"}
    with ledger.engine.begin() as conn:
        conn.execute(update(audit_event).where(audit_event.c.seq == seq).values(target="corp:mallory"))
        conn.execute(update(ticket).where(ticket.c.id == tid).values(subject="scanner"))
    page = queries.page_events(ledger.engine, EventFilter.from_params({"target": "MALLORY"}))
    assert ids(page, "seq") == [seq]
    assert ids(queries.page_tickets(ledger.engine, TicketFilter.from_params({"target": "scan"}))) == [tid]
    assert ids(queries.page_tickets(ledger.engine, TicketFilter.from_params({"target": "printer"}))) == []


def test_the_answers_count_stops_at_the_cap_and_says_so(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    for _ in range(4):
        ledger.event(actor="agent7")
    for _ in range(3):
        ledger.event(actor="bob")
        ledger.ticket(requester="bob")
    ledger.ticket(requester="carol")
    reader = queries.LedgerReader(ledger.engine, KEY, None)
    page, count = reader.events({"actor": "agent7"}, limit=2)
    assert count == queries.Count(3, capped=True) and len(page.items) == 2
    assert reader.events({"actor": "bob"})[1] == queries.Count(3, capped=False)
    assert reader.tickets({"on_behalf_of": "bob"})[1] == queries.Count(3, capped=False)
    assert reader.tickets({})[1] == queries.Count(3, capped=True)
    assert queries.count_events(ledger.engine, EventFilter(actor="agent7")) == 4  # uncapped: exact


@pytest.mark.parametrize("probe", [queries.TIME_PROBE, 3])  # 3: wider ranges take the filter's bounds
def test_time_ranges_select_exactly_their_rows_when_clocks_went_backwards(
    ledger: Ledger, probe: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key bounds of a time range (``_time_keys`` then the filter's own index) hold
    whatever order the times were written in: pages and counts equal a test of every row."""
    monkeypatch.setattr(queries, "TIME_PROBE", probe)
    hours = [5, 1, 9, 3, 7, 0, 8, 2, 6, 4, 9, 1]  # keys rise, times jump back and forth
    for i, h in enumerate(hours):
        ledger.event(T0 + timedelta(hours=h), actor=f"agent{i % 2}", outcome="refused" if i % 3 else "success")
        ledger.ticket(T0 + timedelta(hours=h), runbook="a" if i % 2 else "b")
    ranges = [(2, 7), (0, 2), (8.5, 23), (4, 4.5), (0, 23)]  # hours after T0
    seen = set()
    for (since, until), more in itertools.product(ranges, [{}, {"outcome": "refused"}, {"actor": "agent1"}]):
        at = [(T0 + timedelta(hours=h)).isoformat() for h in (since, until)]
        params = {"since": at[0], "until": at[1], **more}
        ev = EventFilter.from_params(params)
        expected = _naive(ledger, audit_event, audit_event.c.seq, ev)
        seen.add(len(expected))
        assert _walk(lambda f, c: queries.page_events(ledger.engine, f, c, 2), ev, "seq") == expected, params
        assert queries.count_events(ledger.engine, ev) == len(expected), params
        tk = TicketFilter.from_params({k: v for k, v in params.items() if k != "outcome"} | {"runbook": "a"})
        expected_tk = _naive(ledger, queries.ticket, queries.ticket.c.id, tk)
        assert _walk(lambda f, c: queries.page_tickets(ledger.engine, f, c, 2), tk, "id") == expected_tk, params
        assert queries.count_tickets(ledger.engine, tk, cap=100) == len(expected_tk), params
    assert 0 in seen and max(seen) >= 5  # empty ranges and ranges of several pages


def test_an_agents_reason_is_in_the_ticket_answers_and_exports(ledger: Ledger) -> None:
    """The reason an agent types for a one-click fix (``ticket.work_note``) is what an auditor
    needs beside the ticket: the API items, both exports and the CSV formula guard carry it."""
    ledger.ticket(requester="alice", opened_by="agent7", work_note="=HYPERLINK(x) called at 08:55, locked out")
    ledger.ticket(requester="bob")
    items = queries.page_tickets(ledger.engine, TicketFilter()).items
    assert [i["work_note"] for i in items] == [None, "=HYPERLINK(x) called at 08:55, locked out"]
    rows = list(csv.DictReader(io.StringIO("".join(queries.export_tickets(ledger.engine, TicketFilter(), "csv")))))
    assert [r["work_note"] for r in rows] == ["'=HYPERLINK(x) called at 08:55, locked out", ""]
    lines = [
        json.loads(x) for x in "".join(queries.export_tickets(ledger.engine, TicketFilter(), "jsonl")).splitlines()
    ]
    assert lines[0]["work_note"] == "=HYPERLINK(x) called at 08:55, locked out"


def test_stored_words_match_in_any_ascii_case(ledger: Ledger) -> None:
    """``outcome=FAILURE``, ``action=TICKET.OPENED`` and ``directory=CORP`` were 422 while
    ``actor`` matched in any case (a tester's find): every stored word is lower case, so a
    value in another ASCII case finds what its lower case finds (never an empty look-alike)."""
    ledger.ticket(requester="alice", runbook="account-status", directory="corp", category="identity/password")
    upper = {"directory": "CORP", "runbook": "Account-Status", "category": "Identity/Password"}
    assert queries.count_tickets(ledger.engine, TicketFilter.from_params(upper)) == 1
    f = EventFilter.from_params(
        {"outcome": "FAILURE", "action": "Ticket.Opened", "directory": "CORP", "channel": "Api"}
    )
    assert (f.outcome, f.action, f.directory, f.channel) == ("failure", "ticket.opened", "corp", "api")
    t = TicketFilter.from_params({"state": "Escalated", "runbook": "Account-Unlock"})
    assert (t.state, t.runbook) == ("escalated", "account-unlock")
    with pytest.raises(ParameterError):
        EventFilter.from_params({"outcome": "FAİLURE"})  # a dotted capital I is no ASCII letter: refused
