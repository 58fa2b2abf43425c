"""The watchdog fires each guard at its own deadline, whatever order guards arrive in."""

from __future__ import annotations

import threading
import time
from typing import Any

from runner.watchdog import Watchdog


class _Stub:
    """The little of a connector the watchdog touches: ``cancel`` and two names."""

    name = "stub"
    target_name = "t"

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def cancel(self) -> bool:
        self.cancelled.set()
        return True


def _hold(dog: Watchdog, conn: _Stub, timeout: float, release: threading.Event) -> threading.Thread:
    def body() -> None:
        with dog.guard(conn, timeout):  # type: ignore[arg-type]
            release.wait(10)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def _waiting(dog: Watchdog) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with dog._cond:  # the test waits until the loop sleeps on the far guard
            if dog._wakes_at is not None and dog._wakes_at != float("inf"):
                return True
        time.sleep(0.005)
    return False


def test_an_earlier_guard_added_while_the_loop_sleeps_on_a_later_one_fires_on_time() -> None:
    dog = Watchdog(grace=0.0)
    far, near, release = _Stub(), _Stub(), threading.Event()
    threads: list[Any] = [_hold(dog, far, 30.0, release)]
    assert _waiting(dog)  # the loop now sleeps until the far guard's deadline (30 s)
    started = time.monotonic()
    threads.append(_hold(dog, near, 0.2, release))
    assert near.cancelled.wait(5), "the near guard was not fired: the sleeping loop was not woken"
    assert time.monotonic() - started < 5
    assert not far.cancelled.is_set()
    release.set()
    for t in threads:
        t.join(5)


def test_guards_arriving_latest_deadline_last_each_fire() -> None:
    dog = Watchdog(grace=0.0)
    first, second, release = _Stub(), _Stub(), threading.Event()
    threads = [_hold(dog, first, 0.1, release)]
    assert _waiting(dog)
    threads.append(_hold(dog, second, 0.3, release))  # later than the loop's wake-up: no need to wake it
    assert first.cancelled.wait(5) and second.cancelled.wait(5)
    release.set()
    for t in threads:
        t.join(5)
