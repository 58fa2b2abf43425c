"""A run's step and closing writes ride over a database that goes away for a moment (a
PostgreSQL restart takes about half a second): the transaction is tried again on a fresh
connection, each try but the last rolled back, so every row and audit event is written once.
Before, the run stopped at the first failed write and its lease expired: in the fault test
4 of 24 unlocks that were done ended ``run_lost``, with no audit event of the unlock."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from runner.errors import LedgerError
from runner.ledger import progress as progress_mod
from runner.ledger import store, tickets
from runner.ledger.tables import audit_event, step_result
from runner.service import Firstline
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases


def _flaky(real: Any, failures: int, error: Exception, *, dropped: bool = False) -> Any:
    """*real*, failing *failures* times with *error* after its write; *dropped*: the
    connection is invalidated first, as SQLAlchemy does when the server cut it mid-statement
    (from then on ``conn.info`` raises ``PendingRollbackError`` until the rollback)."""
    left = [failures]

    def call(conn: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(conn, *args, **kwargs)  # written, then the connection "dies" before the commit
        if left[0]:
            left[0] -= 1
            if dropped:
                conn.invalidate()
            raise error
        return result

    return call


def _lost() -> OperationalError:
    return OperationalError("INSERT ...", {}, Exception("terminating connection due to administrator command"))


@pytest.mark.parametrize("dropped", [False, True], ids=["error", "connection-dropped"])
@pytest.mark.parametrize("where", ["step_started", "close_ticket"])
def test_a_write_cut_by_a_database_restart_is_made_once_and_the_run_resolves(
    app: Firstline, monkeypatch: pytest.MonkeyPatch, where: str, dropped: bool
) -> None:
    # dropped: the ci run of 2026-12-01 saw it — the retry itself asked conn.info and got
    # PendingRollbackError, which was not tried again: the run escalated mid-way
    if where == "step_started":
        flaky = _flaky(progress_mod.step_started, 2, _lost(), dropped=dropped)
        monkeypatch.setattr(progress_mod, "step_started", flaky)
    else:
        monkeypatch.setattr(tickets, "close_ticket", _flaky(tickets.close_ticket, 2, _lost(), dropped=dropped))
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    out = app.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"})
    assert out.state == "resolved", (out.reason, out.message)
    with app.engine.connect() as c:
        actions = Counter(
            c.execute(select(audit_event.c.action).where(audit_event.c.ticket == out.ticket_number)).scalars()
        )
        rows = c.execute(select(step_result.c.seq, step_result.c.status).where(step_result.c.ticket_id == int(
            out.ticket_number[3:]))).all()  # fmt: skip
    assert actions["fake.unlock_account"] == 1 and actions["ticket.resolved"] == 1
    assert sorted(rows) == [(i + 1, "ok") for i in range(len(rows))] and len(rows) >= 2
    assert len([c for c in FakeConnector.calls if c[1] == "unlock_account"]) == 1  # the change was made once
    assert app.verify_audit().ok


def test_a_dropped_connection_in_a_plain_transaction_reports_the_real_error(app: Firstline) -> None:
    """``transaction`` (not retried) names the database's error, not the PendingRollbackError
    that asking the dropped connection for its bookkeeping raised over it."""
    with pytest.raises(LedgerError, match="OperationalError"):
        with store.transaction(app.engine) as conn:
            conn.invalidate()
            raise _lost()


def test_other_errors_are_not_tried_again(app: Firstline) -> None:
    calls = []

    def work(conn: Any) -> None:
        calls.append(1)
        raise IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(LedgerError):
        store.write_retrying(app.engine, work, seconds=5)
    assert calls == [1]


def test_it_gives_up_when_the_time_is_over(app: Firstline) -> None:
    calls = []

    def work(conn: Any) -> None:
        calls.append(1)
        raise _lost()

    with pytest.raises(LedgerError):
        store.write_retrying(app.engine, work, seconds=0.5)
    assert 2 <= len(calls) <= 4  # 0.1 s, 0.2 s, ... then over


def test_sqlite_writers_of_one_process_queue_on_a_lock_with_the_busy_timeout(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a writer waits on this process's lock (no busy-handler sleeps while the file
    is free) and gets LedgerError when it stays taken, as with SQLite's "database is locked"."""
    import threading

    if app.engine.dialect.name != "sqlite":
        with store.writer(app.engine):  # nothing to queue on: PostgreSQL queues writers itself
            return
    monkeypatch.setattr(store, "WRITER_WAIT", 0.2)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction(app.engine):
            taken.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    assert taken.wait(5)
    with pytest.raises(LedgerError, match="stayed busy"):
        with store.transaction(app.engine):
            pass
    release.set()
    t.join(5)
    with store.transaction(app.engine):  # free again
        pass


def test_a_step_record_that_cannot_be_written_ends_the_run_as_a_database_failure(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not ``config_error`` ("Firstline is not configured correctly"): the database stopped
    the run, and second level must check the target, which a step may have changed."""
    broken = IntegrityError("INSERT ...", {}, Exception("disk I/O error"))  # not tried again
    monkeypatch.setattr(progress_mod, "step_started", _flaky(progress_mod.step_started, 99, broken))
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    out = app.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"})
    assert (out.state, out.reason) == ("escalated", "ledger_unavailable"), (out.reason, out.message)
    assert "could not be recorded" in (out.message or "")
    assert app.verify_audit().ok
