"""Runbook loading: every problem is one `file:line: message`, cross-references checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import RunbookError
from runner.runbook import load_runbook
from tests.fakes import FakeConnector
from tests.unit.core.conftest import UNLOCK

CONNECTORS = {"fake": FakeConnector}


def _load(tmp_path: Path, text: str, name: str = "fake-unlock") -> list[str]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as info:
        load_runbook(path, CONNECTORS)
    return info.value.problems


def test_valid_runbook_loads_with_hash(tmp_path: Path) -> None:
    path = tmp_path / "fake-unlock.yaml"
    path.write_text(UNLOCK)
    rb = load_runbook(path, CONNECTORS)
    assert rb.name == "fake-unlock" and len(rb.sha256) == 64 and [s.id for s in rb.steps] == ["check", "unlock"]


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    problems = _load(tmp_path, UNLOCK.replace("category: identity/account", "category: [oops"))
    assert (len(problems) == 1 and ":5: invalid YAML" in problems[0]) or ":6: invalid YAML" in problems[0]


def test_unknown_key_is_rejected_with_line(tmp_path: Path) -> None:
    problems = _load(tmp_path, UNLOCK.replace("    retries: 2\n", "    retries: 2\n    on-failure: stop\n"))
    assert problems == [
        f"{tmp_path}/fake-unlock.yaml:20: steps.1.on-failure: unknown key (check spelling; keys are snake_case)"
    ]


def test_wrong_type_is_reported(tmp_path: Path) -> None:
    problems = _load(tmp_path, UNLOCK.replace("retries: 2", "retries: 9"))
    assert len(problems) == 1 and ":19: steps.1.retries:" in problems[0] and "less than or equal to 3" in problems[0]


def test_unknown_connector_and_action_list_what_exists(tmp_path: Path) -> None:
    text = UNLOCK.replace(
        "connector: fake\n    action: account_status", "connector: nope\n    action: account_status", 1
    )
    text = text.replace("action: unlock_account", "action: unlock_everything")
    problems = _load(tmp_path, text)
    assert any(":11: unknown connector 'nope'; available: fake" in p for p in problems)
    assert any(":16: connector 'fake' has no action 'unlock_everything'" in p for p in problems)


def test_references_to_unknown_params_steps_and_outputs_fail(tmp_path: Path) -> None:
    text = UNLOCK.replace('when: "{{ steps.check.locked }}"', 'when: "{{ steps.later.locked or steps.check.colour }}"')
    text = text.replace('note: "Account {{ params.user }} unlocked."', 'note: "{{ params.usr }}"')
    problems = _load(tmp_path, text)
    assert any("step 'later' is not an earlier step" in p for p in problems)
    assert any("step 'check' has no output 'colour'" in p for p in problems)
    assert any("unknown parameter 'usr'" in p for p in problems)


def test_template_cannot_reach_python_internals(tmp_path: Path) -> None:
    problems = _load(
        tmp_path,
        UNLOCK.replace('with: {user: "{{ params.user }}"}', 'with: {user: "{{ self.__init__.__globals__ }}"}', 1),
    )
    # refused when the runbook loads: the private attribute first (runner.templating), and an
    # unknown name such as ``self`` is refused there too
    assert any("template reads '__globals__', a private attribute the sandbox refuses" in p for p in problems)
    problems = _load(tmp_path, UNLOCK.replace('with: {user: "{{ params.user }}"}', 'with: {user: "{{ self.x }}"}', 1))
    assert any("unknown name 'self'" in p for p in problems)


def test_secret_param_may_not_feed_a_condition_or_note(tmp_path: Path) -> None:
    text = UNLOCK.replace(
        '  - {name: user, type: account, default: "{{ requester }}"}',
        '  - {name: user, type: account, default: "{{ requester }}"}\n  - {name: pw, type: secret}',
    )
    text = text.replace('note: "Account {{ params.user }} unlocked."', 'note: "pw was {{ params.pw }}"')
    problems = _load(tmp_path, text)
    assert any("secret parameter 'pw' may only feed secret inputs" in p for p in problems)


@pytest.mark.parametrize("use", ["{{ params | tojson }}", "{{ params | dictsort }}", "{{ params | string }}"])
def test_params_as_a_whole_may_not_reach_a_note_when_a_parameter_is_secret(tmp_path: Path, use: str) -> None:
    """``params.pw`` was caught, ``params | tojson`` was not (only run-time redaction stood)."""
    text = UNLOCK.replace(
        '  - {name: user, type: account, default: "{{ requester }}"}',
        '  - {name: user, type: account, default: "{{ requester }}"}\n  - {name: pw, type: secret}',
    )
    text = text.replace('note: "Account {{ params.user }} unlocked."', f'note: "{use}"')
    problems = _load(tmp_path, text)
    assert any("'params' as a whole holds the secret parameter(s) pw" in p for p in problems), problems
    fine = UNLOCK.replace('note: "Account {{ params.user }} unlocked."', f'note: "{use}"')  # no secret parameter
    (tmp_path / "fake-unlock.yaml").write_text(fine)
    assert load_runbook(tmp_path / "fake-unlock.yaml", CONNECTORS).name == "fake-unlock"


def test_missing_required_input_and_unknown_input(tmp_path: Path) -> None:
    text = UNLOCK.replace('    with: {user: "{{ params.user }}"}\n    when', '    with: {usr: "x"}\n    when')
    problems = _load(tmp_path, text)
    assert any("has no input 'usr'" in p for p in problems) and any("needs input 'user'" in p for p in problems)


def test_name_must_match_file_and_ids_be_unique(tmp_path: Path) -> None:
    text = UNLOCK.replace("  - id: unlock", "  - id: check")
    problems = _load(tmp_path, text, name="other-name")
    assert any("must match the file name 'other-name'" in p for p in problems)
    assert any("duplicate or reserved step id 'check'" in p for p in problems)


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    problems = _load(tmp_path, UNLOCK.replace("type: incident", "type: incident\ntype: request"))
    assert "duplicate key 'type'" in problems[0]


def test_parameter_type_rules(tmp_path: Path) -> None:
    text = UNLOCK.replace(
        '  - {name: user, type: account, default: "{{ requester }}"}',
        '  - {name: user, type: account, default: "{{ requester }}"}\n'
        "  - {name: size, type: enum}\n  - {name: printer, type: string, source: printers}",
    )
    problems = _load(tmp_path, text)
    assert any("type enum needs 'values'" in p for p in problems)
    assert any("'source' is only for type choice" in p for p in problems)
