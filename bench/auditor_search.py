"""The auditor's search at 1,000,000 tickets and 3,000,000 audit events, on SQLite and PostgreSQL.

For each database: the schema by Firstline's migrations, rows bulk-loaded
(bench/ledger_seed.py: executemany / COPY), statistics gathered (ANALYZE), then every
query shape of ``runner.queries`` the auditor pages and ``/api/v1`` use, each REPS times
with varying values (other people, agents, runbooks, days):

  page        ``page_events`` / ``page_tickets``: the first page (50, newest first)
  next        the page after it (``next_cursor``: the keyset continues)
  answer      what ``/api/v1/audit/events`` and ``/api/v1/tickets`` answer with:
              ``LedgerReader.events`` / ``.tickets`` = the page and the matching count

Prints p50/p95 in milliseconds per shape (target: p95 < 100 ms), the plan of each shape
on the first repetition (EXPLAIN), then the peak RSS of a process that exports 1,000,000
events as JSON Lines beside one that exports 10,000 (constant memory: about equal).

SQLite: var/bench/auditor-search.db (built once, reused; migrated to the newest revision).
PostgreSQL: database ``fl_bench_search`` on 127.0.0.1:5432 (user postgres), created and
dropped by this run — with ``keep``, kept afterwards and reused (migrated) by the next run
with ``keep``. Seeding takes minutes. Usage: .venv/bin/python bench/auditor_search.py
[sqlite|postgresql ...] [keep] [SHAPE-WORDS ...] (only shapes whose name contains one of the
words, e.g. "month" "day")
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ledger_seed import (  # noqa: E402
    AGENTS,
    EVENT_COLUMNS,
    RUNBOOKS,
    SPAN,
    START,
    TICKET_COLUMNS,
    USERS,
    events,
    insert_rows,
    stamp,
    tickets,
    user,
)
from sqlalchemy import Engine, text  # noqa: E402

from runner import queries  # noqa: E402
from runner.ledger import store  # noqa: E402

N_TICKETS = 1_000_000
N_EVENTS = 3_000_000
REPS = 30
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/fl_bench_search"
SQLITE = REPO / "var" / "bench" / "auditor-search.db"
EXPORT = """
import resource, sys
from runner import queries
from runner.ledger import store
engine = store.make_engine(sys.argv[1])
f = queries.EventFilter(until=sys.argv[2])
n = 0
for line in queries.export_events(engine, f, "jsonl"):
    n += 1
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def seed(engine: Engine) -> None:
    t0 = time.perf_counter()
    store.upgrade(engine)
    insert_rows(engine, "ticket", TICKET_COLUMNS, tickets(N_TICKETS), 20_000)
    insert_rows(engine, "audit_event", EVENT_COLUMNS, events(N_EVENTS), 20_000)
    print(f"  seeded {N_TICKETS:,} tickets and {N_EVENTS:,} events in {time.perf_counter() - t0:.0f} s")


def analyze(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")


def open_sqlite() -> Engine:
    SQLITE.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{SQLITE}"
    if SQLITE.exists():
        engine = store.make_engine(url)
        store.upgrade(engine)
        with engine.connect() as c:
            n = c.exec_driver_sql("SELECT max(seq) FROM audit_event").scalar()
        if n == N_EVENTS:
            # a file built by an earlier state of revision 0011 may lack an index it has now
            from runner.ledger.tables import audit_event, ticket

            for ix in (*ticket.indexes, *audit_event.indexes):
                ix.create(engine, checkfirst=True)
            analyze(engine)
            return engine
        engine.dispose()
        for p in (SQLITE, Path(f"{SQLITE}-wal"), Path(f"{SQLITE}-shm")):
            p.unlink(missing_ok=True)
    engine = store.make_engine(url)
    seed(engine)
    analyze(engine)
    return engine


def open_postgresql(keep: bool) -> Engine:
    if keep and _pg_events() == N_EVENTS:
        engine = store.make_engine(PG_URL)
        store.upgrade(engine)
        analyze(engine)
        return engine
    admin = store.make_engine(PG_ADMIN)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text('DROP DATABASE IF EXISTS "fl_bench_search" WITH (FORCE)'))
        c.execute(text('CREATE DATABASE "fl_bench_search"'))
    admin.dispose()
    engine = store.make_engine(PG_URL)
    seed(engine)
    analyze(engine)
    return engine


