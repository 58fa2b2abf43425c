"""portal/runs.py over the run seam: runs go through the in-process pool (queued ticket,
executed by a pool thread, not the request's thread), ``run`` waits and hands a secret output
over once, ``submit`` returns at once and ``follow`` shows progress, a full pool answers 503
``busy`` without a ticket, and ``start``/``stop`` manage the pool and the periodic sweep."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from portal import runs
from portal.deps import ClientInfo, PortalContext
from portal.errors import _translate_runner_error
from runner.auth import AuthService, Principal
from runner.dispatch import InProcessDispatcher, QueueFull
from runner.errors import PolicyDenied
from runner.ledger.tables import ticket
from runner.runs import PROOF_SELFSERVICE
from runner.service import Firstline
from tests.fakes import FakeConnector
from tests.unit.core.conftest import _reset_fake, app, settings, workdir  # noqa: F401 - fixtures

EMPLOYEE = Principal("alice", "corp", "alice", "uid=alice", "Alice", frozenset({"employee"}))
CLIENT = ClientInfo("192.0.2.10", "pytest")


@pytest.fixture
def ctx(app: Firstline) -> Iterator[PortalContext]:  # noqa: F811 - the core fixture
    context = PortalContext(settings=app.settings, firstline=app, auth=AuthService(app), templates=None)  # type: ignore[arg-type]
    yield context
    runs.stop(context)


def test_run_takes_a_pool_place_and_hands_a_secret_over_once(ctx: PortalContext) -> None:
    threads: list[str] = []

    def reset(_inputs: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return {"temporary_password": "Tmp-Once-987", "changed": True}

    FakeConnector.script = {"reset_password": [reset]}
    # an employee resets only after a one-time code (runner.runs.PROOF_SELFSERVICE; a session alone is refused)
    with pytest.raises(PolicyDenied):
        runs.run(ctx, "fake-reset", {"user": "alice"}, user=EMPLOYEE, client=CLIENT, channel="portal")
    out = runs.run(
        ctx, "fake-reset", {"user": "alice"}, user=EMPLOYEE, client=CLIENT, channel="portal", proof=PROOF_SELFSERVICE
    )
    assert out.state == "resolved" and out.secrets == {"reset.temporary_password": "Tmp-Once-987"}
    # run() only waits for the outcome: it executes in the caller's (request) thread, taking one
    # of the pool's places (InProcessDispatcher.here), and gives it back
    assert threads == [threading.current_thread().name]
    pool = ctx.extras["dispatcher"]
    assert isinstance(pool, InProcessDispatcher) and pool.depth() == 0
    with ctx.firstline.engine.connect() as c:
        row = c.execute(select(ticket)).mappings().one()
    assert (row["channel"], row["opened_by"], row["started_at"] is not None) == ("portal", "alice", True)
    assert b"Tmp-Once-987" not in (
        ctx.firstline.settings.log_file.read_bytes() if ctx.firstline.settings.log_file else b""
    )


def test_submit_returns_at_once_and_follow_shows_the_progress(ctx: PortalContext) -> None:
    release = threading.Event()

    def slow(_inputs: dict[str, Any]) -> dict[str, Any]:
        assert release.wait(10)
        return {"locked": False}

    FakeConnector.script = {"account_status": [slow, {"locked": False}]}
    started = time.monotonic()
    sub = runs.submit(ctx, "fake-unlock", {}, user=EMPLOYEE, client=CLIENT, channel="portal")
    assert time.monotonic() - started < 5
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = runs.follow(ctx, sub.ticket_id, 0)
            if got.steps and got.steps[0]["status"] == "running":
                break
            time.sleep(0.01)
        assert got.state == "running" and got.steps[0]["step_id"] == "check"
    finally:
        release.set()
    out = ctx.firstline.runs.wait(sub.ticket_id, timeout=20)
    assert out is not None and out.state == "resolved"
    assert runs.follow(ctx, sub.ticket_id, got.last_seq).done


def test_a_full_pool_answers_busy_without_a_ticket(ctx: PortalContext) -> None:
    ctx.settings.run_workers, ctx.settings.run_queue_size = 1, 0
    release = threading.Event()
    entered = threading.Event()

    def slow(_inputs: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        assert release.wait(10)
        return {"locked": False}

    FakeConnector.script = {"account_status": [slow, {"locked": False}]}
    try:
        runs.submit(ctx, "fake-unlock", {}, user=EMPLOYEE, client=CLIENT, channel="portal")
        assert entered.wait(10)
        assert runs.ready(ctx) == "run queue full"
        with pytest.raises(QueueFull) as caught:
            runs.submit(ctx, "fake-unlock", {}, user=EMPLOYEE, client=CLIENT, channel="portal")
        status, code, _message, headers = _translate_runner_error(caught.value)
        assert (status, code, headers) == (503, "busy", {"Retry-After": "30"})
        with ctx.firstline.engine.connect() as c:
            assert len(c.execute(select(ticket.c.id)).all()) == 1
    finally:
        release.set()


def test_start_runs_the_sweep_and_stop_ends_it(ctx: PortalContext) -> None:
    ctx.settings.sweep_interval = 0.05
    pool = runs.start(ctx)
    assert runs.start(ctx) is pool and ctx.firstline.runs.dispatcher is pool
    sweeper = ctx.extras["sweeper"]
    runs.stop(ctx)
    assert "dispatcher" not in ctx.extras and ctx.firstline.runs.dispatcher is None
    assert not sweeper._thread.is_alive()
