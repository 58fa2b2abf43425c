"""Who is recorded: requesters validated like accounts at every entry point (item 16), the
acting person always recorded beside on whose behalf (item 17), stored text printed safely."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from runner import cli
from runner.errors import ParameterError, PolicyDenied
from runner.ledger.tables import audit_event, ticket
from runner.safetext import shown
from runner.service import Firstline
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases

HOSTILE = [
    "<script>",
    "*)(uid=*",
    "alice\u202e",
    "\u202eecila",
    "al\nice",
    "alice\n",
    "al\x00ice",
    "alice\r",
    "al\tice",
    "\x1b[31malice",
    "alice\u2028",
    "ali\u200dce",
    "\u0430lice",  # Cyrillic a: a homoglyph the account rule does not allow
    "[bold]alice[/]",
    "a" * 65,
    "",
    " alice",
    "alice@",
    "a@b@c",
    "X\\Y\\z",
]


def _events(app: Firstline) -> list[dict[str, object]]:
    with app.engine.connect() as c:
        return [dict(r) for r in c.execute(select(audit_event).order_by(audit_event.c.seq)).mappings()]


def _stored_text(app: Firstline) -> str:
    with app.engine.connect() as c:
        rows = [dict(r) for r in c.execute(select(ticket)).mappings()]
    return json.dumps([rows, _events(app)], default=str, ensure_ascii=False)


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_hostile_requester_is_refused_everywhere_and_stored_nowhere(app: Firstline, bad: str) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}] * 4}
    with pytest.raises(ParameterError, match="requester"):
        app.run("fake-unlock", {"user": "alice"}, requester=bad, actor_id="agent7")
    with pytest.raises(ParameterError, match="requester"):
        app.run("fake-unlock", {}, requester=bad, roles={"employee"}, channel="portal")
    with pytest.raises(ParameterError, match="requester"):
        app.plan("fake-unlock", {"user": "alice"}, requester=bad, roles={"agent"})
    with pytest.raises(ParameterError, match="acting person"):
        app.run("fake-unlock", {"user": "alice"}, requester="alice", actor_id=bad or "\n")
    with pytest.raises(ParameterError, match="acting person"):
        app.plan("fake-unlock", {"user": "alice"}, requester="alice", roles={"agent"}, actor_id=bad or "\n")
    with pytest.raises(ParameterError, match="acting person"):
        app.sweep(actor_id=bad or "\n")
    with pytest.raises(ParameterError, match="acting person"):
        app.vet("fake-unlock", "reviewer", actor_id=bad or "\n")
    assert FakeConnector.calls == [] and app.list_tickets() == []
    if bad:
        assert bad not in _stored_text(app)
    refusals = [e for e in _events(app) if e["action"] == "run.refused"]
    assert len(refusals) == 3 and all(e["actor"] in ("agent7", "unidentified") for e in refusals)


@pytest.mark.parametrize("good", ["alice", "a.b-c_d", "alice@example.org", "EXAMPLE\\alice", "A1"])
def test_plain_and_qualified_account_names_are_accepted_as_requesters(app: Firstline, good: str) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}] * 2}
    out = app.run("fake-unlock", {"user": "alice"}, requester=good, actor_id="agent7")
    assert app.ticket(out.ticket_number)["requester"] == good


@pytest.mark.parametrize("by", ["Ada\n(CAB)", "Ada\u202e", "Ada\x1b[31m", "Ada\u200d", "", "   ", "x" * 129])
def test_vet_by_must_be_plain_text(app: Firstline, by: str) -> None:
    with pytest.raises(PolicyDenied, match="--by"):
        app.vet("fake-unlock", by)


def test_the_person_at_the_keyboard_and_the_requester_are_both_recorded(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": False}],
        "unlock_account": [{"unlocked": True, "changed": True}],
    }
    out = app.run("fake-unlock", {}, requester="alice", roles={"employee"}, actor_id="operator1")
    run_events = [e for e in _events(app) if e["ticket"] == out.ticket_number]
    assert [e["action"] for e in run_events] == ["ticket.opened", "fake.unlock_account", "ticket.resolved"]
    assert all(e["actor"] == "operator1" and e["on_behalf_of"] == "alice" for e in run_events)
    assert all(e["actor_roles"] == "employee" for e in run_events)
    t = app.ticket(out.ticket_number)
    assert (t["opened_by"], t["requester"]) == ("operator1", "alice")


def test_a_requester_acting_for_themself_is_recorded_as_both(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}] * 2}
    out = app.run("fake-unlock", {}, requester="alice", roles={"employee"}, channel="portal")
    events = [e for e in _events(app) if e["ticket"] == out.ticket_number]
    assert all(e["actor"] == "alice" and e["on_behalf_of"] == "alice" for e in events)
    assert app.ticket(out.ticket_number)["opened_by"] == "alice"


def test_sweep_and_vet_record_who_ran_them(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}] * 2}
    out = app.run("fake-unlock", {"user": "alice"}, requester="agent7")
    with app.engine.begin() as c:
        c.execute(ticket.update().values(state="in_progress", deadline_at="2000-01-01T00:00:00.000000+00:00"))
    assert app.sweep(actor_id="operator2") == [out.ticket_number]
    swept = _events(app)[-1]
    assert (swept["action"], swept["actor"], swept["actor_roles"]) == ("ticket.escalated", "operator2", "operator")
    app.vet("fake-unlock", "Ada (CAB 2026-11-27)", actor_id="operator3")
    vetted = _events(app)[-1]
    assert vetted["action"] == "runbook.vetted" and vetted["actor"] == "operator3"
    assert json.loads(str(vetted["detail"]))["approved_by"] == "Ada (CAB 2026-11-27)"


def test_the_cli_records_the_os_user_even_for_employee_runs(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_app", lambda: app)
    monkeypatch.setattr(cli, "_me", lambda: "opsuser")
    FakeConnector.script = {"account_status": [{"locked": False}] * 2}
    result = CliRunner().invoke(cli.app, ["run", "fake-unlock", "--role", "employee", "--as", "alice"])
    assert result.exit_code == 0, result.output
    events = [e for e in _events(app) if e["ticket"] == "FL-000001"]
    assert events and all(e["actor"] == "opsuser" and e["on_behalf_of"] == "alice" for e in events)
    assert app.ticket("FL-000001")["opened_by"] == "opsuser"


# -- printing stored text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "visible"),
    [
        ("a\nb", "a\\u000ab"),
        ("a\rb", "a\\u000db"),
        ("a\tb", "a\\u0009b"),
        ("\x1b[31mred", "\\u001b[31mred"),
        ("x\u202ey", "x\\u202ey"),
        ("x\u2066y\u2069", "x\\u2066y\\u2069"),
        ("x\u2028y", "x\\u2028y"),
        ("x\u200dy", "x\\u200dy"),
        ("x\x85y", "x\\u0085y"),
        ("ok ü é", "ok ü é"),
    ],
)
def test_shown_escapes_every_hidden_character(raw: str, visible: str) -> None:
    assert shown(raw) == visible


def test_tickets_list_and_show_cannot_be_forged_by_stored_text(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written before validation existed (or by another writer) still print as one line each."""
    FakeConnector.script = {"account_status": [{"locked": False}] * 2}
    app.run("fake-unlock", {"user": "alice"}, requester="agent7")
    forged = "eve\nFL-999999  resolved    2026-01-01  fake-unlock  x → \u202e[bold red]boss[/]\x1b[2J"
    with app.engine.begin() as c:
        c.execute(ticket.update().values(requester=forged, subject=forged, message=forged))
    monkeypatch.setattr(cli, "_app", lambda: app)
    for args in (["tickets", "list"], ["tickets", "show", "FL-000001"]):
        result = CliRunner().invoke(cli.app, args)
        assert result.exit_code == 0
        lines = [ln for ln in result.output.splitlines() if "FL-999999" in ln]
        assert all(ln.startswith(("FL-000001", "requester ")) for ln in lines), result.output
        assert "\u202e" not in result.output and "\x1b" not in result.output and "\nFL-999999" not in result.output
        assert "[bold red]" in result.output  # shown literally, not interpreted as markup


def test_audit_csv_cells_are_neutralised(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}] * 2}
    app.run("fake-unlock", {"user": "alice"}, requester="agent7")
    with app.engine.begin() as c:  # a value stored by an older version
        c.execute(audit_event.update().where(audit_event.c.seq == 3).values(target="x\ny\u202e,=cmd"))
    csv_text = "".join(app.export_audit("csv"))
    assert "\u202e" not in csv_text and "x\\u000ay\\u202e" in csv_text
    assert len(csv_text.strip().splitlines()) == 1 + len(_events(app))


@pytest.mark.parametrize("blank", ["\u2800", "\u115f", "\u3164\uffa0", "\u034f", " \u2800 ", "\u0301\u0301"])
def test_a_text_that_shows_nothing_is_empty(blank: str) -> None:
    """A reason of a braille blank, a Hangul filler or combining marks alone passed as given
    and showed nothing on the ticket (a tester's find)."""
    from runner.errors import ParameterError
    from runner.safetext import free_text

    with pytest.raises(ParameterError, match="must not be empty"):
        free_text(blank, what="The reason")
    assert free_text(f"caller asked {blank}", what="The reason") == f"caller asked {blank}".strip()
    assert free_text("Ärger é", what="The reason") == "Ärger é"
