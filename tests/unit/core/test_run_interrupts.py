"""Ctrl-C (or SIGTERM, which the CLI turns into the same ``KeyboardInterrupt``) outside a
connector's own call: while a step waits to be tried again, while a step is shown or
recorded, between steps. The run stops there and its ticket ends escalated
``interrupted`` at once, with no step row left ``running``; before, the interrupt escaped
the run and the ticket stayed ``running`` until the sweep (``run_lost``). The interrupt
during the action itself is tested against real hosts in
tests/integration/hosts/test_cli_interrupt.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import Unreachable
from runner import engine, leases, runs
from runner.ledger.lease_tables import run_lease, target_lock
from runner.ledger.tables import audit_event, step_result, ticket
from runner.service import Firstline
from runner.texts import localize
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases


def _ledger(app: Firstline) -> tuple[list[tuple[str, str | None]], list[tuple[str, str, str | None]], list[str]]:
    with app.engine.connect() as c:
        tickets = [
            (r.state, r.reason) for r in c.execute(select(ticket.c.state, ticket.c.reason).order_by(ticket.c.id))
        ]
        steps = [
            (r.step_id, r.status, r.reason)
            for r in c.execute(
                select(step_result.c.step_id, step_result.c.status, step_result.c.reason).order_by(step_result.c.seq)
            )
        ]
        actions = [f"{r.action}:{r.outcome}" for r in c.execute(select(audit_event).order_by(audit_event.c.seq))]
    return tickets, steps, actions


def _run(app: Firstline, **kwargs: Any) -> Any:
    try:
        return app.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"}, **kwargs)
    except KeyboardInterrupt:  # caught here, or it would stop pytest itself
        pytest.fail("the interrupt escaped the run: its ticket stays running until the sweep")


def _interrupt_at(event: str, step: str) -> Any:
    def progress(kind: str, data: Mapping[str, Any]) -> None:
        if kind == event and data.get("step") == step:
            raise KeyboardInterrupt

    return progress


def test_an_interrupt_while_waiting_to_retry_ends_the_run(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeConnector.script = {
        "account_status": [{"exists": True, "locked": True}],
        "unlock_account": [Unreachable("directory down"), {"unlocked": True}],
    }

    def interrupted_sleep(_seconds: float) -> None:
        raise KeyboardInterrupt

    assert engine.execute.__kwdefaults__ is not None
    monkeypatch.setitem(engine.execute.__kwdefaults__, "sleep", interrupted_sleep)
    out = _run(app)
    assert (out.state, out.reason) == ("escalated", "interrupted")
    assert out.message == engine.INTERRUPTED_WAITING_MESSAGE
    assert [c[1] for c in FakeConnector.calls] == ["account_status", "unlock_account"]  # not tried again
    tickets, steps, actions = _ledger(app)
    assert tickets == [("escalated", "interrupted")]
    assert steps == [("check", "ok", None), ("unlock", "failed", "interrupted")]
    assert "fake.unlock_account:failure" in actions  # the try that was made, as an auditor needs it
    assert actions[-1] == "ticket.escalated:failure"
    assert app.verify_audit().ok


@pytest.mark.parametrize(
    ("event", "step", "steps"),
    [
        # shown as started: the step's row is written, the action not yet called
        ("step.started", "unlock", [("check", "ok", None), ("unlock", "failed", "interrupted")]),
        # shown as finished: the step is done; the run stops before the next one
        ("step.finished", "unlock", [("check", "ok", None), ("unlock", "ok", None)]),
        # the first step, before anything changed
        ("step.started", "check", [("check", "failed", "interrupted")]),
    ],
    ids=["step-started", "step-finished", "first-step"],
)
def test_an_interrupt_between_steps_ends_the_run_and_its_ticket(
    app: Firstline, event: str, step: str, steps: list[tuple[str, str, str | None]]
) -> None:
    FakeConnector.script = {
        "account_status": [{"exists": True, "locked": True}, {"exists": True, "locked": False}],
        "unlock_account": [{"unlocked": True}],
    }
    out = _run(app, progress=_interrupt_at(event, step))
    assert (out.state, out.reason) == ("escalated", "interrupted")
    tickets, rows, actions = _ledger(app)
    assert tickets == [("escalated", "interrupted")]
    assert rows == steps  # none left "running"
    assert len(FakeConnector.calls) == sum(1 for r in steps if r[1] == "ok")  # nothing ran after the interrupt
    assert actions[-1] == "ticket.escalated:failure"
    assert app.verify_audit().ok


def test_the_interrupt_messages_read_in_dutch() -> None:
    for text in (engine.INTERRUPTED_MESSAGE, engine.INTERRUPTED_WAITING_MESSAGE):
        assert localize(text, "nl") != text


@pytest.mark.parametrize(
    "fault",
    [
        lambda: BrokenPipeError(32, "Broken pipe"),
        lambda: SystemExit(1),  # what Rich raises on a closed pipe
        lambda: UnicodeEncodeError("ascii", "✓", 0, 1, "ordinal not in range(128)"),
        lambda: OSError(28, "No space left on device"),
    ],
    ids=["broken-pipe", "rich-exit", "encoding", "disk-full"],
)
def test_a_display_that_fails_does_not_decide_the_run(app: Firstline, fault: Any) -> None:
    """A progress display that fails (the CLI's stdout closed, full or unable to encode) was
    a failure of the run: the ticket stayed open (``SystemExit``) or was escalated
    ``internal_error``. The display is switched off instead, and the run ends as it would."""
    FakeConnector.script = {
        "account_status": [{"exists": True, "locked": True}, {"exists": True, "locked": False}],
        "unlock_account": [{"unlocked": True}],
    }
    shown: list[str] = []

    def display(kind: str, data: Mapping[str, Any]) -> None:
        shown.append(kind)
        raise fault()

    out = _run(app, progress=display)
    assert (out.state, out.reason) == ("resolved", None)
    assert shown == ["ticket.opened"]  # failed once, then not called again
    tickets, steps, _actions = _ledger(app)
    assert tickets == [("resolved", None)]
    assert [s[1] for s in steps] == ["ok", "ok", "ok"]


def test_an_interrupt_before_the_claim_ends_the_queued_ticket(app: Firstline) -> None:
    """Ctrl-C while the new ticket is shown (``ticket.opened``), after its commit and before
    the inline claim: the ticket was left ``queued`` until the sweep called it never started."""
    FakeConnector.script = {"account_status": [{"exists": True, "locked": True}]}

    def progress(kind: str, _data: Mapping[str, Any]) -> None:
        if kind == "ticket.opened":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the CLI still stops (exit 130)
        app.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"}, progress=progress)
    tickets, steps, actions = _ledger(app)
    assert tickets == [("escalated", "interrupted")]
    assert steps == []
    assert FakeConnector.calls == []
    assert actions[-1] == "ticket.escalated:failure"
    assert localize(runs.INTERRUPTED_UNSTARTED_MESSAGE, "nl") != runs.INTERRUPTED_UNSTARTED_MESSAGE
    assert app.verify_audit().ok


def test_an_interrupt_right_after_the_claim_ends_the_ticket_and_frees_the_target(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between the claim's commit and the first step: the ticket was left ``running``
    with its lease and target locks until they expired and the sweep found it."""
    FakeConnector.script = {"account_status": [{"exists": True, "locked": True}]}
    real = leases.LeaseKeeper.hold

    def hold_then_interrupt(keeper: leases.LeaseKeeper, lease: leases.Lease) -> None:
        real(keeper, lease)
        raise KeyboardInterrupt

    monkeypatch.setattr(leases.LeaseKeeper, "hold", hold_then_interrupt)
    out = _run(app)
    assert (out.state, out.reason) == ("escalated", "interrupted")
    tickets, steps, _actions = _ledger(app)
    assert tickets == [("escalated", "interrupted")]
    assert steps == []
    assert FakeConnector.calls == []
    with app.engine.connect() as c:  # released at once, not left to expire
        assert c.execute(select(run_lease)).all() == []
        assert c.execute(select(target_lock)).all() == []
    assert app.verify_audit().ok
