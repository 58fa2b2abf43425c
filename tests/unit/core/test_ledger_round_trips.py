"""Round trips the burst benchmark found worth saving (bench/burst.py, issue 9), on SQLite and
PostgreSQL (``both_databases``):

* an audit append on PostgreSQL writes the event and moves the signed head in one statement
  after locking the head (the head's row lock, which serialises every writer, is held one
  round trip less); the chain it writes is the same and verifies;
* waiting for a run another process executes reads only the ticket's state until the run is
  final, then its steps once (was: every step row, decoded, at every poll).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from runner.api import open_app
from runner.ledger.audit import GENESIS, Actor, chain_hash, sign_head
from runner.ledger.tables import audit_event, audit_head
from runner.service import Firstline
from runner.settings import Settings
from tests.fakes import FakeConnector
from tests.unit.core.test_run_seam import Manual, _submit

pytestmark = pytest.mark.both_databases


@contextmanager
def statements(app: Firstline) -> Iterator[list[str]]:
    """Every SQL statement *app*'s engine sends while the block runs (any thread)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(app.engine, "before_cursor_execute", record)


def test_an_append_moves_the_signed_head_with_the_event_and_the_chain_verifies(app: Firstline) -> None:
    with app.engine.connect() as c:
        before = c.execute(select(audit_head)).one()
    with statements(app) as sent, app.engine.begin() as c:
        app.audit.append(c, Actor("tester", ("agent",)), "test.event", outcome="success", target="t1")
    seq = before.seq + 1
    with app.engine.connect() as c:
        row = c.execute(select(audit_event).where(audit_event.c.seq == seq)).mappings().one()
        head = c.execute(select(audit_head)).one()
    assert row["target"] == "t1"
    assert row["prev_hash"] == (before.hash or GENESIS)
    assert row["hash"] == chain_hash(row["prev_hash"], row)
    assert (head.seq, head.hash, head.mac) == (seq, row["hash"], sign_head(app.audit.key, seq, row["hash"]))
    assert app.verify_audit().ok
    touching = [s for s in sent if "audit_event" in s or "audit_head" in s]
    if app.engine.dialect.name == "postgresql":
        # the head locked, then the insert and the head's update as one statement
        assert len(touching) == 2, touching
        assert "FOR UPDATE" in touching[0]
        assert touching[1].startswith("WITH appended AS (INSERT INTO audit_event")
        assert "UPDATE audit_head" in touching[1]
    else:
        # SQLite's write lock is the database's: the plain insert and update
        assert len(touching) == 3, touching


def test_appends_from_many_threads_keep_one_linear_chain(app: Firstline) -> None:
    def write(i: int) -> None:
        for j in range(5):
            with app.engine.begin() as c:
                app.audit.append(c, Actor(f"w{i}", ("agent",)), "test.event", outcome="success", target=f"{i}.{j}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = app.verify_audit()
    with app.engine.connect() as c:
        seqs = [r.seq for r in c.execute(select(audit_event.c.seq).order_by(audit_event.c.seq))]
        head = c.execute(select(audit_head)).one()
    assert report.ok, report.problem
    assert seqs == list(range(1, len(seqs) + 1)) and head.seq == seqs[-1] == report.events
    assert sum(1 for _ in seqs) >= 30


def test_waiting_for_a_run_elsewhere_reads_only_its_state_until_it_is_final(app: Firstline, settings: Settings) -> None:
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}]}
    sub = _submit(app, Manual())  # queued; no worker of this process will run it
    with statements(app) as sent:
        assert app.runs.wait(sub.ticket_id, timeout=0.3, poll=0.05) is None
    assert len(sent) >= 2 and all("step_result" not in s for s in sent), sent

    other = open_app(settings, connectors={"fake": FakeConnector})  # another process's service
    done = threading.Event()

    def run_elsewhere() -> None:
        try:
            other.execute(sub.ticket_id)
        finally:
            done.set()

    try:
        worker = threading.Thread(target=run_elsewhere)
        with statements(app) as sent:
            worker.start()
            out = app.runs.wait(sub.ticket_id, timeout=30, poll=0.05)
        worker.join(30)
    finally:
        other.close()
    assert done.is_set()
    assert out is not None and out.state == "resolved"
    assert [s.step_id for s in out.steps] == ["check", "unlock", "verify"]
    assert out.secrets == {}  # executed elsewhere: secrets never come from the ledger
    assert sum("step_result" in s for s in sent) == 1, sent  # the steps read once, at the end


def test_a_runs_ledger_writes_are_sent_without_compiling_each_statement(app: Firstline) -> None:
    """Submit, claim, step rows, lease, target lock, close and audit events: each statement
    is sent as the SQL text compiled at its first use (``runner.ledger.prepared``), not
    compiled by SQLAlchemy again per call (about 50 µs each, some twenty per run)."""
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}]}
    _submit(app, Manual())  # the first use of each statement compiles it
    app.execute(_submit(app, Manual()).ticket_id)
    per_call: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if context.compiled is not None:
            per_call.append(" ".join(statement.split())[:80])

    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}]}
    event.listen(app.engine, "before_cursor_execute", record)
    try:
        out = app.execute(_submit(app, Manual()).ticket_id)
    finally:
        event.remove(app.engine, "before_cursor_execute", record)
    assert out is not None and out.state == "resolved"
    hot = ("ticket", "step_result", "run_lease", "target_lock", "audit_event", "audit_head")
    assert [s for s in per_call if any(f" {t} " in f" {s} " or f"{t}." in s for t in hot)] == []
