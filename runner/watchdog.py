"""A last line of defence for step timeouts.

Connectors enforce their own timeouts. If a call still runs ``grace`` seconds past its
step's timeout (a library that ignored its socket timeout, a wedged remote), the
watchdog calls the connector's ``cancel()`` so the run can end ``escalated`` instead of
hanging with its ticket in progress. One daemon thread serves every run.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from connectors.base import Connector
from runner.oplog import get_logger


@dataclass
class Guard:
    connector: Connector
    deadline: float
    fired: bool = False
    cleanup_confirmed: bool | None = None


class Watchdog:
    def __init__(self, grace: float = 5.0) -> None:
        self.grace = grace
        self._guards: dict[int, Guard] = {}
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        # When the loop is waiting: the monotonic time it will wake at (inf: no guard to
        # watch). None while it is not waiting (it recomputes before it waits again).
        self._wakes_at: float | None = None

    @contextmanager
    def guard(self, connector: Connector, timeout: float) -> Iterator[Guard]:
        g = Guard(connector, time.monotonic() + timeout + self.grace)
        key = next(self._ids)
        with self._cond:
            self._guards[key] = g
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="firstline-watchdog", daemon=True)
                self._thread.start()
            if self._wakes_at is not None and g.deadline < self._wakes_at:
                # Only a guard due before the loop's next wake-up needs it now: waking the
                # loop for every step cost a thread switch each (5 % of a worker's CPU under
                # bench/burst.py); a later deadline is seen when it wakes anyway.
                self._cond.notify()
        try:
            yield g
        finally:
            with self._cond:
                self._guards.pop(key, None)

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [g for g in self._guards.values() if not g.fired and g.deadline <= now]
                for g in due:
                    g.fired = True
                if not due:
                    pending = [g.deadline for g in self._guards.values() if not g.fired]
                    self._wakes_at = min(pending) if pending else float("inf")
                    self._cond.wait(timeout=self._wakes_at - now if pending else None)
                    self._wakes_at = None
                    continue
            for g in due:
                try:
                    g.cleanup_confirmed = g.connector.cancel()
                except Exception:  # noqa: BLE001 - a failing cancel must not kill the watchdog
                    g.cleanup_confirmed = False
                get_logger().warning(
                    "step.watchdog_cancelled",
                    connector=g.connector.name,
                    target=g.connector.target_name,
                    cleanup_confirmed=g.cleanup_confirmed,
                )
