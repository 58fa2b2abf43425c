"""The agent's ticket page shows stored parameters, step inputs and outputs as text, escaped
by Jinja only: a mail step's ``message_id`` read ``\\u003c…@host\\u003e`` (``tojson`` is
made for ``<script>`` blocks, not for text on a page)."""

from __future__ import annotations

from typing import Any

from portal import i18n
from portal.rendering import make_templates


def _ticket(outputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": "FL-000009",
        "state": "resolved",
        "reason": None,
        "runbook": "account-unlock",
        "subject": "alice",
        "directory": "corp",
        "requester": "alice@example.org",
        "opened_by": None,
        "opened_at": "2026-11-30T14:23:16.457597+00:00",
        "closed_at": None,
        "work_note": None,
        "message": None,
        "resolution_note": None,
        "params": params,
        "steps": [
            {
                "seq": 1,
                "step_id": "notify",
                "connector": "mail",
                "action": "send",
                "target": "smtp",
                "status": "ok",
                "reason": None,
                "inputs": {"to": "alice@example.org"},
                "outputs": outputs,
                "message": "Done",
            }
        ],
    }


def _render(ticket: dict[str, Any]) -> str:
    token = i18n.current_lang.set("en")
    try:
        macro = make_templates().env.get_template("agent/_ticket.html").module.ticket_body  # type: ignore[attr-defined]
        return str(macro(ticket))
    finally:
        i18n.current_lang.reset(token)


def test_step_outputs_and_parameters_are_text_escaped_once() -> None:
    page = _render(_ticket({"message_id": "<173.abc@firstline.example>"}, {"user": "zoë", "note": 'a & b\'s "x"'}))
    assert "\\u003c" not in page and "\\u0026" not in page and "\\u0027" not in page
    assert "{&#34;message_id&#34;: &#34;&lt;173.abc@firstline.example&gt;&#34;}" in page
    assert "zoë" in page and "a &amp; b&#39;s \\&#34;x\\&#34;" in page


def test_markup_in_a_stored_value_stays_text() -> None:
    page = _render(_ticket({"banner": "<script>alert(1)</script>"}, {"user": "</code><b>x</b>"}))
    assert "<script>" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;/code&gt;&lt;b&gt;x&lt;/b&gt;" in page
