"""Per-target serialisation (runner/target_locks.py), on SQLite and PostgreSQL: keys are normalised as the
targets compare names (an account in any case on a case-insensitive directory, a CUPS
queue in any ASCII case), a lock is one atomic row that a live holder keeps and a dead
holder's lease gives up, and a run on a busy target waits (with a progress row) and then
runs, or escalates ``target_busy`` naming the other ticket."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from runner import target_locks
from runner.ledger.lease_tables import run_lease, target_lock
from runner.ledger.tables import step_result, ticket
from runner.runbook import Runbook, load_runbook
from runner.service import Firstline
from runner.settings import Settings
from tests.fakes import FakeConnector, Manual

pytestmark = pytest.mark.both_databases  # tests/databases.py: once on SQLite, once on PostgreSQL

ROUTED = """\
schema_version: 1
name: routed-unlock
title: {en: Unlock}
category: identity/account
audience: [agent]
parameters:
  - {name: user, type: account}
  - {name: directory, type: directory}
steps:
  - {id: unlock, connector: fake, target: "{{ params.directory.target }}", action: unlock_account,
     with: {user: "{{ params.user }}"}}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "done"}
"""
HOSTS = """\
schema_version: 1
name: host-work
title: {en: Host work}
category: hardware/printer
audience: [agent]
parameters:
  - {name: thing, type: choice, source: things}
steps:
  - {id: act, connector: fake, target: "{{ params.thing.target }}", action: unlock_account, with: {user: x}}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "done"}
"""
READ_ONLY = """\
schema_version: 1
name: status-only
title: {en: Status}
category: identity/account
audience: [agent]
parameters:
  - {name: user, type: account}
steps:
  - {id: check, connector: fake, action: account_status, with: {user: "{{ params.user }}"}}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "done"}
