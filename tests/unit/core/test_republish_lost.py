"""The sweep publishes again the queued tickets whose message a broker lost (a Redis that
keeps nothing on disk was restarted): only when the broker's queues are empty, only for
tickets queued longer than ``republish_after``, at most once per window; never for the
in-process pool or when the broker cannot be asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from runner.ledger.store import transaction
from runner.ledger.tables import ticket
from runner.service import Firstline
from tests.fakes import Manual

pytestmark = pytest.mark.both_databases


class Broker(Manual):
    """``Manual`` as an out-of-process dispatcher whose queues hold *held* messages
    (None: the broker cannot be asked)."""

    out_of_process = True

    def __init__(self, held: int | None = 0) -> None:
        super().__init__()
        self.held = held

    def waiting(self) -> int | None:
        return self.held


def _queued(app: Firstline, broker: Manual, age_s: float) -> int:
    sub = app.submit(
        "fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"}, channel="portal", dispatcher=broker
    )
    past = (datetime.now(UTC) - timedelta(seconds=age_s)).isoformat(timespec="microseconds")
    with transaction(app.engine) as conn:
        conn.execute(update(ticket).where(ticket.c.id == sub.ticket_id).values(updated_at=past))
    return sub.ticket_id


def _sweep_with(app: Firstline, broker: Any) -> None:
    app.runs.dispatcher = broker
    app.runs.sweep()


def test_a_ticket_queued_long_with_an_empty_broker_is_published_again_once(app: Firstline) -> None:
    broker = Broker(held=0)
    old = _queued(app, broker, age_s=app.runs.republish_after + 1)
    young = _queued(app, broker, age_s=0)
    assert broker.sent == [old, young]
    _sweep_with(app, broker)
    assert broker.sent == [old, young, old]  # the old one again; the young one may still be on its way
    _sweep_with(app, broker)
    assert broker.sent == [old, young, old]  # not again within the window


@pytest.mark.parametrize("held", [1, 40, None])
def test_nothing_is_published_again_while_messages_wait_or_the_broker_cannot_be_asked(
    app: Firstline, held: int | None
) -> None:
    broker = Broker(held=held)
    old = _queued(app, broker, age_s=app.runs.republish_after + 1)
    _sweep_with(app, broker)
    assert broker.sent == [old]


def test_the_in_process_pool_is_never_asked_to_publish_again(app: Firstline) -> None:
    pool = Manual()  # not out of process: its queue lives in this process and loses nothing
    old = _queued(app, pool, age_s=app.runs.republish_after + 1)
    _sweep_with(app, pool)
    assert pool.sent == [old]
