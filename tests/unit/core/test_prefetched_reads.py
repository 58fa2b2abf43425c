"""A read made for a request just before its run (the agent desk's account look-up) stands in
for the run's identical read (runner.engine.Prefetched): same connector, target, action and
inputs, a step that changes nothing, within PREFETCH_MAX_AGE, once. State-changing steps
always ask the target. And the portal's synchronous answers run in the caller's thread
within the in-process pool's places (InProcessDispatcher.here)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from runner import engine, sealed
from runner.api import open_app
from runner.dispatch import InlineDispatcher, InProcessDispatcher, QueueFull
from runner.engine import PREFETCHED_MESSAGE, Read
from runner.ledger.sealed_tables import run_secret
from runner.ledger.tables import step_result, ticket
from runner.service import Firstline
from runner.settings import Settings
from tests.fakes import FakeConnector, Manual


def _steps(app: Firstline, ticket_id: int) -> list[tuple[str, str, int, str]]:
    with app.engine.connect() as c:
        rows = c.execute(
            select(step_result.c.step_id, step_result.c.status, step_result.c.attempts, step_result.c.message)
            .where(step_result.c.ticket_id == ticket_id)
            .order_by(step_result.c.seq)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _submit(app: Firstline, reads: tuple[Read, ...], dispatcher: Any) -> Any:
    """An agent's unlock of alice, offered *reads*, handed to *dispatcher*."""
    common = {"requester": "agent7", "roles": {"agent"}, "channel": "api"}
    return app.runs.submit("fake-unlock", {"user": "alice"}, dispatcher=dispatcher, reads=reads, **common)


def _run(app: Firstline, reads: tuple[Read, ...]) -> Any:
    inline = InlineDispatcher(lambda tid: app.runs.execute(tid))
    sub = _submit(app, reads, inline)
    return sub, inline.results[sub.ticket_id]


def _read(**changes: Any) -> Read:
    values: dict[str, Any] = {
        "connector": "fake",
        "target": "f1",
        "action": "account_status",
        "inputs": {"user": "alice"},
        "outputs": {"exists": True, "locked": True, "mail": ""},
        "at": time.monotonic(),
    }
    values.update(changes)
    return Read(**values)


def test_the_look_up_stands_in_for_the_check_and_the_unlock_still_asks(app: Firstline) -> None:
    FakeConnector.script = {
        "unlock_account": [{"unlocked": True, "changed": True}],
        "account_status": [{"locked": False}],
    }
    sub, out = _run(app, (_read(),))
    assert out.state == "resolved"
    # the check was not asked again; the unlock and the verify were
    assert [(a, i) for _t, a, i in FakeConnector.calls] == [
        ("unlock_account", {"user": "alice"}),
        ("account_status", {"user": "alice"}),
    ]
    steps = _steps(app, sub.ticket_id)
    assert steps[0] == ("check", "ok", 0, PREFETCHED_MESSAGE)  # recorded as such: 0 attempts on the target
    assert steps[1][:3] == ("unlock", "ok", 1)


@pytest.mark.parametrize(
    "read",
    [
        _read(inputs={"user": "bob"}),  # another account
        _read(target="f2"),  # another target
        _read(action="echo"),  # another action
        _read(connector="other"),
        _read(at=time.monotonic() - engine.PREFETCH_MAX_AGE - 1),  # too old
    ],
    ids=["other-input", "other-target", "other-action", "other-connector", "stale"],
)
def test_a_read_that_does_not_match_exactly_is_not_used(app: Firstline, read: Read) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    sub, out = _run(app, (read,))
    assert out.state == "resolved"
    assert next(a for _t, a, _i in FakeConnector.calls) == "account_status"  # the check asked the target
    assert _steps(app, sub.ticket_id)[0][2] == 1


def test_reads_are_used_once(app: Firstline) -> None:
    pre = engine.Prefetched([_read()])
    assert pre.take("fake", "f1", "account_status", {"user": "alice"}) is not None
    assert pre.take("fake", "f1", "account_status", {"user": "alice"}) is None