"""



def _book(tmp_path: Path, text: str) -> Runbook:
    name = text.split("name: ", 1)[1].split("\n", 1)[0]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_runbook(path, {"fake": FakeConnector})


def _keys(app: Firstline, rb: Runbook, values: dict[str, Any]) -> list[str]:
    return target_locks.target_keys(rb, values, lambda p: app.runs._target_key(rb, values, p))


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"run_lease_seconds": 30.0, "target_wait_seconds": 0.0})


# -- keys ------------------------------------------------------------------------------
def test_an_account_in_any_case_is_one_key_per_directory(app: Firstline, tmp_path: Path) -> None:
    rb = _book(tmp_path, ROUTED)
    corp = {"key": "corp", "target": "f1"}
    alice = _keys(app, rb, {"user": "Alice", "directory": corp})
    assert alice == _keys(app, rb, {"user": "alice", "directory": corp}) == ["account:corp:alice"]
    assert _keys(app, rb, {"user": "ALICE", "directory": {"key": "ad", "target": "f2"}}) == ["account:ad:alice"]
    assert _keys(app, rb, {"user": "alice2", "directory": corp}) != alice
    unrouted = app.runbook("fake-unlock")
    assert _keys(app, unrouted, {"user": "Alice"}) == _keys(app, unrouted, {"user": "alice"}) == ["account:*:alice"]


def test_a_queue_is_one_key_in_any_ascii_case_on_its_server_only(app: Firstline, tmp_path: Path) -> None:
    rb = _book(tmp_path, HOSTS)

    def key(**thing: str) -> list[str]:
        return _keys(app, rb, {"thing": thing})

    cups = key(target="print-01", queue="BugTest-Case")
    assert cups == key(target="print-01", queue="bugtest-case") == ["queue:print-01:bugtest-case"]
    assert key(target="print-02", queue="bugtest-case") != cups  # another server's queue
    assert key(target="print-01", queue="office-1") != cups
    assert key(target="print-01", queue="\uff42ugtest-case") != cups  # fullwidth b: another name, never folded
    assert key(target="print-01", service="Spooler") == key(target="print-01", service="spooler")
    assert key(target="h", path="C:\\Temp\\Lab\\") == key(target="h", path="c:\\temp\\lab") == ["path:h:c:\\temp\\lab"]
    assert key(target="h", path="/") == ["path:h:/"]
    assert key(target="print-01", label="no object") == ["host:print-01"]


def test_a_runbook_that_changes_nothing_takes_no_lock(app: Firstline, tmp_path: Path) -> None:
    assert _keys(app, _book(tmp_path, READ_ONLY), {"user": "alice"}) == []


def test_a_long_key_is_clipped_with_a_digest_and_stays_distinct(app: Firstline, tmp_path: Path) -> None:
    rb = _book(tmp_path, HOSTS)
    a = _keys(app, rb, {"thing": {"target": "h", "path": "/srv/" + "a" * 400}})[0]
    b = _keys(app, rb, {"thing": {"target": "h", "path": "/srv/" + "a" * 399 + "b"}})[0]
    assert len(a) <= 255 and len(b) <= 255 and a != b and "#sha256:" in a


# -- the lock ----------------------------------------------------------------------------
def test_a_lock_is_held_until_released_and_a_dead_holders_lease_gives_it_up(app: Firstline) -> None:
    engine = app.engine
    assert target_locks.try_take(engine, "account:*:alice", ticket_id=1, owner="w1", seconds=30) is None
    assert target_locks.try_take(engine, "account:*:alice", ticket_id=1, owner="w1", seconds=30) is None  # ours
    assert target_locks.try_take(engine, "account:*:alice", ticket_id=2, owner="w2", seconds=30) == 1
    assert target_locks.try_take(engine, "account:*:bob", ticket_id=2, owner="w2", seconds=30) is None
    target_locks.release(engine, "w1")
    assert target_locks.try_take(engine, "account:*:alice", ticket_id=2, owner="w2", seconds=30) is None
    # a holder that died: its lease (here already past) is not renewed, and the lock is taken over
    assert target_locks.try_take(engine, "queue:p:q", ticket_id=3, owner="w3", seconds=-1) is None
    assert target_locks.try_take(engine, "queue:p:q", ticket_id=4, owner="w4", seconds=30) is None
    # an earlier claim of the same ticket (re-queued by the sweep) leaves its lock to the new claim
    assert target_locks.try_take(engine, "queue:p:q", ticket_id=4, owner="w4-again", seconds=30) is None
    with engine.connect() as c:
        rows = {r.target_key: (r.ticket_id, r.owner) for r in c.execute(select(target_lock))}
    assert rows == {"account:*:alice": (2, "w2"), "account:*:bob": (2, "w2"), "queue:p:q": (4, "w4-again")}


def test_acquire_gives_up_after_the_wait_and_keeps_nothing(app: Firstline) -> None:
    engine = app.engine
    assert target_locks.try_take(engine, "k:b", ticket_id=1, owner="w1", seconds=30) is None
    busy = target_locks.acquire(engine, ["k:b", "k:a"], ticket_id=2, owner="w2", seconds=30, wait=0)
    assert busy == target_locks.Busy("k:b", 1) and busy.holder_number == "FL-000001"
    with engine.connect() as c:  # k:a (taken first, in sorted order) was given back
        assert c.execute(select(target_lock.c.target_key, target_lock.c.owner)).all() == [("k:b", "w1")]


def test_acquire_waits_for_the_holder_with_backoff_and_then_takes_it(app: Firstline) -> None:
    engine = app.engine
    assert target_locks.try_take(engine, "k:a", ticket_id=1, owner="w1", seconds=30) is None
    told: list[tuple[int, str]] = []
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        if len(slept) == 3:
            target_locks.release(engine, "w1")  # the holder finishes while we wait

    got = target_locks.acquire(
        engine,
        ["k:a"],
        ticket_id=2,
        owner="w2",
        seconds=30,
        wait=60,
        on_wait=lambda h, k: told.append((h, k)),
        sleep=sleep,
    )
    assert got is None and told == [(1, "k:a")]
    assert slept == sorted(slept) and slept[0] < slept[-1] <= 1.0  # backing off
    with engine.connect() as c:
        assert c.execute(select(target_lock.c.owner)).scalar_one() == "w2"


# -- runs ------------------------------------------------------------------------------
def _submit(app: Firstline, user: str) -> Any:
    return app.submit(
        "fake-unlock", {"user": user}, requester="agent7", roles={"agent"}, channel="api", dispatcher=Manual()
    )


def test_a_run_on_a_busy_account_escalates_target_busy_naming_the_other_ticket(app: Firstline) -> None:
    first, second = _submit(app, "alice"), _submit(app, "Alice")
    assert (
        target_locks.try_take(app.engine, "account:*:alice", ticket_id=first.ticket_id, owner="w1", seconds=30) is None
    )
    out = app.execute(second.ticket_id)
    assert out is not None and (out.state, out.reason) == ("escalated", "target_busy")
    assert first.ticket_number in out.message and "same account" in out.message
    assert FakeConnector.calls == []  # nothing touched the account
    with app.engine.connect() as c:
        row = c.execute(select(ticket).where(ticket.c.id == second.ticket_id)).mappings().one()
        assert (row["state"], row["reason"]) == ("escalated", "target_busy")
        assert c.execute(select(target_lock.c.owner)).all() == [("w1",)]  # the other's lock is untouched
        assert c.execute(select(run_lease)).all() == []  # the lease went with the run


def test_a_run_waits_for_the_other_run_on_its_account_and_then_runs(app: Firstline) -> None:
    app.runs.settings = app.settings.model_copy(update={"target_wait_seconds": 120.0})
    first, second = _submit(app, "alice"), _submit(app, "ALICE")
    assert (
        target_locks.try_take(app.engine, "account:*:alice", ticket_id=first.ticket_id, owner="w1", seconds=30) is None
    )
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(app.execute(second.ticket_id)))
    runner.start()
    try:
        seen = None
        for _ in range(600):  # until the waiting row shows (bounded; not a timing assertion)
            rows = app.follow(second.ticket_id, 0).steps
            seen = next((s for s in rows if s["step_id"] == "target_wait"), None)
            if seen is not None:
                break
            time.sleep(0.05)
        assert seen is not None and seen["status"] == "running"
        assert seen["message"] == f"Waiting for {first.ticket_number} on account:*:alice"
        assert FakeConnector.calls == []  # no step while the other run holds the account
    finally:
        target_locks.release(app.engine, "w1")
        runner.join(60)
    out = done[0]
    assert out is not None and out.state == "resolved"
    with app.engine.connect() as c:
        steps = c.execute(
            select(step_result.c.seq, step_result.c.step_id, step_result.c.status)
            .where(step_result.c.ticket_id == second.ticket_id)
            .order_by(step_result.c.seq)
        ).all()
        assert c.execute(select(target_lock)).all() == []  # released at the end
    assert [tuple(s) for s in steps] == [
        (1, "target_wait", "ok"),
        (2, "check", "ok"),
        (3, "unlock", "ok"),
        (4, "verify", "ok"),
    ]
    assert app.verify_audit().ok


def test_a_run_takes_its_locks_with_its_claim(app: Firstline) -> None:
    """The keys worked out at submit (run_context["locks"]) are inserted in the claim's
    transaction (one transaction fewer), whichever process claims; released with the ticket."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(_c: object, _cur: object, statement: str, *_a: object) -> None:
        found = re.search(r"(?:INTO|UPDATE|FROM)\s+\"?(\w+)", statement)
        seen.append(f"{statement.split(None, 1)[0]} {found.group(1) if found else ''}")

    def commit(_c: object) -> None:
        seen.append("COMMIT")

    sub = _submit(app, "alice")
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    event.listen(app.engine, "before_cursor_execute", record)
    event.listen(app.engine, "commit", commit)
    try:
        out = app.execute(sub.ticket_id)
    finally:
        event.remove(app.engine, "before_cursor_execute", record)
        event.remove(app.engine, "commit", commit)
    assert out is not None and out.state == "resolved"
    claim = seen[: seen.index("COMMIT")]
    assert "UPDATE ticket" in claim and "INSERT target_lock" in claim, seen
    assert seen.count("INSERT target_lock") == 1
    with app.engine.connect() as c:
        assert c.execute(select(target_lock)).all() == []


