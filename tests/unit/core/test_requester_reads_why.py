"""Why an escalated ticket stopped, as its requester reads it in Dutch: a target's technical
sentence (an SSH printer's state, a WinRM fault) has no translation, and the Dutch ticket page
showed it in English ("ssh: printer 'office-1' on print-lab is stopped ..."). The requester now
reads its reason in plain Dutch; the service desk still reads the sentence in full."""

from __future__ import annotations

import pytest

from connectors.base import Rejected
from runner import mytickets
from runner.service import Firstline
from runner.texts import DETAILS_WITH_THE_DESK, for_requester
from tests.fakes import FakeConnector, Manual

pytestmark = pytest.mark.both_databases

TECHNICAL = "ssh: printer 'office-1' on print-lab is stopped (paused by lp); new jobs will wait"


@pytest.mark.parametrize(
    ("text", "reason", "lang", "shown"),
    [
        (TECHNICAL, "printer_stopped", "nl", "De printer staat stil."),
        (TECHNICAL, "printer_stopped", "en", TECHNICAL),  # English readers get the sentence itself
        (TECHNICAL, "no_such_reason", "nl", DETAILS_WITH_THE_DESK["nl"]),
        (TECHNICAL, None, "nl", DETAILS_WITH_THE_DESK["nl"]),
        ("The account does not exist.", "not_found", "nl", "Het account bestaat niet."),  # translated: as it is
        (None, "printer_stopped", "nl", None),
    ],
)
def test_for_requester(text: str | None, reason: str | None, lang: str, shown: str | None) -> None:
    assert for_requester(text, reason, lang) == shown


def test_an_escalated_ticket_reads_in_dutch_for_its_requester(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}],
        "unlock_account": [Rejected(TECHNICAL, reason="printer_stopped")],
    }
    sub = app.submit(
        "fake-unlock", {"user": "bob"}, requester="alice@example.org", roles={"agent"}, channel="portal",
        dispatcher=Manual(),
    )  # fmt: skip
    app.execute(sub.ticket_id)
    nl = mytickets.one(app, "alice@example.org", sub.ticket_number, "nl")
    assert nl["state"] == "escalated"
    assert nl["message"] == "De printer staat stil."
    failed = [s for s in nl["steps"] if s["status"] == "failed"]
    assert failed and all(s["message"] == "De printer staat stil." for s in failed)
    assert TECHNICAL not in str(nl)
    listed = {t["number"]: t for t in mytickets.mine(app, "alice@example.org", "nl")}
    assert listed[sub.ticket_number]["message"] == "De printer staat stil."
    # in English, and for the service desk, the sentence itself
    en = mytickets.one(app, "alice@example.org", sub.ticket_number, "en")
    assert en["message"] == TECHNICAL


def test_requester_message_in_by_state() -> None:
    from runner.texts import requester_message_in

    assert requester_message_in("escalated", TECHNICAL, "printer_stopped", None, None, "nl") == "De printer staat stil."
    # a closed ticket's message says what to correct: kept (translated when known)
    assert requester_message_in("closed", TECHNICAL, "printer_stopped", None, None, "nl") == TECHNICAL
    # a resolved ticket's message is its note, in the runbook's own translation
    note, i18n = "Account bob was unlocked.", '{"nl": "Account bob is ontgrendeld."}'
    assert requester_message_in("resolved", note, None, note, i18n, "nl") == "Account bob is ontgrendeld."
