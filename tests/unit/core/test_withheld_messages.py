"""A message that holds a secret is withheld as a whole, never masked in place (no oracle).

"The new password is too [REDACTED]: use at least 15 characters" tells every ticket and
audit reader that the refused password was ``short``. The per-run scrubber replaces such a
free-text message by a fixed text (``runner.redaction.WITHHELD``); a structured value that
IS a secret stays ``[REDACTED]``; the operator log keeps in-place masking.
"""

from __future__ import annotations

import json
import unicodedata

import pytest

from connectors.base import Rejected
from runner.redaction import REDACTED, WITHHELD, Scrubber
from runner.service import Firstline
from tests.fakes import FakeConnector
from tests.unit.core.conftest import _reset_fake, app, settings, workdir  # noqa: F401 - fixtures

pytestmark = pytest.mark.both_databases

TOO_SHORT = "The new password is too {pw}: use at least 15 characters"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("short", TOO_SHORT.format(pw="short")),  # the given input: a word of the message
        ("password", TOO_SHORT.format(pw="short")),  # another word of it
        ("the", "the directory said the password is in the history"),  # a common word, twice
        ("15", TOO_SHORT.format(pw="short")),  # a number in it
        ("Zeer-Geheim 9182", "refused 'Zeer-Geheim 9182' (history); 'Zeer-Geheim 9182' again"),  # twice
        ("café-Lointain²", unicodedata.normalize("NFD", "refused café-Lointain² here")),  # NFD spelling
        (unicodedata.normalize("NFD", "café-Lointain"), "refused café-Lointain here"),  # NFC spelling
        ("p\u00e4ss-W0rd", "refused p%C3%A4ss-W0rd"),  # URL-encoded
    ],
)
def test_a_message_with_a_secret_is_withheld_whole(secret: str, message: str) -> None:
    scrub = Scrubber([secret])
    assert scrub.message(message) == WITHHELD["en"]
    assert scrub.message(message, "nl") == WITHHELD["nl"]
    assert scrub.value({"said": message}) == {"said": WITHHELD["en"]}
    assert scrub.value([secret, {"deep": secret}]) == [REDACTED, {"deep": REDACTED}]  # structured: the value
    assert scrub.value("x", "new_password") == REDACTED  # keyed as secret
    assert "[REDACTED]" not in scrub.message(message)  # no partial mask anywhere a store keeps


def test_a_message_without_a_secret_is_kept_and_the_log_masks_in_place() -> None:
    scrub = Scrubber(["Zeer-Geheim 9182"])
    assert scrub.message(TOO_SHORT.format(pw="short")) == TOO_SHORT.format(pw="short")
    assert scrub.text("x Zeer-Geheim 9182 y") == f"x {REDACTED} y"  # operator log only
    assert scrub.value({"m": "x Zeer-Geheim 9182 y"}, in_place=True) == {"m": f"x {REDACTED} y"}


@pytest.mark.parametrize("typed", ["short", "password", "15", "too"])
def test_a_refused_password_quoted_by_its_refusal_is_in_no_store(app: Firstline, typed: str) -> None:  # noqa: F811
    FakeConnector.script = {"reset_password": [Rejected(TOO_SHORT.format(pw="short"), reason="too_short")]}
    out = app.run("fake-reset", {"user": "alice", "new_password": typed}, requester="agent7")
    assert out.message == WITHHELD["en"], out.message
    ticket = json.dumps(app.ticket(out.ticket_number), ensure_ascii=False)
    audit = "".join(app.export_audit("jsonl"))
    for text in (ticket, audit):
        assert "too [REDACTED]" not in text and f"{REDACTED}: use" not in text
        assert "[REDACTED] characters" not in text and "is [REDACTED]" not in text
    assert WITHHELD["en"] in ticket
