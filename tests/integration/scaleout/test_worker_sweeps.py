"""A ``firstline worker`` sweeps too: with no portal running, a queued run whose message never
reached the broker is ended ``never_started`` by the worker's own periodic sweep, by the
system sweeper, and nothing is left queued (issue 9: "a periodic sweep ... leaves nothing in
queued or running past its deadline"). Real Redis, a real worker subprocess."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
import redis
from sqlalchemy import select

from runner.ledger.tables import audit_event, ticket
from tests.integration.scaleout.conftest import REDIS, _claim_redis_db

pytestmark = pytest.mark.integration


class Lost:
    """A dispatcher whose messages vanish (a broker that lost them)."""

    name = "lost"

    @contextmanager
    def reserve(self) -> Any:
        yield lambda _ticket_id: None

    def depth(self) -> int:
        return 0

    def close(self) -> None:
        return None


def test_a_worker_alone_ends_a_run_whose_message_was_lost(make_stack: Any, request: pytest.FixtureRequest) -> None:
    number = _claim_redis_db()  # a Redis database of its own (nothing is ever published to it)
    request.addfinalizer(lambda: redis.Redis(*REDIS, db=number).flushdb())  # after the worker stopped
    stack = make_stack(f"redis://{REDIS[0]}:{REDIS[1]}/{number}", sweep_interval="0.5", run_start_within="1")
    lost = stack.app.runs.submit(
        "account-status", {"user": "alice"}, requester="alice", roles={"employee"}, channel="portal", dispatcher=Lost()
    )
    stack.start_worker("--concurrency", "1", "--pool", "threads")
    states = stack.wait_final([lost.ticket_id], timeout=30)
    assert states == {lost.ticket_id: "escalated"}
    with stack.app.engine.connect() as conn:
        row = conn.execute(select(ticket.c.reason).where(ticket.c.id == lost.ticket_id)).one()
        actors = {
            r.actor
            for r in conn.execute(
                select(audit_event.c.actor).where(audit_event.c.ticket == lost.ticket_number)
            ).all()
        }
    assert row.reason == "never_started"
    assert "system:sweeper" in actors
