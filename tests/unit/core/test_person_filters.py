"""One person, one name: the canonical principal every entry point records
(``Directories.principal``), the stored forms a person filter stands for
(``Directories.search_forms``) and the auditor's searches over both old and new forms
(``runner.queries``), and enumerated filters that refuse a misspelled value (``NotOneOf``).

Runs on SQLite and, as ``[postgresql]``, on the machine's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import queries
from runner.errors import ParameterError
from runner.ledger import audit as audit_mod
from runner.ledger import tickets as tickets_mod
from runner.queries import EventFilter, LedgerReader, NotOneOf, TicketFilter
from runner.routing import Directories, Directory, parse_directories
from runner.runs import CHANNELS
from tests.databases import MakeDatabaseUrl
from tests.seed import KEY, Ledger, open_ledger

pytestmark = pytest.mark.both_databases


class _Target:
    connector = "ldap"


TARGETS = {"corp": _Target(), "ad": _Target()}
TWO = parse_directories(
    {
        "corp": {"target": "corp", "domains": ["example.org"], "netbios": "EXAMPLE-ORG"},
        "ad": {"target": "ad", "domains": ["example.test"], "netbios": "EXAMPLE"},
    },
    TARGETS,
    {"ldap": "corp"},
)
NO_DEFAULT = Directories(dict(TWO.entries), None)
BARE = Directories({"corp": Directory("corp", "corp", "corp")}, "corp")  # the implicit one: no domains


@pytest.fixture
def ledger(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> Iterator[Ledger]:
    led = open_ledger(make_database_url(tmp_path / "q.db"), tmp_path / "cp.jsonl")
    yield led
    led.engine.dispose()


# -- the canonical principal ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "recorded"),
    [
        ("fltry2", "fltry2@example.org"),  # bare: the default directory, as at sign-in
        ("FLTRY2", "fltry2@example.org"),
        ("fltry2@example.org", "fltry2@example.org"),
        ("FLTRY2@EXAMPLE.ORG", "fltry2@example.org"),
        ("EXAMPLE-ORG\\fltry2", "fltry2@example.org"),
        ("example-org\\Fltry2", "fltry2@example.org"),
        ("bob@example.test", "bob@example.test"),
        ("EXAMPLE\\Bob", "bob@example.test"),
    ],
)
def test_every_sign_in_form_records_the_principal_the_portal_records(typed: str, recorded: str) -> None:
    assert TWO.principal(typed) == recorded


def test_a_directory_without_a_domain_records_the_bare_name_and_no_directories_keep_it() -> None:
    assert BARE.principal("Alice") == "alice"
    assert Directories().principal("Alice") == "Alice"  # nothing declared: recorded as given


@pytest.mark.parametrize(
    ("dirs", "typed", "says"),
    [
        (TWO, "alice@elsewhere.example", "not one this service desk serves; known: example.org"),
        (TWO, "NOPE\\alice", "not one this service desk serves"),
        (NO_DEFAULT, "alice", "could be in any of the directories (ad, corp)"),
        (TWO, "a@b@example.org", "one '@' or one"),
    ],
)
def test_a_name_that_resolves_to_no_directory_is_refused_clearly(dirs: Directories, typed: str, says: str) -> None:
    with pytest.raises(ParameterError, match=r"^--as") as err:
        dirs.principal(typed, "--as")
    assert says in str(err.value)


# -- the forms a person filter stands for ----------------------------------------------------
def test_a_bare_name_stands_for_the_person_in_every_directory_and_the_old_bare_form() -> None:
    forms = TWO.search_forms("Demo-Agent")
    assert set(forms) == {
        "Demo-Agent",
        "demo-agent",
        "demo-agent@example.org",
        "EXAMPLE-ORG\\demo-agent",
        "demo-agent@example.test",
        "EXAMPLE\\demo-agent",
    }


def test_a_qualified_name_stands_for_its_directory_only() -> None:
    corp = set(TWO.search_forms("EXAMPLE-ORG\\DEMO-AGENT"))
    assert {"demo-agent@example.org", "EXAMPLE-ORG\\demo-agent", "demo-agent"} <= corp  # bare: default dir
    assert not any(f.endswith("example.test") or f.startswith("EXAMPLE\\") for f in corp)
    ad = set(TWO.search_forms("demo-agent@EXAMPLE.TEST"))
    assert "demo-agent@example.test" in ad and "demo-agent" not in ad  # a bare name never meant ad


@pytest.mark.parametrize("typed", ["svc@elsewhere.example", "OTHER\\svc", "a@b@c", "firstline"])
def test_a_name_of_no_declared_directory_is_searched_as_given(typed: str) -> None:
    assert typed in TWO.search_forms(typed)
    if "@" in typed or "\\" in typed:
        assert TWO.search_forms(typed) == (typed,)


# -- the searches ---------------------------------------------------------------------------
def test_person_filters_find_old_and_new_forms_in_every_sign_in_form(ledger: Ledger) -> None:
    reader = LedgerReader(ledger.engine, KEY, None, directories=lambda: TWO)
    old = ledger.ticket(requester="fltry2", subject="fltry2", opened_by="fltry2", channel="cli")
    new = ledger.ticket(requester="fltry2@example.org", subject="x", opened_by="fltry2@example.org")
    other = ledger.ticket(requester="fltry2@example.test", subject="y", opened_by="agent-9@example.org")
    e_old = ledger.event(actor="fltry2", on_behalf_of="fltry2")
    e_new = ledger.event(actor="fltry2@example.org", on_behalf_of="fltry2@example.org")
    e_ad = ledger.event(actor="fltry2@example.test", on_behalf_of="fltry2@example.test")
    for typed in ("fltry2@example.org", "FLTRY2@Example.Org", "EXAMPLE-ORG\\fltry2", "example-org\\FLTRY2"):
        page, count = reader.tickets({"on_behalf_of": typed})
        assert [t["id"] for t in page.items] == [new, old] and count.value == 2, typed
        page, count = reader.tickets({"actor": typed})
        assert [t["id"] for t in page.items] == [new, old] and count.value == 2, typed
        page, count = reader.events({"actor": typed})
        assert [e["seq"] for e in page.items] == [e_new, e_old] and count.value == 2, typed
        page, count = reader.events({"on_behalf_of": typed})
        assert [e["seq"] for e in page.items] == [e_new, e_old] and count.value == 2, typed
    for typed in ("fltry2", "FLTRY2"):  # bare: every directory
        page, count = reader.tickets({"on_behalf_of": typed})
        assert [t["id"] for t in page.items] == [other, new, old] and count.value == 3
        page, count = reader.events({"actor": typed})
        assert [e["seq"] for e in page.items] == [e_ad, e_new, e_old] and count.value == 3
    # the export of the same filter
    lines = list(reader.export("events", "jsonl", {"actor": "EXAMPLE-ORG\\FLTRY2"}))
    assert len(lines) == 2
    # without directories (a reader of the ledger alone) the filter is exact, as before
    assert queries.count_events(ledger.engine, EventFilter.from_params({"actor": "FLTRY2"})) == 0


def test_pages_over_several_forms_never_skip_or_repeat(ledger: Ledger) -> None:
    reader = LedgerReader(ledger.engine, KEY, None, directories=lambda: TWO)
    made = []
    for i in range(9):  # three forms, interleaved, all at the same instant
        form = ("ann", "ann@example.org", "ann@example.test")[i % 3]
        made.append(ledger.ticket(requester=form, subject=f"s{i}", opened_by=form if i % 2 else None))
        ledger.event(actor=form, on_behalf_of=form)
    for kind in ("tickets", "events"):
        for key in ("actor", "on_behalf_of"):
            seen: list[int] = []
            cursor = None
            while True:
                page, count = (reader.tickets if kind == "tickets" else reader.events)({key: "Ann"}, cursor, 2)
                seen += [r["id" if kind == "tickets" else "seq"] for r in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert count.value == 9 and len(seen) == 9 and seen == sorted(seen, reverse=True), (kind, key)
            assert len(set(seen)) == 9


def test_many_forms_with_a_time_range_and_a_target_still_answer_exactly(ledger: Ledger) -> None:
    reader = LedgerReader(ledger.engine, KEY, None, directories=lambda: TWO)
    a = ledger.event(actor="ann@example.org", on_behalf_of="bob", target="print-01")
    ledger.event(actor="ann@example.org", on_behalf_of="bob", target="other")
    b = ledger.event(actor="ann", on_behalf_of="bob@example.test", target="print-02")
    params = {"actor": "ann", "on_behalf_of": "BOB", "target": "print", "since": "2000-01-01"}
    page, count = reader.events(params)
    assert [e["seq"] for e in page.items] == [b, a] and count.value == 2


# -- enumerated filters ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "params", "field"),
    [
        (TicketFilter, {"state": "bogus"}, "state"),
        (TicketFilter, {"state": "Resolvd"}, "state"),  # "Resolved" is resolved: stored words match in any case
        (TicketFilter, {"channel": "web"}, "channel"),
        (EventFilter, {"outcome": "bogus"}, "outcome"),
        (EventFilter, {"outcome": "succes"}, "outcome"),
        (EventFilter, {"state": "open"}, "state"),
        (EventFilter, {"channel": "email"}, "channel"),
    ],
)
def test_a_misspelled_enumerated_value_is_refused_listing_the_values(
    build: Any, params: dict[str, str], field: str
) -> None:
    with pytest.raises(NotOneOf) as err:
        build.from_params(params)
    message = str(err.value)
    assert message.startswith(f"{field} '") and "is not a valid value; choose one of: " in message
    assert all(v in message for v in queries.ENUMERATED[field])
    assert isinstance(err.value, ParameterError)  # the portal's 422


def test_every_enumerated_value_is_accepted_and_the_lists_are_the_runners_own() -> None:
    assert set(queries.CHANNEL_VALUES) == set(CHANNELS)
    assert set(tickets_mod.FINAL_STATES) | set(tickets_mod.OPEN_STATES) <= set(queries.STATE_VALUES)
    assert queries.OUTCOME_VALUES == audit_mod.OUTCOMES
    for field, values in queries.ENUMERATED.items():
        for value in values:
            build = EventFilter if field == "outcome" else TicketFilter
            assert getattr(build.from_params({field: value}), field) == value


def test_the_audit_log_refuses_an_outcome_the_filter_would_not_know(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="not one of"):
        ledger.event(outcome="sucess")


def test_the_refusal_is_translated_with_its_values_kept() -> None:
    err = NotOneOf("state", "bogus", ("queued", "resolved"))
    dutch = {NotOneOf.TEMPLATE: "%(field)s '%(value)s' is geen geldige waarde; kies een van: %(values)s"}
    assert (
        err.translated(lambda m: dutch.get(m, m))
        == "state 'bogus' is geen geldige waarde; kies een van: queued, resolved"
    )