def test_unlock_read_offered_to_the_run_is_ignored_by_the_unlock_step(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": False}],
        "unlock_account": [{"unlocked": True, "changed": True}],
    }
    _sub, out = _run(app, (_read(action="unlock_account", outputs={"unlocked": True, "changed": True}),))
    assert out.state == "resolved"
    assert [a for _t, a, _i in FakeConnector.calls] == ["account_status", "unlock_account", "account_status"]


def test_here_runs_in_the_callers_thread_within_the_pools_places(app: Firstline) -> None:
    seen: list[str] = []

    def execute(ticket_id: int) -> Any:
        seen.append(threading.current_thread().name)
        return app.runs.execute(ticket_id)

    pool = InProcessDispatcher(execute, workers=1, queue_size=0)
    try:
        FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
        sub = app.runs.submit(
            "fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"}, channel="api", dispatcher=pool.here()
        )
        assert seen == [threading.current_thread().name]
        assert app.runs.wait(sub.ticket_id, timeout=5) is not None
        assert pool.depth() == 0  # the place was given back
        # the one place taken by a waiting run elsewhere: the caller's run is refused, no ticket
        with pool.reserve():
            with pytest.raises(QueueFull):
                with pool.here().reserve():
                    pass
    finally:
        pool.close()


# --- carried to another process (a Celery worker): sealed with the ticket, taken with the claim


class Broker(Manual):
    out_of_process = True


def _read_rows(app: Firstline) -> list[str]:
    with app.engine.connect() as c:
        return [str(t) for t in c.execute(select(run_secret.c.token).where(run_secret.c.kind == sealed.READS))]


def _submit_elsewhere(app: Firstline, reads: tuple[Read, ...]) -> int:
    broker = Broker()
    sub = _submit(app, reads, broker)
    assert broker.sent == [sub.ticket_id]
    return sub.ticket_id


@pytest.fixture
def worker(settings: Settings) -> Iterator[Firstline]:
    """A second Firstline over the same database: the worker process (no memory of the portal's reads)."""
    fl = open_app(settings, connectors={"fake": FakeConnector})
    yield fl
    fl.close()


def test_a_worker_uses_the_look_up_carried_sealed_and_the_row_goes_with_the_claim(
    app: Firstline, worker: Firstline
) -> None:
    FakeConnector.script = {
        "unlock_account": [{"unlocked": True, "changed": True}],
        "account_status": [{"locked": False}],
    }
    ticket_id = _submit_elsewhere(app, (_read(outputs={"exists": True, "locked": True, "mail": "alice@example.org"}),))
    tokens = _read_rows(app)
    assert len(tokens) == 1 and "alice" not in tokens[0] and "locked" not in tokens[0]  # sealed, never plain
    out = worker.runs.execute(ticket_id)
    assert out is not None and out.state == "resolved"
    assert [a for _t, a, _i in FakeConnector.calls] == ["unlock_account", "account_status"]  # no check asked
    assert _steps(worker, ticket_id)[0] == ("check", "ok", 0, PREFETCHED_MESSAGE)
    assert _read_rows(app) == []  # deleted in the claim transaction


def test_the_claim_takes_only_what_the_ticket_says_was_sealed_and_looks_for_older_tickets(
    app: Firstline, worker: Firstline
) -> None:
    """run_context["sealed"] lists the kinds sealed at submit (the claim reads run_secret only
    then); a ticket queued before that key existed still gets its sealed look-up."""
    FakeConnector.script = {
        "unlock_account": [{"unlocked": True, "changed": True}],
        "account_status": [{"locked": False}],
    }
    ticket_id = _submit_elsewhere(app, (_read(outputs={"exists": True, "locked": True, "mail": "alice@example.org"}),))
    with app.engine.begin() as c:
        ctx = json.loads(c.execute(select(ticket.c.run_context).where(ticket.c.id == ticket_id)).scalar_one())
        assert ctx["sealed"] == [sealed.READS]
        del ctx["sealed"]  # as an older version queued it
        c.execute(ticket.update().where(ticket.c.id == ticket_id).values(run_context=json.dumps(ctx)))
    out = worker.runs.execute(ticket_id)
    assert out is not None and out.state == "resolved"
    assert [a for _t, a, _i in FakeConnector.calls] == ["unlock_account", "account_status"]  # the look-up stood in
    assert _read_rows(app) == []

    FakeConnector.calls.clear()
    here = _submit(app, (), Broker())  # nothing to carry: the ticket says so
    with app.engine.connect() as c:
        ctx = json.loads(c.execute(select(ticket.c.run_context).where(ticket.c.id == here.ticket_id)).scalar_one())
    assert ctx["sealed"] == []
    assert worker.runs.execute(here.ticket_id) is not None  # claimed and run without a sealed read


