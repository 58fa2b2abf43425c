"""A resolved ticket's headline says what the run did: "Fixed" only when a step changed its
target; "Done: nothing needed changing" when the state-changing steps were skipped or found
nothing to change (an account that was not locked, a queue already empty); "Done" for a
runbook that only reads (a check). All three said "Fixed" (a tester's find, 2026-12-02)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from connectors.registry import registry
from runner.mytickets import effect_of, outcome

APP = SimpleNamespace(connectors=registry())


def _row(action: str, status: str, **outputs: object) -> dict[str, object]:
    return {"connector": "ldap", "action": action, "status": status, "outputs": json.dumps(outputs)}


@pytest.mark.parametrize(
    ("steps", "effect"),
    [
        ([_row("account_status", "ok", locked=True), _row("unlock_account", "ok", changed=True)], "changed"),
        ([_row("account_status", "ok"), _row("unlock_account", "ok")], "changed"),  # did not say: changed
        ([_row("account_status", "ok", locked=False), _row("unlock_account", "skipped")], "unchanged"),
        ([_row("account_status", "ok"), _row("unlock_account", "ok", changed=False)], "unchanged"),
        ([_row("account_status", "ok", locked=False)], "checked"),
    ],
)
def test_the_effect_of_a_resolved_run(steps: list[dict[str, object]], effect: str) -> None:
    assert effect_of(APP, steps) == effect


@pytest.mark.parametrize(
    ("effect", "lang", "label"),
    [
        ("changed", "en", "Fixed"),
        ("unchanged", "en", "Done: nothing needed changing"),
        ("checked", "en", "Done"),
        ("changed", "nl", "Opgelost"),
        ("unchanged", "nl", "Klaar: er hoefde niets te veranderen"),
        ("checked", "nl", "Klaar"),
        (None, "en", "Fixed"),
    ],
)
def test_the_headline_follows_the_effect(effect: str | None, lang: str, label: str) -> None:
    said = outcome("resolved", None, lang, effect=effect)
    assert said["code"] == "resolved" and said["label"] == label and said["next"]
    assert outcome("escalated", None, lang, effect="unchanged")["code"] == "escalated"  # only for resolved