def test_a_run_ended_before_its_steps_keeps_no_lock_it_took_with_its_claim(app: Firstline, workdir: Path) -> None:
    sub = _submit(app, "alice")
    path = workdir / "runbooks" / "fake-unlock.yaml"
    path.write_text(path.read_text() + "# edited after the request\n")
    out = app.execute(sub.ticket_id)
    assert out is not None and (out.state, out.reason) == ("escalated", "runbook_changed")
    with app.engine.connect() as c:
        assert c.execute(select(target_lock)).all() == []  # the next run on alice need not wait
    path.write_text(path.read_text().replace("# edited after the request\n", ""))
    again = _submit(app, "ALICE")
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    out = app.execute(again.ticket_id)
    assert out is not None and out.state == "resolved"


def test_a_lock_held_elsewhere_at_the_claim_is_waited_for_as_before(app: Firstline) -> None:
    first, second = _submit(app, "alice"), _submit(app, "bob")
    assert target_locks.try_take(app.engine, "account:*:bob", ticket_id=first.ticket_id, owner="w1", seconds=30) is None
    out = app.execute(second.ticket_id)  # target_wait_seconds 0: escalated at once, naming the holder
    assert out is not None and (out.state, out.reason) == ("escalated", "target_busy")
    with app.engine.connect() as c:
        assert c.execute(select(target_lock.c.owner)).all() == [("w1",)]


