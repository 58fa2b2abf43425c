"""The account-status runbook's note names why an account is locked as the directory says it
(connectors' lock_reason): an idle or a temporary lock is not "after too many failed sign-ins"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.registry import registry
from runner.runbook import load_runbook
from runner.templating import render_value

REPO = Path(__file__).resolve().parents[3]
BOOK = load_runbook(REPO / "runbooks" / "account-status.yaml", registry())


def _note(lang: str, **status: Any) -> str:
    template = BOOK.note if lang == "en" else BOOK.notes[lang]
    context = {
        "params": {"user": "alice", "directory": {"label": "Corp"}},
        "steps": {
            "status": {
                "exists": True,
                "disabled": False,
                "expired": False,
                "password_expired": False,
                "must_change": False,
                "password_expires": "",
                **status,
            }
        },
    }
    return str(render_value(template, context))


@pytest.mark.parametrize(
    "reason,en,nl",
    [
        ("failures", "locked after too many failed sign-ins", "geblokkeerd na te veel mislukte aanmeldingen"),
        ("admin", "locked by an administrator", "geblokkeerd door een beheerder"),
        ("temporary", "locked for a while after failed sign-ins", "geblokkeerd voor even, na mislukte aanmeldingen"),
        ("idle", "locked because it was not used for too long", "geblokkeerd omdat het te lang niet is gebruikt"),
        ("", "locked,", "geblokkeerd,"),  # a lock whose kind is not known is not given one
    ],
)
def test_the_note_says_why_the_account_is_locked(reason: str, en: str, nl: str) -> None:
    assert en in _note("en", locked=True, lock_reason=reason)
    assert nl in _note("nl", locked=True, lock_reason=reason)


def test_an_unlocked_account_says_so() -> None:
    assert "not locked" in _note("en", locked=False, lock_reason="")
    assert "niet geblokkeerd" in _note("nl", locked=False, lock_reason="")
