"""Waiting for runs executed elsewhere (runner.finalwatch): one reader reads the states of
every ticket this process waits for in one query per tick and wakes the waiters; each gets
its own outcome from the ledger; an unknown ticket is NotFoundError; a ledger that cannot be
read for a moment is waited out, one that stays unreadable reaches the waiter at its timeout;
the reader stops when nothing is waited for."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from runner import finalwatch
from runner.api import open_app
from runner.errors import LedgerError, NotFoundError
from runner.ledger import progress as progress_mod
from runner.service import Firstline
from runner.settings import Settings
from tests.fakes import FakeConnector, Manual
from tests.unit.core.test_run_seam import _submit

pytestmark = pytest.mark.both_databases


@contextmanager
def state_reads(app: Firstline) -> Iterator[list[int]]:
    """How many ticket ids each state-only read of *app*'s engine asked for (any thread)."""
    seen: list[int] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        flat = " ".join(statement.split())
        if flat.startswith("SELECT id, state FROM ticket"):  # the ids as one array value (runner.finalwatch)
            (ids,) = parameters
            seen.append(len(ids if isinstance(ids, list) else json.loads(ids)))

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(app.engine, "before_cursor_execute", record)


def test_many_waiters_are_served_by_one_reader_and_each_gets_its_own_outcome(
    app: Firstline, settings: Settings
) -> None:
    users = [f"user{i}" for i in range(6)]
    subs = [_submit(app, Manual(), user=u) for u in users]  # queued; another process runs them
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}] * len(users)}
    outcomes: dict[int, Any] = {}

    def waiter(ticket_id: int) -> None:
        outcomes[ticket_id] = app.runs.wait(ticket_id, timeout=30)

    with state_reads(app) as reads:
        threads = [threading.Thread(target=waiter, args=(s.ticket_id,)) for s in subs]
        for t in threads:
            t.start()
        time.sleep(0.1)  # every waiter is watching
        other = open_app(settings, connectors={"fake": FakeConnector})  # the worker process
        try:
            for s in subs:
                other.execute(s.ticket_id)
        finally:
            other.close()
        for t in threads:
            t.join(30)
    assert {tid: (o.state, o.ticket_number) for tid, o in outcomes.items()} == {
        s.ticket_id: ("resolved", s.ticket_number) for s in subs
    }
    assert all(o.secrets == {} for o in outcomes.values())  # from the ledger: never a secret
    assert max(reads) == len(subs)  # one read asked for every waited-for ticket at once


def test_an_unknown_ticket_is_not_found(app: Firstline) -> None:
    with pytest.raises(NotFoundError):
        app.runs.wait(987_654, timeout=1)


def test_a_ledger_unreadable_for_a_moment_is_waited_out(
    app: Firstline, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = _submit(app, Manual())
    real = finalwatch._Reader.read
    failures = {"left": 3}

    def flaky(self: Any, ids: list[int]) -> dict[int, str]:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise LedgerError("database restarting")
        return real(self, ids)

    monkeypatch.setattr(finalwatch._Reader, "read", flaky)
    monkeypatch.setattr(finalwatch, "ERROR_PAUSE", 0.05)
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}]}
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(app.runs.wait(sub.ticket_id, timeout=30)))
    waiter.start()  # its own first look finds it queued; then the watch, which fails 3 times
    time.sleep(0.1)
    other = open_app(settings, connectors={"fake": FakeConnector})
    try:
        other.execute(sub.ticket_id)
    finally:
        other.close()
    waiter.join(30)
    assert got and got[0] is not None and got[0].state == "resolved" and failures["left"] == 0


def test_a_ledger_that_stays_unreadable_reaches_the_waiter_at_its_timeout(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = _submit(app, Manual())

    def down(*_: Any) -> Any:
        raise LedgerError("database down")

    monkeypatch.setattr(finalwatch._Reader, "read", down)
    monkeypatch.setattr(progress_mod, "state_of", down)
    with pytest.raises(LedgerError):
        app.runs.wait(sub.ticket_id, timeout=0.3)


def test_a_run_not_final_within_the_timeout_gives_none_and_the_reader_stops(app: Firstline) -> None:
    sub = _submit(app, Manual())
    assert app.runs.wait(sub.ticket_id, timeout=0.2) is None
    deadline = time.monotonic() + 5
    while any(t.name == "firstline-final-watch" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.name == "firstline-final-watch" for t in threading.enumerate())


def test_the_watch_keeps_one_connection_and_still_sees_new_commits(app: Firstline, settings: Settings) -> None:
    """The reader keeps its connection across ticks (no pool checkout, so no ping, per tick)
    and ends its read transaction each tick, so a state committed later is seen."""
    from sqlalchemy import event

    checkouts: list[int] = []

    def counted(*_a: Any) -> None:
        checkouts.append(1)

    event.listen(app.engine, "checkout", counted)
    try:
        subs = [_submit(app, Manual()) for _ in range(3)]
        got: list[Any] = []
        waiters = [
            threading.Thread(target=lambda s=s: got.append(app.runs.wait(s.ticket_id, timeout=30))) for s in subs
        ]
        for w in waiters:
            w.start()
        time.sleep(0.3)  # about 15 ticks of the watch
        before = len(checkouts)
        time.sleep(0.3)
        assert len(checkouts) - before <= 1  # the watch does not check a connection out per tick
        other = open_app(settings, connectors={"fake": FakeConnector})
        try:
            for s in subs:
                FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}]}
                other.execute(s.ticket_id)
        finally:
            other.close()
        for w in waiters:
            w.join(30)
    finally:
        event.remove(app.engine, "checkout", counted)
    assert len(got) == 3 and all(o is not None and o.state == "resolved" for o in got)
