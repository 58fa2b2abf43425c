"""``resolved_at`` is the time of resolution (ITIL): only a ``resolved`` ticket has one. Every
final state (resolved, escalated, closed; reasons such as never_started or run_lost too)
records when the ticket ended in ``closed_at`` (ledger revision 0015). Seen through the
ticket itself, the auditor's exports and pages, the requester's list and ``tickets show``."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from connectors.base import NotFound, Rejected
from runner import cli, queries
from runner.ledger.audit import Actor
from runner.ledger.tables import ticket
from runner.ledger.tickets import close_ticket
from runner.mytickets import mine
from runner.service import Firstline
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases


def _ended(app: Firstline) -> dict[str, str]:
    """Three tickets: FL-000001 resolved, FL-000002 escalated, FL-000003 closed."""
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}]}
    resolved = app.run("fake-unlock", {"user": "alice"}, requester="alice", roles={"employee"})
    FakeConnector.script = {"reset_password": [Rejected("The directory refused the change.", reason="unwilling")]}
    escalated = app.run("fake-reset", {"user": "alice"}, requester="alice", roles={"employee"})
    FakeConnector.script = {"reset_password": [NotFound("The account does not exist.", requester_action=True)]}
    closed = app.run("fake-reset", {"user": "alice"}, requester="alice", roles={"employee"})
    assert (resolved.state, escalated.state, closed.state) == ("resolved", "escalated", "closed")
    return {o.state: o.ticket_number for o in (resolved, escalated, closed)}


def test_only_a_resolved_ticket_has_resolved_at_and_every_final_one_has_closed_at(app: Firstline) -> None:
    numbers = _ended(app)
    got = {state: app.ticket(number) for state, number in numbers.items()}
    assert got["resolved"]["resolved_at"] and got["resolved"]["resolved_at"] == got["resolved"]["closed_at"]
    for state in ("escalated", "closed"):
        assert got[state]["resolved_at"] is None, state
        assert got[state]["closed_at"] and got[state]["closed_at"] >= got[state]["opened_at"], state


@pytest.mark.parametrize(("state", "reason"), [("escalated", "never_started"), ("escalated", "run_lost")])
def test_the_sweep_and_lease_reasons_end_a_ticket_without_resolving_it(app: Firstline, state: str, reason: str) -> None:
    """The paths that close a ticket nobody ran (never_started) or whose worker died
    (run_lost) go through close_ticket like a run's end."""
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}]}
    number = app.run("fake-unlock", {"user": "alice"}, requester="alice").ticket_number
    ticket_id = int(number.removeprefix("FL-"))
    with app.engine.begin() as conn:  # back to queued, as before a run
        conn.execute(
            update(ticket).where(ticket.c.id == ticket_id).values(state="queued", resolved_at=None, closed_at=None)
        )
        assert close_ticket(
            conn,
            app.audit,
            Actor("system"),
            ticket_id,
            state=state,
            resolution_code=None,
            note=None,
            reason=reason,
            message="ended",
            assignment_group="service-desk-l2",
            meta={},
        )
    t = app.ticket(number)
    assert t["state"] == state and t["reason"] == reason
    assert t["resolved_at"] is None and t["closed_at"]


def test_exports_and_api_items_keep_their_columns_and_add_closed_at_last(app: Firstline) -> None:
    numbers = _ended(app)
    assert queries.TICKET_COLUMNS[-1] == "closed_at"
    assert queries.TICKET_COLUMNS.index("resolved_at") == 4  # existing consumers keep their positions
    everything = queries.TicketFilter()
    rows = list(csv.DictReader(io.StringIO("".join(queries.export_tickets(app.engine, everything, "csv")))))
    by_state = {r["state"]: r for r in rows}
    assert list(rows[0]) == list(queries.TICKET_COLUMNS)
    assert by_state["resolved"]["resolved_at"] and by_state["resolved"]["closed_at"]
    assert by_state["escalated"]["resolved_at"] == "" and by_state["escalated"]["closed_at"]
    assert by_state["closed"]["resolved_at"] == "" and by_state["closed"]["closed_at"]
    lines = [json.loads(x) for x in queries.export_tickets(app.engine, everything, "jsonl")]
    assert {x["state"]: (x["resolved_at"] is None, bool(x["closed_at"])) for x in lines} == {
        "resolved": (False, True),
        "escalated": (True, True),
        "closed": (True, True),
    }
    items = queries.page_tickets(app.engine, everything).items
    assert {i["number"]: i["resolved_at"] is None for i in items} == {
        numbers["resolved"]: False,
        numbers["escalated"]: True,
        numbers["closed"]: True,
    }
    assert all(i["closed_at"] for i in items)


def test_the_requesters_list_says_when_each_ticket_ended(app: Firstline) -> None:
    _ended(app)
    listed = {t["state"]: t for t in mine(app, "alice")}
    assert listed["escalated"]["resolved_at"] is None and listed["escalated"]["closed_at"]
    assert listed["resolved"]["resolved_at"] == listed["resolved"]["closed_at"]


def test_tickets_show_prints_ended_for_every_end_and_resolved_only_for_resolved(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = _ended(app)
    monkeypatch.setattr(cli, "_app", lambda: app)
    runner = CliRunner()
    shown = {}
    for state, number in numbers.items():
        result = runner.invoke(cli.app, ["tickets", "show", number])
        assert result.exit_code == 0, result.output
        shown[state] = next(line for line in result.output.splitlines() if line.startswith("opened "))
    t = {state: app.ticket(number) for state, number in numbers.items()}
    assert f"resolved {t['resolved']['resolved_at']}" in shown["resolved"]
    for state in ("escalated", "closed"):
        assert "resolved" not in shown[state], shown[state]
        assert f"ended {t[state]['closed_at']}" in shown[state] and " closed " not in shown[state], shown[state]

