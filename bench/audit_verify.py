"""``firstline audit verify`` on a 1,000,000-event SQLite ledger beside the raw read+hash path.

Both measured in this one run, on the same file, alternately, three times each:

  raw     what the chain costs at the least: stdlib sqlite3, ``SELECT canonical`` in seq
          order (as bytes, 5,000 rows per fetch), ``sha256(prev_hash || canonical)`` per
          event — no comparison, no other check
  verify  ``runner.ledger.audit.verify`` (what ``firstline audit verify`` runs): signed
          checkpoints (table and file) and head, the hash chain over the stored records
          compared with every stored hash and checkpoint, and — on a second connection in
          the same time — sequence without gaps, every ``prev_hash`` link and every column
          against its canonical record

Prints events/s (median of 3) for both, the ratio (target >= 0.5) and the CPU seconds
of each (verify uses a second core for the database's scan), then once the row-by-row
walk that names a broken sequence (``_walk``, what verify falls back to when anything
fails; about the speed of the old rebuild-from-columns verify).

The ledger is built once under var/bench/ (schema by Firstline's migrations, events with
a valid chain, a checkpoint every 100 events, a signed head) and reused while it verifies.
Usage: .venv/bin/python bench/audit_verify.py [EVENTS]   (default 1000000)
"""

from __future__ import annotations

import hashlib
import sqlite3
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ledger_seed import EVENT_COLUMNS, events, insert_rows, sign_chain  # noqa: E402

from runner.ledger import audit, store  # noqa: E402

KEY = b"bench-audit-key-" * 2


def build(path: Path, cp_file: Path, n: int) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), cp_file):
        p.unlink(missing_ok=True)
    engine = store.make_engine(f"sqlite:///{path}")
    store.upgrade(engine)
    t0 = time.perf_counter()
    insert_rows(engine, "audit_event", EVENT_COLUMNS, events(n), 20_000)
    sign_chain(engine, KEY, cp_file, 100)
    engine.dispose()
    print(f"built {n} events in {time.perf_counter() - t0:.1f} s: {path}")


def raw_path(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        cur = db.execute("SELECT CAST(canonical AS BLOB) FROM audit_event ORDER BY seq")
        prev, sha, n = audit.GENESIS.encode(), hashlib.sha256, 0
        while rows := cur.fetchmany(5000):
            for (record,) in rows:
                prev = sha(prev + record).hexdigest().encode()
            n += len(rows)
        return n
    finally:
        db.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    folder = REPO / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path, cp_file = folder / f"audit-verify-{n}.db", folder / f"audit-verify-{n}-checkpoints.jsonl"
    engine = store.make_engine(f"sqlite:///{path}")
    if not path.exists() or not audit.verify(engine, KEY, cp_file).ok:
        engine.dispose()
        build(path, cp_file, n)
        engine = store.make_engine(f"sqlite:///{path}")
    raw_path(path)  # warm the page cache alike for both
    wall: dict[str, list[float]] = {"raw": [], "verify": []}
    cpu: dict[str, list[float]] = {"raw": [], "verify": []}
    for _ in range(3):
        for name in wall:
            t0, c0 = time.perf_counter(), time.process_time()
            if name == "raw":
                assert raw_path(path) == n
            else:
                report = audit.verify(engine, KEY, cp_file)
                assert report.ok and report.events == n, report
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    rate = {k: n / statistics.median(v) for k, v in wall.items()}
    print(f"audit verify, {n} events, SQLite {sqlite3.sqlite_version}, median of 3 (alternating)")
    for name in wall:
        print(
            f"  {name:7} {rate[name]:10,.0f} events/s  ({statistics.median(wall[name]):.2f} s wall, "
            f"{statistics.median(cpu[name]):.2f} s CPU of this process)"
        )
    print(f"  ratio verify/raw = {rate['verify'] / rate['raw']:.2f}  (target >= 0.5)")
    checkpoints, external, _ = audit._signed_checkpoints(engine, KEY, cp_file)
    t0 = time.perf_counter()
    walked = audit._walk(engine, KEY, checkpoints, external)
    took = time.perf_counter() - t0
    assert walked.ok and walked.events == n, walked
    print(f"  walk    {n / took:10,.0f} events/s  (row-by-row fallback that names a broken sequence, once)")
    engine.dispose()


if __name__ == "__main__":
    main()
