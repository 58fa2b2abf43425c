"""Every reason code the runner or a connector can put on a ticket or a step has words in
English and Dutch (``runner.texts.REASONS``): a new code would otherwise reach the agent
desk as a bare ``<code>``. Read from the source: every ``reason="..."`` keyword in
``runner/`` and ``connectors/``."""

from __future__ import annotations

import ast
from pathlib import Path

from runner.texts import REASONS, reason_text

REPO = Path(__file__).resolve().parents[3]
# reasons that never reach a ticket or a step: the audit's sign-in throttle, a Celery
# message refused before it is a run
NOT_ON_TICKETS = {"throttled", "arguments", "not_json"}


def _reasons() -> dict[str, str]:
    found: dict[str, str] = {}
    for root in ("runner", "connectors"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.keyword)
                    and node.arg == "reason"
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                ):
                    found.setdefault(node.value.value, str(path.relative_to(REPO)))
    return found


def test_every_reason_code_has_words_in_english_and_dutch() -> None:
    found = _reasons()
    assert len(found) > 40  # the scan works
    missing = {code: where for code, where in found.items() if code not in REASONS and code not in NOT_ON_TICKETS}
    assert missing == {}, f"add these to runner.texts.REASONS: {missing}"
    for code in found.keys() - NOT_ON_TICKETS:
        assert reason_text(code, "nl") != reason_text(code, "en"), code