def _wait_then_release(app: Firstline, holder: int, ticket_id: int) -> Any:
    """Run *ticket_id* while *holder* holds alice's lock; release it once the run waits."""
    assert target_locks.try_take(app.engine, "account:*:alice", ticket_id=holder, owner="w1", seconds=30) is None
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(app.execute(ticket_id)))
    runner.start()
    try:
        for _ in range(600):  # until the waiting row shows (bounded; not a timing assertion)
            if any(s["step_id"] == "target_wait" for s in app.follow(ticket_id, 0).steps):
                break
            time.sleep(0.05)
    finally:
        target_locks.release(app.engine, "w1")
        runner.join(60)
    return done[0]


def test_a_run_whose_twin_resolved_while_it_waited_is_not_done_twice(app: Firstline) -> None:
    """Two agents resetting one account at once both got "resolved" and a temporary password,
    and only the second password worked (a tester's find): the same change, asked with the same
    parameters, resolved while this run waited, is not made again."""
    app.runs.settings = app.settings.model_copy(update={"target_wait_seconds": 120.0})
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    first, second = _submit(app, "alice"), _submit(app, "alice")
    out = app.execute(first.ticket_id)
    assert out is not None and out.state == "resolved"
    calls = len(FakeConnector.calls)
    out = _wait_then_release(app, first.ticket_id, second.ticket_id)
    assert out is not None and (out.state, out.reason) == ("resolved", "duplicate"), out
    assert first.ticket_number in out.message and out.secrets == {}
    assert len(FakeConnector.calls) == calls  # nothing acted on the account again
    with app.engine.connect() as c:
        row = c.execute(select(ticket).where(ticket.c.id == second.ticket_id)).mappings().one()
        assert (row["state"], row["resolution_code"]) == ("resolved", "duplicate")
        assert c.execute(select(target_lock)).all() == [] and c.execute(select(run_lease)).all() == []
    assert app.verify_audit().ok


def test_a_run_that_waited_for_a_different_request_still_runs(app: Firstline) -> None:
    """Only the same runbook with the same parameters is a twin: here the other ticket asked
    for another spelling (and a secret value would never match), so this one runs."""
    app.runs.settings = app.settings.model_copy(update={"target_wait_seconds": 120.0})
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": False}, {"locked": True}, {"locked": False}],
        "unlock_account": [{}, {}],
    }
    first, second = _submit(app, "alice"), _submit(app, "ALICE")
    done = app.execute(first.ticket_id)
    assert done is not None and done.state == "resolved"
    calls = len(FakeConnector.calls)
    out = _wait_then_release(app, first.ticket_id, second.ticket_id)
    assert out is not None and out.state == "resolved" and out.reason != "duplicate"
    assert len(FakeConnector.calls) > calls
