"""Run leases (runner/leases.py), on SQLite and PostgreSQL: a claimed run carries a lease its process
renews; once a dead worker's lease has expired the sweep re-queues the run when no
state-changing step had started (and it completes, each change made once) or escalates it
``run_lost`` naming the step in flight; a live lease is left alone, and a worker whose
lease was taken back starts no further step. Real worker deaths (SIGKILL) are in
tests/integration/core/test_leases_processes.py."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select, update

from runner import leases
from runner.ledger import progress as progress_mod
from runner.ledger.audit import now
from runner.ledger.lease_tables import run_lease, target_lock
from runner.ledger.store import transaction
from runner.ledger.tables import audit_event, step_result, ticket
from runner.service import Firstline
from runner.settings import Settings
from tests.fakes import FakeConnector, Manual

pytestmark = pytest.mark.both_databases  # tests/databases.py: once on SQLite, once on PostgreSQL



@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"run_lease_seconds": 3.0, "run_max_attempts": 2})


def _submit(app: Firstline, user: str = "alice", runbook: str = "fake-unlock", **params: Any) -> Any:
    return app.submit(
        runbook, {"user": user, **params}, requester="agent7", roles={"agent"}, channel="api", dispatcher=Manual()
    )


ACTIONS = {"check": "account_status", "unlock": "unlock_account", "verify": "account_status", "reset": "reset_password"}


def _died(app: Firstline, ticket_id: int, steps: list[tuple[str, str]], attempts: int = 1) -> str:
    """What a worker leaves behind when it is killed: the ticket running, its lease (already
    past: nobody renews it) and step rows (*steps*: step id, status) up to where it died."""
    lease = leases.Lease(ticket_id)
    with transaction(app.engine) as conn:
        assert progress_mod.claim(conn, ticket_id, 3600)
        leases.take(conn, lease, -1)
        conn.execute(update(run_lease).where(run_lease.c.ticket_id == ticket_id).values(attempts=attempts))
        conn.execute(
            target_lock.insert().values(
                target_key="account:*:x", ticket_id=ticket_id, owner=lease.owner, lease_until=now(), acquired_at=now()
            )
        )
        for seq, (step_id, status) in enumerate(steps, 1):
            row = {"step_id": step_id, "connector": "fake", "action": ACTIONS[step_id], "target": "f1"}
            progress_mod.step_started(conn, ticket_id, seq, {**row, "started_at": now()})
            if status != "running":
                finished = {**row, "status": status, "inputs": "{}", "outputs": "{}", "reason": None, "message": ""}
                progress_mod.step_finished(
                    conn, ticket_id, seq, {**finished, "attempts": 1, "started_at": now(), "finished_at": now()}
                )
    return lease.owner


def _ticket(app: Firstline, ticket_id: int) -> dict[str, Any]:
    with app.engine.connect() as c:
        return dict(c.execute(select(ticket).where(ticket.c.id == ticket_id)).mappings().one())


def _steps(app: Firstline, ticket_id: int) -> list[tuple[int, str, str, str | None]]:
    with app.engine.connect() as c:
        q = select(step_result.c.seq, step_result.c.step_id, step_result.c.status, step_result.c.reason)
        return [tuple(r) for r in c.execute(q.where(step_result.c.ticket_id == ticket_id).order_by(step_result.c.seq))]


def _events(app: Firstline, number: str) -> list[dict[str, Any]]:
    with app.engine.connect() as c:
        q = select(audit_event).where(audit_event.c.ticket == number).order_by(audit_event.c.seq)
        return [dict(r) for r in c.execute(q).mappings()]


def _calls(action: str) -> int:
    return [c[1] for c in FakeConnector.calls].count(action)


def test_a_lost_run_that_only_checked_is_requeued_redispatched_and_completes_once(app: Firstline) -> None:
    sub = _submit(app)
    owner = _died(app, sub.ticket_id, [("check", "running")])
    manual = Manual()
    app.runs.dispatcher = manual
    assert app.sweep() == []  # not escalated...
    row = _ticket(app, sub.ticket_id)
    assert row["state"] == "queued" and manual.sent == [sub.ticket_id]  # ...re-queued and handed over again
    assert _steps(app, sub.ticket_id) == [(1, "check", "failed", "run_lost")]
    resumed = [e for e in _events(app, sub.ticket_number) if e["action"] == "run.resumed"]
    assert len(resumed) == 1 and resumed[0]["actor"] == "system:sweeper" and resumed[0]["reason"] == "lease_expired"
    assert '"step_in_flight":"check"' in resumed[0]["detail"] and owner in resumed[0]["detail"]
    with app.engine.connect() as c:
        assert c.execute(select(target_lock)).all() == []  # the dead run's locks went with it
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    out = app.execute(sub.ticket_id)
    assert out is not None and out.state == "resolved"
    assert _calls("unlock_account") == 1
    assert _steps(app, sub.ticket_id) == [
        (1, "check", "failed", "run_lost"),
        (2, "check", "ok", None),
        (3, "unlock", "ok", None),
        (4, "verify", "ok", None),
    ]
    with app.engine.connect() as c:
        assert c.execute(select(run_lease)).all() == []
    assert app.verify_audit().ok


def test_without_a_dispatcher_the_sweep_runs_the_requeued_run_itself(app: Firstline) -> None:
    sub = _submit(app)
    _died(app, sub.ticket_id, [])  # claimed, died before its first step
    app.runs.dispatcher = None
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    assert app.sweep() == []
    assert _ticket(app, sub.ticket_id)["state"] == "resolved"
    assert _calls("unlock_account") == 0


@pytest.mark.parametrize(
    ("steps", "named"),
    [([("check", "ok"), ("unlock", "running")], "unlock"), ([("check", "ok"), ("unlock", "ok")], "unlock")],
    ids=["change-in-flight", "change-done-then-died"],
)
def test_a_lost_run_that_started_a_change_is_escalated_run_lost_naming_the_step(
    app: Firstline, steps: list[tuple[str, str]], named: str
) -> None:
    sub = _submit(app)
    _died(app, sub.ticket_id, steps)
    manual = Manual()
    app.runs.dispatcher = manual
    assert app.sweep() == [sub.ticket_number]
    row = _ticket(app, sub.ticket_id)
    assert (row["state"], row["reason"]) == ("escalated", "run_lost") and f"step '{named}'" in row["message"]
    assert manual.sent == [] and FakeConnector.calls == []  # never run again
    lost = [e for e in _events(app, sub.ticket_number) if e["action"] in ("run.lost", "ticket.escalated")]
    assert [(e["action"], e["actor"], e["reason"]) for e in lost] == [
        ("run.lost", "system:sweeper", "state_changing_step_started"),
        ("ticket.escalated", "system:sweeper", "run_lost"),
    ]
    assert '"state_changing_started":["unlock"]' in lost[0]["detail"]
    # the change the run was inside when it died: the run's own actor, outcome unknown
    # (PCI DSS 10.2.2); a change that had finished was already audited by the run itself
    unknown = [(e["action"], e["actor"], e["outcome"], e["target"]) for e in _events(app, sub.ticket_number)
               if e["action"] == "fake.unlock_account"]  # fmt: skip
    in_flight = steps[-1][1] == "running"
    assert unknown == ([("fake.unlock_account", "agent7", "unknown", "f1:alice")] if in_flight else [])
    assert app.execute(sub.ticket_id) is None and app.sweep() == []
    with app.engine.connect() as c:
        assert c.execute(select(run_lease)).all() == [] and c.execute(select(target_lock)).all() == []
    assert app.verify_audit().ok


def test_a_run_lost_on_its_last_attempt_is_escalated(app: Firstline) -> None:
    sub = _submit(app)
    _died(app, sub.ticket_id, [("check", "running")], attempts=2)
    assert app.sweep() == [sub.ticket_number]
    row = _ticket(app, sub.ticket_id)
    assert (row["state"], row["reason"]) == ("escalated", "run_lost") and "started 2 times" in row["message"]
    assert [e["reason"] for e in _events(app, sub.ticket_number) if e["action"] == "run.lost"] == ["attempts_exhausted"]


def test_a_lost_run_whose_secret_values_are_gone_is_escalated_as_changing_nothing(app: Firstline) -> None:
    sub = _submit(app, "bob", runbook="fake-reset", new_password="Very-Long-Secret-Value-42")
    _died(app, sub.ticket_id, [])  # the secret went to the claim that died
    assert app.sweep() == [sub.ticket_number]
    row = _ticket(app, sub.ticket_id)
    assert (row["state"], row["reason"]) == ("escalated", "run_lost") and "nothing was changed" in row["message"]
    assert FakeConnector.calls == []


def test_a_live_lease_and_a_running_ticket_without_a_lease_are_left_alone(app: Firstline) -> None:
    live, old = _submit(app, "alice"), _submit(app, "bob")
    with transaction(app.engine) as conn:
        assert progress_mod.claim(conn, live.ticket_id, 3600)
        leases.take(conn, leases.Lease(live.ticket_id), 30)  # renewed by a live worker
        assert progress_mod.claim(conn, old.ticket_id, 3600)  # claimed by a process before leases
    assert app.sweep() == []
    assert _ticket(app, live.ticket_id)["state"] == _ticket(app, old.ticket_id)["state"] == "running"


def test_a_lease_is_recovered_once_by_concurrent_sweepers(app: Firstline) -> None:
    sub = _submit(app)
    owner = _died(app, sub.ticket_id, [("check", "running")])
    assert leases.recover(
        app.engine, app.audit, app.runs.connectors, max_attempts=2, start_within=600, escalation_group="l2"
    ).requeued == [sub.ticket_id]
    # a second sweeper that saw the same expired lease acts on nothing (compare-and-set on the owner)
    with transaction(app.engine) as conn:
        assert (
            leases._recover_one(
                conn,
                app.audit,
                app.runs.connectors,
                sub.ticket_id,
                owner,
                actor=leases.SWEEPER,
                max_attempts=2,
                start_within=600,
                escalation_group="l2",
            )
            is None
        )
    assert [e["action"] for e in _events(app, sub.ticket_number)].count("run.resumed") == 1


def _blocking(gate: threading.Event, started: threading.Event, result: dict[str, Any]) -> Any:
    def check(_inputs: dict[str, Any]) -> dict[str, Any]:
        started.set()
        assert gate.wait(30)
        return result

    return check


def test_the_heartbeat_renews_the_lease_while_a_step_runs(app: Firstline) -> None:
    sub = _submit(app)
    gate, started = threading.Event(), threading.Event()
    FakeConnector.script = {"account_status": [_blocking(gate, started, {"locked": False}), {"locked": False}]}
    runner = threading.Thread(target=app.execute, args=(sub.ticket_id,))
    runner.start()
    try:
        assert started.wait(30)
        with app.engine.connect() as c:
            first = c.execute(select(run_lease.c.lease_until, run_lease.c.owner)).one()
        renewed = first
        for _ in range(300):  # until the heartbeat has renewed it (bounded)
            with app.engine.connect() as c:
                renewed = c.execute(select(run_lease.c.lease_until, run_lease.c.owner)).one()
            if renewed.lease_until > first.lease_until:
                break
            time.sleep(0.05)
        assert renewed.lease_until > first.lease_until and renewed.owner == first.owner
        assert app.sweep() == [] and _ticket(app, sub.ticket_id)["state"] == "running"
    finally:
        gate.set()
        runner.join(30)
    assert _ticket(app, sub.ticket_id)["state"] == "resolved"
    with app.engine.connect() as c:
        assert c.execute(select(run_lease)).all() == []  # released with the run


def test_a_worker_whose_lease_was_taken_back_starts_no_further_step_and_closes_nothing(app: Firstline) -> None:
    """A worker paused past its lease (not dead): the sweep re-queues its run; when the worker
    wakes it finishes its check, finds its lease gone and stops; the run then completes once."""
    sub = _submit(app)
    gate, started = threading.Event(), threading.Event()
    FakeConnector.script = {
        "account_status": [_blocking(gate, started, {"locked": True}), {"locked": True}, {"locked": False}],
        "unlock_account": [{}],
    }
    app.runs.settings = app.settings.model_copy(update={"run_lease_seconds": 300.0})
    manual = Manual()
    app.runs.dispatcher = manual
    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(app.execute(sub.ticket_id)))
    runner.start()
    try:
        assert started.wait(30)
        # The worker stalls (a stopped VM: its heartbeat stalls too) and its lease runs out.
        (held,) = leases.keeper_for(app.runs).held()
        held.renewed = float("-inf")  # no heartbeat beats in this test (lease 300 s) to change it
        with transaction(app.engine) as conn:
            conn.execute(update(run_lease).values(lease_until="2000-01-01T00:00:00.000000+00:00"))
        assert app.sweep() == [] and manual.sent == [sub.ticket_id]
    finally:
        gate.set()
        runner.join(30)
    assert outcome[0] is not None and outcome[0].state == "queued"  # the stalled worker closed nothing
    assert _calls("unlock_account") == 0 and _ticket(app, sub.ticket_id)["state"] == "queued"
    out = app.execute(sub.ticket_id)
    assert out is not None and out.state == "resolved" and _calls("unlock_account") == 1
    assert app.verify_audit().ok


def test_the_sweeper_runs_at_least_once_per_lease(app: Firstline) -> None:
    sweeper = app.runs.start_sweeper(3600)
    try:
        assert sweeper._interval == app.settings.run_lease_seconds
    finally:
        sweeper.stop()
