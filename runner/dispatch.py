"""Dispatchers: how a submitted run (a ``queued`` ticket id) reaches ``execute(ticket_id)``.

The run service (``runner.runs``) submits like this::

    with dispatcher.reserve() as send:   # QueueFull here: refused, no ticket written
        ticket_id = <write the queued ticket and commit>
        send(ticket_id)                  # hands over the id, nothing else

A dispatcher carries only the ticket id: everything else is in the ledger, and secret
parameters travel separately (``runner.runs``; docs/architecture.md "Secrets across the
seam"). ``execute`` claims the ticket atomically, so delivering an id twice never runs
its steps twice. Implementations:

* ``InlineDispatcher`` — runs in the caller's thread inside ``send`` (the CLI: progress
  printed as it goes, the outcome returned).
* ``InProcessDispatcher`` — a bounded worker pool in this process (the portal's embedded
  default): at most ``workers`` runs at once and ``queue_size`` waiting; ``reserve``
  raises ``QueueFull`` beyond that.
* ``CeleryDispatcher`` — publishes the id to a Celery broker (``FIRSTLINE_BROKER_URL``;
  ``runner.celery_app``) for ``firstline worker`` processes, on the queue ``route(tid)``
  names (interactive or batch). It is *out of process*: ``submit`` then seals secret
  parameters into the ledger (``runner.sealed``) instead of keeping them in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

from runner.errors import FirstlineError
from runner.oplog import get_logger

Send = Callable[[int], None]
Execute = Callable[[int], Any]


class QueueFull(FirstlineError):
    """Every worker is busy and the wait queue is full: the run was refused before a ticket
    was written (nothing lost); try again shortly. CLI exit code 2, HTTP 503."""

    exit_code = 2
    reason_code = "queue_full"


class Dispatcher(Protocol):
    """Hands a committed ``queued`` ticket id to whatever will call ``execute`` on it.

    A dispatcher whose ``execute`` runs in another process sets ``out_of_process = True``
    (``runner.runs`` then seals secret parameters for it); one that sets ``routes_by_run =
    True`` is reserved with ``reserve(channel=..., runbook=...)`` by ``submit`` (the ticket's
    channel and runbook name, for choosing a queue)."""

    name: str

    def reserve(self) -> Any:
        """A context manager yielding ``send(ticket_id)``; raises ``QueueFull`` when it
        cannot take one more run (before the caller writes a ticket). Leaving the block
        without calling ``send`` gives the place back."""
        ...

    def depth(self) -> int:
        """Runs waiting or executing in this dispatcher (for ``/metrics`` and ``/readyz``)."""
        ...

    def close(self) -> None:
        """Stop taking runs; let the ones already handed over finish."""
        ...


class InlineDispatcher:
    """Executes in the caller's thread, inside ``send``: what ``firstline run`` uses.

    *execute* is called with the ticket id; its return value is kept in ``results``
    (ticket id → value) for the caller to take."""

    name = "inline"

    def __init__(self, execute: Execute) -> None:
        self._execute = execute
        self.results: dict[int, Any] = {}

    @contextmanager
    def reserve(self) -> Iterator[Send]:
        def send(ticket_id: int) -> None:
            self.results[ticket_id] = self._execute(ticket_id)

        yield send

    def depth(self) -> int:
        return 0

    def close(self) -> None:
        return None


class InProcessDispatcher:
    """A bounded pool of *workers* threads with at most *queue_size* runs waiting.

    ``reserve`` takes one of ``workers + queue_size`` places without blocking, or raises
    ``QueueFull``; the place is given back when the run ends (or when the reservation is
    left unused). Exceptions from *execute* are logged, never lost silently (the ticket
    itself is then ended by ``execute``'s own handling or by the sweep).
    """

    name = "in-process"

    def __init__(self, execute: Execute, *, workers: int = 4, queue_size: int = 32) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError("workers must be at least 1 and queue_size at least 0")
        self._execute = execute
        self.capacity = workers + queue_size
        self._places = threading.BoundedSemaphore(self.capacity)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="firstline-run")
        self._count_lock = threading.Lock()
        self._depth = 0
        self._closed = False

    @contextmanager
    def reserve(self) -> Iterator[Send]:
        with self._place(here=False) as send:
            yield send

    @contextmanager
    def _place(self, *, here: bool) -> Iterator[Send]:
        """Take one of the places (``QueueFull`` when none is free or the pool is closing);
        ``send`` hands the run to a pool thread, or runs it in the caller's thread (*here*).
        Either way the place comes back when the run ends, or when ``send`` was not called."""
        if self._closed:
            raise QueueFull("Firstline is shutting down and takes no new runs; try again in a moment.")
        if not self._places.acquire(blocking=False):
            raise QueueFull(
                "Firstline is busy (%(capacity)s runs in progress or waiting); nothing was started. "
                "Try again in a minute.",
                capacity=self.capacity,
            )
        handed_over = False

        def send(ticket_id: int) -> None:
            nonlocal handed_over
            with self._count_lock:
                self._depth += 1
            if here:
                handed_over = True
                self._run(ticket_id)  # gives the place back and counts the run out, whatever happens
            else:
                self._pool.submit(self._run, ticket_id)
                handed_over = True

        try:
            yield send
        finally:
            if not handed_over:
                self._places.release()

    def here(self) -> _Here:
        """A dispatcher for a caller that would only wait for the outcome (the portal's
        synchronous API answers): ``reserve`` takes one of this pool's places the same way
        (``QueueFull`` beyond them), and ``send`` executes the run in the caller's own thread
        instead of handing it to a pool thread and waiting to be woken."""
        return _Here(self)

    def _run(self, ticket_id: int) -> None:
        try:
            self._execute(ticket_id)
        except BaseException:  # noqa: BLE001 - a worker thread must survive any run
            get_logger().exception("run.dispatch_failed", ticket_id=ticket_id)
        finally:
            with self._count_lock:
                self._depth -= 1
            self._places.release()

    def depth(self) -> int:
        with self._count_lock:
            return self._depth

    def close(self, wait: bool = True) -> None:
        self._closed = True
        self._pool.shutdown(wait=wait)


class _Here:
    """``InProcessDispatcher.here()``: the pool's places, the caller's thread."""

    name = "in-process (caller's thread)"

    def __init__(self, pool: InProcessDispatcher) -> None:
        self._pool = pool

    @contextmanager
    def reserve(self) -> Iterator[Send]:
        with self._pool._place(here=True) as send:
            yield send

    def depth(self) -> int:
        return self._pool.depth()

    def close(self) -> None:
        return None


class CeleryDispatcher:
    """Publishes ticket ids to Celery (``runner.celery_app``): the message holds the id only.

    *app*: the Celery application (``make_celery``); *route*: ticket id → queue name
    (``celery_app.INTERACTIVE`` / ``BATCH``), read from the ledger; *queue_of*: (channel,
    runbook) → queue name, used instead when ``reserve`` is given both (``routes_by_run``:
    ``submit`` passes them, sparing a read of the ticket it has just written per run; the
    lost-message republish does not). ``reserve`` never refuses: the broker holds
    the waiting runs. ``send`` raises when the broker cannot take the message (after a short
    publish retry), and ``submit`` then ends the ticket ``never_started`` at once.
    ``depth()`` is the number of messages waiting in the broker's queues (0 when it cannot
    be asked)."""

    name = "celery"
    out_of_process = True
    routes_by_run = True

    def __init__(
        self, app: Any, route: Callable[[int], str], queue_of: Callable[[str, str], str] | None = None
    ) -> None:
        from runner.celery_app import TASK_NAME

        self.app, self._route, self._queue_of, self._task = app, route, queue_of, TASK_NAME
        self._closed = False

    @contextmanager
    def reserve(self, *, channel: str | None = None, runbook: str | None = None) -> Iterator[Send]:
        if self._closed:
            raise QueueFull("Firstline is shutting down and takes no new runs; try again in a moment.")
        queue_of, known = self._queue_of, None
        if queue_of is not None and channel is not None and runbook is not None:
            known = queue_of(channel, runbook)

        def send(ticket_id: int) -> None:
            queue = known if known is not None else self._route(ticket_id)
            self.app.send_task(self._task, args=[int(ticket_id)], queue=queue, ignore_result=True)

        yield send

    def depth(self) -> int:
        return self.waiting() or 0

    def waiting(self) -> int | None:
        """Messages waiting in the broker's queues (not those a worker holds); None when
        the broker cannot be asked."""
        from runner.celery_app import QUEUES

        total = 0
        try:
            with self.app.connection_for_write() as conn:
                for queue in QUEUES:
                    channel = conn.channel()
                    try:
                        total += int(channel.queue_declare(queue=queue, passive=True).message_count)
                    except conn.channel_errors:  # not declared yet (nothing was ever sent): empty
                        pass
                    finally:
                        channel.close()
        except Exception:  # noqa: BLE001 - a metric must not fail the page asking for it
            get_logger().warning("dispatch.depth_unknown")
            return None
        return total

    def close(self) -> None:
        self._closed = True
        pool = getattr(self.app, "_pool", None)
        if pool is not None:
            pool.force_close_all()
            forget_pool(pool)
            self.app._pool = None


def forget_pool(pool: Any) -> None:
    """Drop a closed kombu connection pool, and the producer pools built on it, from kombu's
    process-wide registries (``kombu.pools``; keyed by broker URL): otherwise another Celery app
    of this process with the same broker URL gets the closed pool and every publish fails
    with "Acquire on closed pool" (seen as tickets ending ``never_started`` in the test suite,
    where later tests reuse a broker URL)."""
    from kombu import pools

    for key, found in list(pools.connections.items()):
        if found is pool:
            pools.connections.pop(key, None)
    for key, found in list(pools.producers.items()):
        if getattr(found, "connections", None) is pool:
            pools.producers.pop(key, None)
