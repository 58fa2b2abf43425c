"""Runner checks that no other test would miss (issue 7, "tests that must be able to fail").

Each test here was written for a check that could be deleted with the whole suite still
green (found by mutating the check, see ``docs/testing.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import RunbookError
from runner.redaction import REDACTED, Scrubber
from runner.runbook import load_runbook
from tests.fakes import FakeConnector
from tests.unit.core.conftest import RESET

# non-ASCII, quotes and a backslash: each library spelling of it differs
CREDENTIAL = 'Wächter-"²"-\\-Sommer-4711'
MULTI_LINE = "-----BEGIN KEY-----\nAAAAlineONEsecret\nBBBBlineTWOsecret\n-----END KEY-----"


@pytest.mark.parametrize(
    "shown",
    [
        json.dumps(CREDENTIAL, ensure_ascii=False)[1:-1],  # json.dumps(..., ensure_ascii=False): é stays, " → \"
        CREDENTIAL.encode("unicode_escape").decode("ascii"),  # Python's unicode_escape codec: \xe4, \\
    ],
    ids=["json-non-ascii", "unicode-escape"],
)
def test_the_scrubber_masks_the_spellings_other_libraries_use(shown: str) -> None:
    assert shown != CREDENTIAL
    masked = Scrubber([CREDENTIAL]).text(f"server said <{shown}>")
    assert masked == f"server said <{REDACTED}>"


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own() -> None:
    """A remote error that quotes one line of a private key (say paramiko's) reveals that line."""
    masked = Scrubber([MULTI_LINE]).text("cannot parse 'AAAAlineONEsecret' then BBBBlineTWOsecret")
    assert "lineONE" not in masked and "lineTWO" not in masked
    assert masked.count(REDACTED) == 2


_LEAKS = {
    "output-to-input": (
        "  - id: show\n    connector: fake\n    action: echo\n"
        '    with: {text: "{{ steps.reset.temporary_password }}"}\n',
        "secret output 'temporary_password' may only feed secret inputs",
    ),
    "param-to-when": (
        "  - id: show\n    connector: fake\n    action: echo\n    with: {text: x}\n"
        '    when: "{{ params.new_password }}"\n',
        "secret parameter 'new_password' may only feed secret inputs",
    ),
    "output-to-target": (
        "  - id: show\n    connector: fake\n    action: echo\n    with: {text: x}\n"
        '    target: "{{ steps.reset.temporary_password }}"\n',
        "secret output 'temporary_password' may only feed secret inputs",
    ),
}


@pytest.mark.parametrize("case", sorted(_LEAKS))
def test_a_secret_can_only_feed_a_secret_input(tmp_path: Path, case: str) -> None:
    """A temporary password or a typed secret must never travel where it is stored or shown
    (a non-secret input, a ``when`` condition, a ``target`` name): the runbook does not load."""
    step, problem = _LEAKS[case]
    text = RESET.replace("on_failure:", step + "on_failure:")
    path = tmp_path / "fake-reset.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as info:
        load_runbook(path, {"fake": FakeConnector})
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_a_secret_input_written_as_a_literal_does_not_load(tmp_path: Path) -> None:
    """A password typed into a runbook file would sit in git and in every vetted copy."""
    text = RESET.replace('new_password: "{{ params.new_password }}"', "new_password: Sommer-Wind-4711")
    path = tmp_path / "fake-reset.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as info:
        load_runbook(path, {"fake": FakeConnector})
    assert any("secret input 'new_password' must not be a literal" in p for p in info.value.problems)


def test_a_secret_parameter_cannot_have_a_default(tmp_path: Path) -> None:
    """A default secret would be a password written in the runbook, used for everyone."""
    text = RESET.replace(
        "{name: new_password, type: secret, required: false}",
        '{name: new_password, type: secret, required: false, default: "Sommer-Wind-4711"}',
    )
    path = tmp_path / "fake-reset.yaml"
    path.write_text(text)
    with pytest.raises(RunbookError) as info:
        load_runbook(path, {"fake": FakeConnector})
    assert any("a secret parameter cannot have a default" in p for p in info.value.problems)
    assert not any("Sommer-Wind-4711" in p for p in info.value.problems)
