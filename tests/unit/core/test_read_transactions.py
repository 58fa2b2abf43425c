"""SQLite: readers (``store.reading``, ``store.first_row``) never wait for the writer, while
every other transaction takes the write lock up front (BEGIN IMMEDIATE) so two writers queue
instead of failing half-way. A page or a progress stream must not stall behind a run's step
writes (issue 8 benchmark)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from runner.ledger import store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    engine = store.make_engine(f"sqlite:///{path}")
    with store.transaction(engine) as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        conn.execute(text("INSERT INTO t (v) VALUES ('committed')"))
    engine.dispose()
    return path


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('uncommitted')")
    return other


def test_readers_see_the_last_commit_while_a_writer_holds_the_lock(db: Path) -> None:
    engine = store.make_engine(f"sqlite:///{db}")
    writer = _hold_write_lock(db)
    try:
        seen: list[object] = []

        def read() -> None:
            with store.reading(engine) as conn:
                seen.append(conn.execute(text("SELECT group_concat(v) FROM t")).scalar())
            seen.append(store.first_row(engine, "SELECT v FROM t WHERE id = ?", (1,)))

        reader = threading.Thread(target=read)
        reader.start()
        # a liveness bound, not a speed claim: a reader taking the write lock would wait 30 s
        reader.join(timeout=10)
        assert not reader.is_alive(), "a reader waited for the writer"
        assert seen == ["committed", {"v": "committed"}]
    finally:
        writer.rollback()
        writer.close()
        engine.dispose()


def test_a_transaction_takes_the_write_lock_at_begin(db: Path) -> None:
    """Without BEGIN IMMEDIATE a writer would start deferred and could fail half-way."""
    engine = store.make_engine(f"sqlite:///{db}")
    try:
        with store.transaction(engine) as conn:
            conn.execute(text("SELECT 1"))  # nothing written yet, the lock is already held
            probe = sqlite3.connect(db, isolation_level=None, timeout=0)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    probe.execute("BEGIN IMMEDIATE")
            finally:
                probe.close()
    finally:
        engine.dispose()


def test_first_row_reads_are_read_only_and_report_errors_as_ledger_errors(db: Path) -> None:
    engine = store.make_engine(f"sqlite:///{db}")
    try:
        assert store.first_row(engine, "SELECT v FROM t WHERE id = ?", (99,)) is None
        with pytest.raises(store.LedgerError, match="ledger read failed"):
            store.first_row(engine, "SELECT nope FROM t WHERE id = ?", (1,))
        with pytest.raises((OperationalError, store.LedgerError)):
            with store.reading(engine) as conn:
                conn.execute(text("SELECT nope FROM t"))
    finally:
        engine.dispose()