def test_a_carried_look_up_older_than_the_limit_is_not_used(app: Firstline, worker: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    ticket_id = _submit_elsewhere(app, (_read(at=time.monotonic() - engine.PREFETCH_MAX_AGE - 0.5),))
    out = worker.runs.execute(ticket_id)
    assert out is not None and out.state == "resolved"
    assert next(a for _t, a, _i in FakeConnector.calls) == "account_status"  # the worker asked the target
    assert _steps(worker, ticket_id)[0][2] == 1
    assert _read_rows(app) == []


def test_a_look_up_that_cannot_travel_leaves_the_worker_to_read_afresh(app: Firstline, worker: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    ticket_id = _submit_elsewhere(app, (_read(outputs={"groups": {"a", "b"}}),))  # a set is not JSON
    assert _read_rows(app) == []
    out = worker.runs.execute(ticket_id)
    assert out is not None and out.state == "resolved" and _steps(worker, ticket_id)[0][2] == 1


def test_the_in_process_pool_seals_no_look_up(app: Firstline) -> None:
    FakeConnector.script = {
        "unlock_account": [{"unlocked": True, "changed": True}],
        "account_status": [{"locked": False}],
    }
    _sub, out = _run(app, (_read(),))
    assert out.state == "resolved" and _read_rows(app) == []


def test_wire_form_keeps_the_age_and_drops_what_it_cannot_trust() -> None:
    made = _read(at=time.monotonic() - 2.0)
    wire = engine.reads_to_wire([made])
    back = engine.reads_from_wire(wire)
    assert len(back) == 1 and (back[0].connector, back[0].inputs, back[0].outputs) == (
        "fake",
        {"user": "alice"},
        made.outputs,
    )
    assert 1.9 <= time.monotonic() - back[0].at <= 3.0
    future = {"reads": [dict(wire["reads"][0], at=time.time() + 30)]}  # another machine's clock far ahead
    assert engine.reads_from_wire(future) == []
    for junk in (
        {},
        {"reads": "x"},
        {"reads": [{"connector": "fake"}]},
        {"reads": [dict(wire["reads"][0], at="soon")]},
    ):
        assert engine.reads_from_wire(junk) == []


def test_secret_parameters_and_the_look_up_are_taken_together_with_the_claim(app: Firstline, worker: Firstline) -> None:
    """Both sealed rows of a ticket (kinds params and reads) are read and deleted in the claim."""
    broker = Broker()
    chosen = "Kv-9 a chosen passphrase"
    sub = app.runs.submit(
        "fake-reset",
        {"user": "alice", "new_password": chosen},
        requester="agent7",
        roles={"agent"},
        channel="api",
        dispatcher=broker,
        reads=(_read(action="account_status"),),
    )
    with app.engine.connect() as c:
        kinds = sorted(c.execute(select(run_secret.c.kind).where(run_secret.c.ticket_id == sub.ticket_id)).scalars())
    assert kinds == [sealed.PARAMS, sealed.READS]
    FakeConnector.script = {"reset_password": [{"changed": True}]}
    out = worker.runs.execute(sub.ticket_id)
    assert out is not None and out.state == "resolved"
    assert FakeConnector.calls[0][1:] == ("reset_password", {"user": "alice", "new_password": chosen})
    with app.engine.connect() as c:
        assert c.execute(select(run_secret)).all() == []
