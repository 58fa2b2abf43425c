"""A state-changing step that was tried and failed is in the audit log (PCI DSS v4.0.1
10.2.2: "success or failure"), with outcome ``failure`` when the connector says nothing was
applied and ``unknown`` when it may have been; read-only steps and changes never tried
(the account check failed first) add no such event. Before, only successes were recorded:
an unlock whose answer was lost left no trace for the auditor but a failed step row."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import ConnectorError, Rejected, Unreachable
from runner.ledger.tables import audit_event
from runner.service import Firstline
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases


def _change_events(app: Firstline, number: str) -> list[dict[str, Any]]:
    with app.engine.connect() as c:
        rows = c.execute(
            select(audit_event).where(audit_event.c.ticket == number, audit_event.c.action == "fake.unlock_account")
        ).mappings()
        return [dict(r) for r in rows]


def _unlock(app: Firstline, error: ConnectorError | None) -> Any:
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": False}],
        # three times: the runbook retries a transient error
        "unlock_account": [error] * 3 if error is not None else [{"unlocked": True}],
    }
    return app.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"})


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (Rejected("the directory refused the change"), "failure"),
        (Unreachable("the directory cannot be reached"), "failure"),
        (Unreachable("lost during the unlock; it may or may not have been applied", outcome_unknown=True), "unknown"),
        (ConnectorError("cancelled", reason="cancelled", outcome_unknown=True), "unknown"),
    ],
)
def test_a_failed_change_is_audited_with_its_outcome(app: Firstline, error: ConnectorError, outcome: str) -> None:
    out = _unlock(app, error)
    assert out.state == "escalated"
    events = _change_events(app, out.ticket_number)
    assert [e["outcome"] for e in events] == [outcome]
    assert events[0]["actor"] == "agent7" and events[0]["target"].endswith(":alice")
    assert f'"reason":"{error.reason}"' in events[0]["detail"].replace(" ", "")
    assert app.verify_audit().ok


def test_a_crash_inside_the_change_is_unknown(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}],
        "unlock_account": [RuntimeError("the library broke half-way")],
    }
    out = app.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"})
    assert out.state == "escalated"
    assert [e["outcome"] for e in _change_events(app, out.ticket_number)] == ["unknown"]


def test_a_retry_after_an_unknown_outcome_that_fails_stays_unknown(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}],
        "unlock_account": [
            Unreachable("lost during the unlock; it may or may not have been applied", outcome_unknown=True),
            Unreachable("the directory cannot be reached"),
            Unreachable("the directory cannot be reached"),
        ],
    }
    out = app.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"})
    assert out.state == "escalated"
    assert [e["outcome"] for e in _change_events(app, out.ticket_number)] == ["unknown"]


def test_a_success_is_still_one_success_event(app: Firstline) -> None:
    out = _unlock(app, None)
    assert out.state == "resolved"
    assert [e["outcome"] for e in _change_events(app, out.ticket_number)] == ["success"]


def test_a_change_never_tried_adds_no_event(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [Unreachable("the directory cannot be reached")]}
    out = app.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"})
    assert out.state == "escalated"
    assert _change_events(app, out.ticket_number) == []
