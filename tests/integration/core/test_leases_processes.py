"""Run leases and per-target serialisation with real worker processes, on SQLite and on
PostgreSQL (``both_databases``: tests/databases.py, a fresh database per test):

* two processes executing runs on the same account (``alice`` / ``Alice``) never run steps
  at the same time: the second waits, showing "Waiting for FL-… on account:*:alice";
* a worker SIGKILLed in a state-changing step is found by the sweep once its lease has
  expired and escalated ``run_lost`` naming the step, never run again;
* a worker SIGKILLed in a check step is re-queued by the sweep and the run completes,
  the state change made exactly once;
* many threads racing for one target lock: exactly one gets it.

Connector calls are counted and timed by ``lease_support.RecordingConnector`` in a file
all processes append to. Leases are 2 s here; nothing asserts on durations.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from runner import target_locks
from runner.ledger.lease_tables import run_lease, target_lock
from runner.ledger.tables import audit_event, step_result, ticket
from runner.service import Firstline
from runner.settings import Settings
from tests.databases import MakeDatabaseUrl
from tests.fakes import Manual
from tests.integration.core.lease_support import RecordingConnector, calls
from tests.unit.core.conftest import UNLOCK

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def db_url(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> str:
    return make_database_url(tmp_path / "fl.db")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rec = tmp_path / "directory"
    (rec / "locked").mkdir(parents=True)
    monkeypatch.setenv("FL_REC_DIR", str(rec))
    RecordingConnector._used = set()
    return rec


def _settings_dict(tmp_path: Path, url: str, lease: float = 2.0) -> dict[str, Any]:
    books = tmp_path / "runbooks"
    if not books.exists():
        books.mkdir()
        (books / "fake-unlock.yaml").write_text(UNLOCK)
        (tmp_path / "inventory.yaml").write_text("defaults: {fake: f1}\ntargets:\n  f1: {connector: fake}\n")
        (tmp_path / "audit.key").write_text("k" * 64)
        (tmp_path / "audit.key").chmod(0o600)
    return {
        "environment": "test",
        "database_url": url,
        "runbooks_dir": str(books),
        "inventory": str(tmp_path / "inventory.yaml"),
        "audit_key_file": str(tmp_path / "audit.key"),
        "log_file": str(tmp_path / "fl.log"),
        "run_lease_seconds": lease,
        "run_max_attempts": 2,
        "target_wait_seconds": 120.0,
    }


@pytest.fixture
def app(tmp_path: Path, db_url: str, folder: Path) -> Iterator[Firstline]:
    fl = Firstline(Settings(**_settings_dict(tmp_path, db_url)), connectors={"fake": RecordingConnector})
    fl.vet("fake-unlock", "reviewer")
    yield fl
    fl.close()


def _submit(app: Firstline, user: str) -> Any:
    return app.submit(
        "fake-unlock", {"user": user}, requester="agent7", roles={"agent"}, channel="api", dispatcher=Manual()
    )


def _worker(app: Firstline, tmp_path: Path, ticket_id: int, *, lease: float = 2.0, **env: str) -> subprocess.Popen[str]:
    cfg = {"settings": _settings_dict(tmp_path, app.settings.database_url, lease), "ticket": ticket_id}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.core.lease_support", json.dumps(cfg)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        cwd=REPO,
    )


def _until(what: str, check: Callable[[], Any], limit: float = 90.0) -> Any:
    """Poll *check* until it returns something true (a guard against hanging, not a timing check)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


def _outcome(p: subprocess.Popen[str]) -> dict[str, Any]:
    """The worker's result line (JSON, printed after the run); its log lines may follow it."""
    out = p.communicate(timeout=120)[0] or ""
    found = [line for line in out.splitlines() if line.startswith('{"state"')]
    assert found, f"the worker printed no result (exit {p.returncode}):\n{out[-2000:]}"
    result: dict[str, Any] = json.loads(found[-1])
    return result


def _started(folder: Path, pid: int, action: str) -> bool:
    return any(c["pid"] == pid and c["action"] == action and c["phase"] == "start" for c in calls(folder))


def _ticket(app: Firstline, ticket_id: int) -> Any:
    with app.engine.connect() as c:
        return c.execute(select(ticket).where(ticket.c.id == ticket_id)).mappings().one()


def _count(folder: Path, action: str, phase: str = "start") -> int:
    return sum(1 for c in calls(folder) if c["action"] == action and c["phase"] == phase)


