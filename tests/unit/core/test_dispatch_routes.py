"""The Celery dispatcher picks a submitted run's queue from the channel and runbook that
``submit`` hands it, without reading the ticket back (one database round trip per run on the
portal's path); the lost-message republish, which has only the ticket id, reads it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from runner.celery_app import BATCH, INTERACTIVE, dispatcher_for
from runner.service import Firstline
from tests.fakes import Manual
from tests.unit.core.test_run_seam import _submit


class Broker:
    """Stands in for the Celery app: remembers what was published where."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    def send_task(self, name: str, *, args: list[int], queue: str, ignore_result: bool) -> None:
        self.sent.append((args[0], queue))


@pytest.mark.parametrize(
    ("channel", "batch_runbooks", "queue"),
    [("portal", [], INTERACTIVE), ("worker", [], BATCH), ("api", ["fake-unlock"], BATCH)],
)
def test_submit_routes_by_its_own_channel_and_runbook_without_reading_the_ticket(
    app: Firstline, channel: str, batch_runbooks: list[str], queue: str
) -> None:
    broker = Broker()
    dispatcher = dispatcher_for(broker, app.engine, batch_runbooks)
    read_back: list[str] = []

    def spy(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "ticket.channel" in statement:
            read_back.append(statement)

    event.listen(app.engine, "before_cursor_execute", spy)
    try:
        sub = _submit(app, dispatcher, runbook="fake-unlock", channel=channel)
    finally:
        event.remove(app.engine, "before_cursor_execute", spy)
    assert broker.sent == [(sub.ticket_id, queue)]
    assert read_back == []


def test_with_only_the_ticket_id_the_queue_is_read_from_the_ledger(app: Firstline) -> None:
    broker = Broker()
    sub = _submit(app, Manual(), channel="worker")  # written, not yet sent anywhere
    dispatcher = dispatcher_for(broker, app.engine, [])
    with dispatcher.reserve() as send:  # as the republish of a lost message does
        send(sub.ticket_id)
    assert broker.sent == [(sub.ticket_id, BATCH)]
