"""One ledger write, three ways, in one run (``runner.ledger.prepared``; issues 8 and 9).

A run writes some twenty ledger rows; this prints what one such statement costs — the
``step_result`` insert every step makes, with the same values — sent

  core      ``conn.execute(step_result.insert(), {...})``: SQLAlchemy Core, as before
  prepared  ``runner.ledger.prepared.execute``: compiled once, then the SQL text and the
            values through ``Connection.exec_driver_sql`` (what the run's path uses now)
  driver    the DBAPI cursor of the same connection alone (the floor: no SQLAlchemy at all)

N statements each inside one transaction that is rolled back, interleaved in rounds, on
SQLite (a file under a temporary directory, WAL, as ``make_engine`` sets it up) and, when
reachable, on the PostgreSQL at ``FIRSTLINE_TEST_POSTGRES_URL`` (default: the lab's, in a
scratch table). Prints the median per statement over the rounds, wall time and this process's CPU time
(on PostgreSQL the wall time is mostly the server's round trip; the CPU is what a busy
worker saves), each with its ratio to driver.
Usage: .venv/bin/python bench/ledger_statements.py [N]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table
from sqlalchemy.exc import SQLAlchemyError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runner.ledger import prepared  # noqa: E402
from runner.ledger.store import make_engine  # noqa: E402
from runner.ledger.tables import step_result  # noqa: E402

POSTGRES = os.environ.get("FIRSTLINE_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")

# A scratch copy of step_result (runner/ledger/tables.py): its columns, without the foreign key
# to ticket, so rows can be written without a ticket and the real table is never touched.
meta = MetaData()
steps = Table(
    "bench_step_result",
    meta,
    *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in step_result.c),
)
INSERT = steps.insert()


def values(i: int) -> dict[str, Any]:
    """The row ``runner.ledger.progress.step_started`` writes for step *i* of a running unlock."""
    return {
        "ticket_id": 1,
        "seq": i,
        "status": "running",
        "inputs": "{}",
        "outputs": "{}",
        "reason": None,
        "message": None,
        "attempts": 0,
        "finished_at": None,
        "step_id": "unlock",
        "connector": "ldap",
        "action": "unlock_account",
        "target": "corp",
        "started_at": "2026-12-01T08:55:00.000000+00:00",
        "event_seq": 2 * i - 1,
    }


def measure(url: str, n: int, rounds: int) -> dict[str, tuple[float, float]]:
    engine = make_engine(url)
    meta.drop_all(engine)
    meta.create_all(engine)
    names = list(values(0))
    marks = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    raw_sql = f"INSERT INTO bench_step_result ({', '.join(names)}) VALUES ({', '.join([marks] * len(names))})"

    def core(conn: Connection, i: int) -> None:
        conn.execute(INSERT, values(i))

    def fast(conn: Connection, i: int) -> None:
        prepared.execute(conn, INSERT, values(i))

    def driver(conn: Connection, i: int) -> None:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(raw_sql, tuple(values(i).values()))
        cursor.close()

    cases: dict[str, Callable[[Connection, int], None]] = {"core": core, "prepared": fast, "driver": driver}
    per: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    try:
        for r in range(rounds + 1):
            for name, fn in cases.items():
                with engine.connect() as conn:
                    trans = conn.begin()
                    fn(conn, 0)  # the statement's first use (compiles) is not timed
                    t0, c0 = time.perf_counter(), time.process_time()
                    for i in range(1, n + 1):
                        fn(conn, i)
                    took = (time.perf_counter() - t0) / n * 1e6
                    used = (time.process_time() - c0) / n * 1e6
                    trans.rollback()
                if r:  # round 0 warms up
                    per[name].append(took)
                    cpu[name].append(used)
    finally:
        meta.drop_all(engine)
        engine.dispose()
    return {k: (statistics.median(per[k]), statistics.median(cpu[k])) for k in cases}


def main() -> None:
    arg = sys.argv[1] if len(sys.argv) > 1 else "2000"
    if not arg.isdigit() or int(arg) < 1:
        sys.exit(f"usage: bench/ledger_statements.py [N]  (N: statements per round, a whole number > 0; got {arg!r})")
    n = int(arg)
    rounds = 7
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite:///{tmp}/bench.db"), ("PostgreSQL", POSTGRES)]
        print(f"step_result insert, {n} per round, {rounds} rounds, median per statement")
        for label, url in targets:
            try:
                got = measure(url, n, rounds)
            except SQLAlchemyError as exc:
                print(f"  {label}: not measured ({exc.__class__.__name__}: is the database running?)")
                continue
            wall, cpu = got["driver"]
            print(f"  {label}")
            for k, (w, c) in got.items():
                ratios = f"wall {w:7.1f} µs ({w / wall:4.1f}x driver)   CPU {c:6.1f} µs ({c / cpu:4.1f}x driver)"
                print(f"    {k:9s} {ratios}")


if __name__ == "__main__":
    main()
