"""The agent's ticket pages (a ticket, the escalated queue) show stored messages in the
reader's language, as the employee's pages do: on the Dutch desk an escalated unlock read
"Melding The account has expired; the service desk can help." and every step "Done"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from portal import i18n
from portal.rendering import make_templates

EXPIRED = "The account has expired; the service desk can help."


def _ticket(**extra: Any) -> dict[str, Any]:
    step = {"seq": 1, "step_id": "check", "connector": "ldap", "action": "account_status", "target": "corp"}
    return {
        "number": "FL-000008",
        "state": "escalated",
        "reason": "expired",
        "runbook": "account-unlock",
        "subject": "gone",
        "directory": "corp",
        "requester": "gone@example.org",
        "opened_by": "demo-agent@example.org",
        "opened_at": "2026-11-30T14:23:16.457597+00:00",
        "closed_at": "2026-11-30T14:23:16.476443+00:00",
        "work_note": "caller says locked",
        "message": EXPIRED,
        "resolution_note": None,
        "params": {"user": "gone"},
        "steps": [
            {**step, "status": "ok", "reason": None, "inputs": {}, "outputs": {}, "message": "Done"},
            {
                **step,
                "seq": 2,
                "status": "failed",
                "reason": "expired",
                "inputs": {},
                "outputs": {},
                "message": EXPIRED,
            },
        ],
        **extra,
    }


def _render(lang: str, ticket: dict[str, Any]) -> str:
    token = i18n.current_lang.set(lang)
    try:
        macro = make_templates().env.get_template("agent/_ticket.html").module.ticket_body  # type: ignore[attr-defined]
        return str(macro(ticket))
    finally:
        i18n.current_lang.reset(token)


def test_dutch_desk_shows_the_stored_messages_in_dutch() -> None:
    page = _render("nl", _ticket())
    # the employee's "the service desk can help" is read by the desk as what second level needs
    assert "Het account is verlopen (de einddatum is voorbij); Firstline verlengt geen accounts." in page
    assert EXPIRED not in page and "de servicedesk kan helpen" not in page
    assert "<td>Klaar</td>" in page and "<td>Done</td>" not in page


def test_english_desk_and_unknown_texts_stay_as_stored() -> None:
    page = _render("en", _ticket())
    assert "The account has expired (its end date has passed)" in page and EXPIRED not in page
    assert "<td>Done</td>" in page
    odd = "ssh: remote said something only the desk reads"
    assert odd in _render("nl", _ticket(message=odd))


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_the_runbooks_own_translated_note_is_used(lang: str) -> None:
    note = {"en": "Account gone unlocked.", "nl": "Account gone ontgrendeld."}
    page = _render(lang, _ticket(state="resolved", resolution_note=note["en"], resolution_note_i18n=json.dumps(note)))
    assert note[lang] in page


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_the_requester_guidance_note_is_read_as_the_desk_needs_it(lang: str) -> None:
    from runner.runs import REQUESTER_GUIDANCE
    from runner.texts import AGENT_REQUESTER_NOTE, localize

    page = _render(lang, _ticket(state="closed", resolution_note=REQUESTER_GUIDANCE["en"]))
    assert AGENT_REQUESTER_NOTE[lang] in page and REQUESTER_GUIDANCE[lang] not in page
    # the employee's pages keep their texts (runner.texts.localize is unchanged)
    assert localize(EXPIRED, "nl") == "Het account is verlopen; de servicedesk kan helpen."
