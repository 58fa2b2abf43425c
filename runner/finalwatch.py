"""One reader for every waiter of a process: which of the tickets run elsewhere are final.

A portal request that handed its run to a Celery worker waits for the ticket to become
final (``RunService.wait``). Each waiter reading the state on its own cost one query per
waiter per pause: with 8–16 requests waiting in a portal process during a burst that was
about a quarter of the process's CPU (py-spy on ``bench/burst.py``, Celery on SQLite,
2026-11-30). ``FinalWatch`` instead reads the states of all the tickets this process waits
for in one query per *tick* (default 20 ms: a final state is seen 10 ms after it is written,
on average) and wakes the waiters through *notify*. The thread runs only while something
is waited for.

Errors reading the ledger (a PostgreSQL restart) are logged and retried after
``ERROR_PAUSE`` seconds; waiters keep waiting within their own timeout and read once
themselves at its end, so a lasting error still reaches them (``RunService.wait``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from runner.errors import LedgerError
from runner.ledger import tickets
from runner.ledger.store import READ_ONLY

ERROR_PAUSE = 0.5  # seconds before reading again after the ledger could not be read
CHUNK = 500  # ids per query (well under SQLite's bound-parameter limit)
MISSING = "missing"  # no such ticket: the waiter raises NotFoundError


class FinalWatch:
    """Tracks the tickets waited for in this process (``add`` / ``discard``, counted per
    waiter) and records, per ticket, its final state or ``MISSING`` (``seen``)."""

    def __init__(self, engine: Engine, notify: Callable[[], None], *, tick: float = 0.02, log: Any = None) -> None:
        self._engine = engine
        self._notify = notify
        self._tick = tick
        self._log = log
        self._mu = threading.Lock()
        self._wanted: dict[int, int] = {}  # ticket id -> number of waiters
        self._seen: dict[int, str] = {}  # ticket id -> final state or MISSING
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, ticket_id: int) -> None:
        """Watch *ticket_id* for one more waiter (starts the reader if it is idle)."""
        with self._mu:
            self._wanted[ticket_id] = self._wanted.get(ticket_id, 0) + 1
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._loop, name="firstline-final-watch", daemon=True)
                self._thread.start()

    def discard(self, ticket_id: int) -> None:
        """One waiter of *ticket_id* is done; forgotten when it was the last."""
        with self._mu:
            left = self._wanted.get(ticket_id, 0) - 1
            if left > 0:
                self._wanted[ticket_id] = left
            else:
                self._wanted.pop(ticket_id, None)
                self._seen.pop(ticket_id, None)

    def seen(self, ticket_id: int) -> str | None:
        """The final state read for *ticket_id*, ``MISSING``, or None (not final yet)."""
        with self._mu:
            return self._seen.get(ticket_id)

    def close(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        own = _Reader(self._engine)  # this thread's connection, kept while it runs
        try:
            self._watch(own)
        finally:
            own.drop()

    def _watch(self, own: _Reader) -> None:
        while not self._stop.wait(self._tick):
            with self._mu:
                if not self._wanted:
                    self._thread = None
                    return
                ids = [i for i in self._wanted if i not in self._seen]
            if not ids:
                continue
            try:
                states = own.read(ids)
            except (LedgerError, SQLAlchemyError):
                own.drop()  # a connection the server dropped: a new one next time
                if self._log is not None:
                    self._log.warning("run.wait_ledger_unavailable", waiting=len(ids))
                self._stop.wait(ERROR_PAUSE)
                continue
            changed = False
            with self._mu:
                for i in ids:
                    state = states.get(i, MISSING)
                    if (state == MISSING or state in tickets.FINAL_STATES) and i in self._wanted:
                        self._seen[i] = state
                        changed = True
            if changed:
                self._notify()
        with self._mu:
            self._thread = None


# The tick's one statement, the same text whatever the number of ids (SQLAlchemy's IN list
# is expanded, its statement built and compiled again, at every tick: about 5% of a portal
# process's CPU in bench/burst.py, Celery on PostgreSQL, 2026-12-01): the ids travel as one
# value, a PostgreSQL array or, on SQLite, a JSON array read by json_each.
_STATES_PG = "SELECT id, state FROM ticket WHERE id = ANY(%s)"
_STATES_SQLITE = "SELECT id, state FROM ticket WHERE id IN (SELECT value FROM json_each(?))"


def _states_of(dialect: str, ids: list[int]) -> tuple[str, tuple[Any, ...]]:
    """(SQL, parameters) reading ``(id, state)`` of the tickets *ids* (ints)."""
    if dialect == "postgresql":
        return _STATES_PG, ([int(i) for i in ids],)
    return _STATES_SQLITE, (json.dumps([int(i) for i in ids]),)


class _Reader:
    """The watch thread's own connection, kept while the thread runs: a pool checkout per
    tick cost a ping round trip on PostgreSQL (``pool_pre_ping``), 50 times a second. Its
    read transaction ends after each tick, so the next one sees what was committed since."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def read(self, ids: list[int]) -> dict[int, str]:
        """ticket id -> state, for those of *ids* that exist."""
        found: dict[int, str] = {}
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(**{READ_ONLY: True})
        conn = self._conn
        try:
            for start in range(0, len(ids), CHUNK):
                part = ids[start : start + CHUNK]
                rows = conn.exec_driver_sql(*_states_of(conn.dialect.name, part))
                found.update({int(r[0]): str(r[1]) for r in rows})
        finally:
            conn.rollback()
        return found

    def drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except SQLAlchemyError:
                pass
