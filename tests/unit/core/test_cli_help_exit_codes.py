"""Every command whose exit code means something lists its codes in ``--help``:
``run`` all five (0 resolved, 1 escalated, 2 refused/usage, 3 internal, 4 requester must act),
``audit verify`` its 0 and 1."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from runner import cli


@pytest.mark.parametrize(
    ("command", "codes"),
    [(["run"], ["0", "1", "2", "3", "4"]), (["audit", "verify"], ["0", "1"]), ([], ["0", "1", "2", "3", "4"])],
)
def test_help_lists_the_exit_codes(command: list[str], codes: list[str]) -> None:
    result = CliRunner().invoke(cli.app, [*command, "--help"], terminal_width=80)
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    for code in codes:
        assert re.search(
            rf"(exits?|codes?:?|;|,) {code}\b|\b{code} (resolved|escalated|refused|internal|closed)", text
        ), (
            command,
            code,
            text[:400],
        )


@pytest.mark.parametrize(
    "command", [["run"], ["tickets", "list"], ["runbooks", "show"], ["audit", "export"], ["serve"]]
)
def test_help_says_what_an_option_takes_in_words_not_python_types(command: list[str]) -> None:
    """Typer printed ``--dry-run <bool>``, ``--param <list[str]>``, ``--limit <int range>``."""
    result = CliRunner().invoke(cli.app, [*command, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert not re.search(r"<(bool|str|int|list\[|float|Path)", result.output), result.output
    if command == ["run"]:
        assert "KEY=VALUE" in result.output and "firstline runbooks show NAME" in result.output
