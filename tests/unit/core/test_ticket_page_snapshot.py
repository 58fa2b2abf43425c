"""The employee's ticket page (``mytickets.one``) says "done" only when the state it shows is
final. A run that ends between the page's read of the ticket and its read of the steps used
to give a page labelled "Working on it" that also said it was done: the page's script then
never followed the run, and the person watched "Working on it" for ever (seen in CI under
load, ticket resolved in 13 ms)."""

from __future__ import annotations

from typing import Any

import pytest

from runner import mytickets
from runner.ledger.tickets import FINAL_STATES
from runner.service import Firstline
from tests.fakes import FakeConnector, Manual

pytestmark = pytest.mark.both_databases


def _queued_unlock(app: Firstline) -> Any:
    """A queued fake unlock of bob, requested by alice (nothing runs until ``execute``)."""
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    return app.submit(
        "fake-unlock", {"user": "bob"}, requester="alice@example.org", roles={"agent"}, channel="portal",
        dispatcher=Manual(),
    )  # fmt: skip


def test_a_run_ending_between_the_two_reads_leaves_the_page_following_it(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = _queued_unlock(app)
    real_steps_after = mytickets._steps_after
    ran: list[int] = []

    def run_then_read(*args: Any) -> Any:
        if not ran:  # the run ends after the page read the ticket row, before it reads the steps
            ran.append(sub.ticket_id)
            app.execute(sub.ticket_id)
        return real_steps_after(*args)

    monkeypatch.setattr(mytickets, "_steps_after", run_then_read)
    page = mytickets.one(app, "alice@example.org", sub.ticket_number)
    assert ran, "the race was not staged"
    assert page["state"] not in FINAL_STATES  # the row it shows was read before the run ended
    assert page["done"] is False  # so the page keeps following the run
    assert page["outcome"]["code"] != "resolved"
    # following from the page's position brings the rest and the outcome
    followed = mytickets.follow(app, "alice@example.org", sub.ticket_number, page["last_seq"])
    assert followed.done and followed.state == "resolved"


def test_a_finished_run_is_shown_done(app: Firstline) -> None:
    sub = _queued_unlock(app)
    app.execute(sub.ticket_id)
    page = mytickets.one(app, "alice@example.org", sub.ticket_number)
    assert page["done"] is True and page["state"] == "resolved" and page["steps"]