def _pg_events() -> int | None:
    """How many events a kept ``fl_bench_search`` holds (None: there is none)."""
    admin = store.make_engine(PG_ADMIN)
    try:
        with admin.connect() as c:
            if c.execute(text("SELECT 1 FROM pg_database WHERE datname = 'fl_bench_search'")).first() is None:
                return None
    finally:
        admin.dispose()
    engine = store.make_engine(PG_URL)
    try:
        with engine.connect() as c:
            return c.exec_driver_sql("SELECT max(seq) FROM audit_event").scalar()
    finally:
        engine.dispose()


def drop_postgresql() -> None:
    admin = store.make_engine(PG_ADMIN)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text('DROP DATABASE IF EXISTS "fl_bench_search" WITH (FORCE)'))
    admin.dispose()


def day(rnd: random.Random, days: int, recent: bool = False) -> dict[str, str]:
    top = START + SPAN - days * 86_400
    t = top if recent else START + rnd.random() * (top - START)
    return {"since": stamp(t), "until": stamp(t + days * 86_400)}


def shapes() -> dict[str, tuple[str, Callable[[random.Random], dict[str, str]]]]:
    """name -> (kind, parameters for one repetition)."""
    agent = lambda r: f"agent{r.randrange(AGENTS):02d}"  # noqa: E731
    person = lambda r: user(r.randrange(USERS))  # noqa: E731
    return {
        "events actor=agent": ("events", lambda r: {"actor": agent(r)}),
        "events actor=employee": ("events", lambda r: {"actor": person(r)}),
        "events on_behalf_of": ("events", lambda r: {"on_behalf_of": person(r)}),
        "events action": ("events", lambda r: {"action": r.choice(["ticket.opened", "ldap.unlock_account"])}),
        "events target (part of)": ("events", lambda r: {"target": person(r)}),
        "events outcome=refused": ("events", lambda r: {"outcome": "refused"}),
        "events runbook": ("events", lambda r: {"runbook": r.choice(RUNBOOKS)}),
        "events channel=cli": ("events", lambda r: {"channel": "cli"}),
        "events last 7 days": ("events", lambda r: day(r, 7, recent=True)),
        "events one day": ("events", lambda r: day(r, 1)),
        "events agent + month": ("events", lambda r: {"actor": agent(r), **day(r, 30)}),
        "events refused + day": ("events", lambda r: {"outcome": "refused", **day(r, 1)}),
        "tickets actor=agent": ("tickets", lambda r: {"actor": agent(r)}),
        "tickets on_behalf_of": ("tickets", lambda r: {"on_behalf_of": person(r)}),
        "tickets target (part of)": ("tickets", lambda r: {"target": person(r)}),
        "tickets runbook": ("tickets", lambda r: {"runbook": r.choice(RUNBOOKS)}),
        "tickets channel=cli": ("tickets", lambda r: {"channel": "cli"}),
        "tickets state=queued": ("tickets", lambda r: {"state": "queued"}),
        "tickets one day": ("tickets", lambda r: day(r, 1)),
        "tickets runbook + week": ("tickets", lambda r: {"runbook": r.choice(RUNBOOKS), **day(r, 7)}),
    }


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]  # nearest rank


