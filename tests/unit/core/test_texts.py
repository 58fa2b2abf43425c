"""Stored English outcome texts shown in Dutch (runner.texts), runbook notes in both
languages, and a vetting that cannot be audited leaves no approval behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from connectors.password_policy import MESSAGES, message
from runner.errors import LedgerError
from runner.runs import REQUESTER_GUIDANCE
from runner.texts import EXACT, localize, note_in


@pytest.mark.parametrize("english", sorted(EXACT))
def test_every_exact_sentence_has_dutch(english: str) -> None:
    dutch = localize(english, "nl")
    assert dutch and dutch != english and dutch == EXACT[english]
    assert localize(english, "en") == english


@pytest.mark.parametrize("reason", sorted(MESSAGES))
def test_policy_texts_with_their_values(reason: str) -> None:
    values = {"min": 17, "max": 99, "n": 3, "minutes": 5, "days": 2}
    english = message(reason, "en", **values)
    assert localize(english, "nl") == message(reason, "nl", **values)


def test_must_change_refusals_have_dutch() -> None:
    from connectors.ldap import MUST_CHANGE_NOT_ENFORCED, MUST_CHANGE_UNKNOWN

    for english in (MUST_CHANGE_UNKNOWN, *MUST_CHANGE_NOT_ENFORCED.values()):
        assert english in EXACT, english


def test_formal_dutch_everywhere() -> None:
    import re

    for texts in MESSAGES.values():
        assert not re.search(r"\b(je|jij|jou|jouw)\b", texts.get("nl", ""), re.IGNORECASE), texts["nl"]
    for dutch in EXACT.values():
        assert not re.search(r"\b(je|jij|jou|jouw)\b", dutch, re.IGNORECASE), dutch


def test_templated_run_texts_and_unknown_text() -> None:
    busy = (
        "Another request (FL-000042) was still working on the same account after 60 s, so this one "
        "was not run; nothing was changed. The service desk will look at it."
    )
    assert localize(busy, "nl") == (
        "Een ander verzoek (FL-000042) werkte na 60 s nog aan hetzelfde doel (account), dus dit verzoek "
        "is niet uitgevoerd; er is niets gewijzigd. De servicedesk kijkt ernaar."
    )
    waiting = localize("Waiting for FL-000007 on account:corp:alice", "nl")
    assert waiting == "Wacht op FL-000007, dat met hetzelfde bezig is (account:corp:alice)"
    technical = "ssh: print queue 'x' does not exist on cups-lab"
    assert localize(technical, "nl") == technical  # the service desk reads it as written
    assert localize(None, "nl") is None and localize("Done", "fr") == "Done"
    assert localize(REQUESTER_GUIDANCE["en"], "nl") == REQUESTER_GUIDANCE["nl"]


def test_note_prefers_the_runbooks_own_translation() -> None:
    stored = json.dumps({"nl": "Account alice is ontgrendeld."})
    assert note_in("Account alice was unlocked.", stored, "nl") == "Account alice is ontgrendeld."
    assert note_in("Account alice was unlocked.", stored, "en") == "Account alice was unlocked."
    assert note_in("Resolved by automation.", None, "nl") == "Automatisch opgelost."
    assert note_in("Something else.", "not json", "nl") == "Something else."


def test_a_vetting_that_cannot_be_audited_leaves_no_approval(tmp_path: Path) -> None:
    from runner.api import open_app
    from runner.settings import Settings
    from tests.unit.core.conftest import UNLOCK

    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "fake-unlock.yaml").write_text(UNLOCK)
    (tmp_path / "inventory.yaml").write_text("defaults: {fake: f1}\ntargets:\n  f1: {connector: fake}\n")
    from tests.fakes import FakeConnector

    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'l.db'}",
        runbooks_dir=books,
        inventory=tmp_path / "inventory.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=None,
    )
    app = open_app(settings, {"fake": FakeConnector})
    try:
        broken = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no audit table: the event cannot be written
        with pytest.raises(LedgerError):
            app.catalogue.vet(broken, app.audit, "fake-unlock", "Ada (CAB)")
        assert not (books / "vetted.lock").exists()
        app.catalogue.vet(app.engine, app.audit, "fake-unlock", "Ada (CAB)")
        assert "fake-unlock" in json.loads((books / "vetted.lock").read_text())["runbooks"]
    finally:
        app.close()