def test_two_processes_on_one_account_never_run_steps_at_the_same_time(
    app: Firstline, tmp_path: Path, folder: Path
) -> None:
    first, second = _submit(app, "alice"), _submit(app, "Alice")
    (folder / "locked" / "alice").touch()
    # Leases of 10 s here: this test is about the target lock, and on a loaded machine a 2 s
    # lease held through the paused check could lapse (the worker then logs lease.lost).
    p1 = _worker(app, tmp_path, first.ticket_id, lease=10.0, FL_REC_HOLD="account_status")
    p2: subprocess.Popen[str] | None = None
    try:
        _until("the first run's check", lambda: _started(folder, p1.pid, "account_status"))
        p2 = _worker(app, tmp_path, second.ticket_id, lease=10.0)

        def waiting() -> Any:
            return next((s for s in app.follow(second.ticket_id, 0).steps if s["step_id"] == "target_wait"), None)

        row = _until("the second run to wait", waiting)
        assert row["status"] == "running" and row["message"] == f"Waiting for {first.ticket_number} on account:*:alice"
        assert not any(c["pid"] == p2.pid for c in calls(folder))  # no step of the second run yet
        (folder / "go").touch()
        outs = [_outcome(p) for p in (p1, p2)]
    finally:
        (folder / "go").touch()
        for p in (p1, p2):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert [o["state"] for o in outs] == ["resolved", "resolved"]
    made = calls(folder)
    one = [c["t"] for c in made if c["pid"] == p1.pid]
    two = [c["t"] for c in made if c["pid"] == p2.pid]
    assert one and two and max(one) <= min(two)  # the intervals never overlap
    assert _count(folder, "unlock_account") == 1  # the second found the account already unlocked
    with app.engine.connect() as c:
        assert c.execute(select(target_lock)).all() == [] and c.execute(select(run_lease)).all() == []
        waited = c.execute(
            select(step_result.c.status).where(
                step_result.c.ticket_id == second.ticket_id, step_result.c.step_id == "target_wait"
            )
        ).scalar_one()
    assert waited == "ok"
    assert app.verify_audit().ok


@pytest.mark.parametrize("killed_in", ["unlock_account", "account_status"])
def test_a_sigkilled_worker_is_found_by_its_lease_and_each_change_is_made_once(
    app: Firstline, tmp_path: Path, folder: Path, killed_in: str
) -> None:
    sub = _submit(app, "bob")
    (folder / "locked" / "bob").touch()
    worker = _worker(app, tmp_path, sub.ticket_id, FL_REC_BLOCK=killed_in)
    try:
        _until(f"the worker to be in {killed_in}", lambda: _started(folder, worker.pid, killed_in))
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
    assert _ticket(app, sub.ticket_id)["state"] == "running"  # nobody has noticed yet
    manual = Manual()
    app.runs.dispatcher = manual
    _until("the sweep to act on the expired lease", lambda: app.sweep() or manual.sent)
    row = _ticket(app, sub.ticket_id)
    with app.engine.connect() as c:
        events = [
            (e.action, e.actor, e.reason)
            for e in c.execute(
                select(audit_event).where(audit_event.c.ticket == sub.ticket_number).order_by(audit_event.c.seq)
            )
        ]
    if killed_in == "unlock_account":  # a state-changing step had started: for a person
        assert (row["state"], row["reason"]) == ("escalated", "run_lost") and "step 'unlock'" in row["message"]
        assert ("run.lost", "system:sweeper", "state_changing_step_started") in events
        assert manual.sent == [] and app.execute(sub.ticket_id) is None
    else:  # only the check had started: re-queued, handed over again, and it completes
        assert row["state"] == "queued" and manual.sent == [sub.ticket_id]
        assert ("run.resumed", "system:sweeper", "lease_expired") in events
        out = app.execute(sub.ticket_id)
        assert out is not None and out.state == "resolved"
        assert _count(folder, "account_status") == 3  # the killed check, the check again, the verify
        with app.engine.connect() as c:
            steps = c.execute(
                select(step_result.c.seq, step_result.c.step_id, step_result.c.status)
                .where(step_result.c.ticket_id == sub.ticket_id)
                .order_by(step_result.c.seq)
            ).all()
        assert [tuple(s) for s in steps] == [
            (1, "check", "failed"),
            (2, "check", "ok"),
            (3, "unlock", "ok"),
            (4, "verify", "ok"),
        ]
    assert _count(folder, "unlock_account") == 1  # never twice, whatever happened
    assert app.sweep() == []
    with app.engine.connect() as c:
        assert c.execute(select(target_lock)).all() == []
    assert app.verify_audit().ok


def test_threads_racing_for_one_target_lock_give_it_to_exactly_one(app: Firstline) -> None:
    barrier = threading.Barrier(8)
    got: list[int] = []

    def contender(n: int) -> None:
        barrier.wait()
        if target_locks.try_take(app.engine, "queue:print-01:office-1", ticket_id=n, owner=f"w{n}", seconds=30) is None:
            got.append(n)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 1
    with app.engine.connect() as c:
        assert c.execute(select(target_lock.c.ticket_id)).all() == [(got[0],)]