def explain(engine: Engine, kind: str, params: dict[str, str]) -> str:
    """The plan of the statement a page really sends (captured while it runs)."""
    from sqlalchemy import event

    sent: list[tuple[str, Any]] = []

    def keep(*a: Any) -> None:
        sent.append((a[2], a[3]))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        if kind == "events":
            queries.page_events(engine, queries.EventFilter.from_params(params))
        else:
            queries.page_tickets(engine, queries.TicketFilter.from_params(params))
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    statement, values = sent[-1]
    with engine.connect() as c:
        if engine.dialect.name == "sqlite":
            rows = c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, values).all()
            return "; ".join(str(r[-1]) for r in rows)
        rows = c.exec_driver_sql("EXPLAIN " + statement, values).all()
        return " / ".join(str(r[0]).strip() for r in rows if "Scan" in str(r[0]) or "->" in str(r[0]))[:400]


def measure(engine: Engine, name: str) -> None:
    reader = queries.LedgerReader(engine, b"k" * 32, None)
    print(f"\n{name}: p50 / p95 in ms over {REPS} searches each (target p95 < 100)")
    print(f"  {'shape':28} {'page':>15} {'next page':>15} {'page + count':>15}   matches (median)")
    all95: list[tuple[float, str]] = []
    picked = [a for a in sys.argv[1:] if a not in ("sqlite", "postgresql", "keep")]
    for shape, (kind, make) in shapes().items():
        if picked and not any(p in shape for p in picked):
            continue
        rnd = random.Random(shape)
        t: dict[str, list[float]] = {"page": [], "next": [], "answer": []}
        counts: list[int] = []
        capped = False  # the answer's count stopped at queries.COUNT_CAP ("more than")
        plan = explain(engine, kind, make(random.Random(shape)))
        for _ in range(REPS):
            params = make(rnd)
            pager = reader.events if kind == "events" else reader.tickets
            page_fn = queries.page_events if kind == "events" else queries.page_tickets
            f: Any = (queries.EventFilter if kind == "events" else queries.TicketFilter).from_params(params)
            t0 = time.perf_counter()
            page = page_fn(engine, f)
            t1 = time.perf_counter()
            if page.next_cursor:
                page_fn(engine, f, page.next_cursor)
            t2 = time.perf_counter()
            _p, count = pager(params)
            t3 = time.perf_counter()
            t["page"].append((t1 - t0) * 1000)
            t["next"].append((t2 - t1) * 1000)
            t["answer"].append((t3 - t2) * 1000)
            counts.append(count.value)
            capped = capped or count.capped
        cells = "".join(f" {pct(v, 50):6.1f} / {pct(v, 95):6.1f}" for v in t.values())
        print(f"  {shape:28}{cells}   {int(statistics.median(counts)):>9,}{'+' if capped else ''}")
        print(f"      plan: {plan}")
        all95.append((pct(t["answer"], 95), shape))
    if all95:
        worst = max(all95)
        print(f"  slowest answer p95: {worst[0]:.1f} ms ({worst[1]})")


def export_rss(url: str) -> None:
    for n in (10_000, 1_000_000):
        until = stamp(START + (n + 0.5) * SPAN / N_EVENTS)
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", EXPORT, url, until], capture_output=True, text=True, check=True, cwd=REPO
        )
        lines, rss = out.stdout.split()
        took = time.perf_counter() - t0
        print(f"  export jsonl of {int(lines):>9,} events: peak RSS {rss} MB, {took:.1f} s")


def main() -> None:
    which = [a for a in sys.argv[1:] if a in ("sqlite", "postgresql")] or ["sqlite", "postgresql"]
    if "sqlite" in which:
        print("SQLite: building or reusing", SQLITE)
        engine = open_sqlite()
        measure(engine, "SQLite")
        export_rss(f"sqlite:///{SQLITE}")
        engine.dispose()
    if "postgresql" in which:
        keep = "keep" in sys.argv[1:]
        print("\nPostgreSQL: seeding or (keep) reusing fl_bench_search")
        engine = open_postgresql(keep)
        try:
            measure(engine, "PostgreSQL")
            export_rss(PG_URL)
        finally:
            engine.dispose()
            if not keep:
                drop_postgresql()


if __name__ == "__main__":
    main()
