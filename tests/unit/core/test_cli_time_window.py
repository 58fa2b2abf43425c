"""An empty time window (``--until`` not later than ``--since``, compared as instants) is a
usage error on the CLI, as it is in the portal's filters (``runner.queries``): it printed
"No tickets." / nothing with exit 0, indistinguishable from a quiet period."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from runner import cli
from runner.service import Firstline


@pytest.fixture
def runner(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli, "_app", lambda: app)
    return CliRunner()


def _invoke(runner: CliRunner, args: list[str]) -> tuple[int, str]:
    result = runner.invoke(cli.app, args)
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    return result.exit_code, " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("command", [["tickets", "list"], ["audit", "export"]])
@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-11-30", "2026-11-01"),  # reversed dates
        ("2026-11-30T10:00+01:00", "2026-11-30T09:00Z"),  # the same instant in two spellings
        ("2026-11-30 08:00", "2026-11-30T08:00:00.000"),  # equal
    ],
)
def test_an_empty_window_is_a_usage_error(runner: CliRunner, command: list[str], since: str, until: str) -> None:
    code, text = _invoke(runner, [*command, "--since", since, "--until", until])
    assert code == 2
    assert "--until" in text and "must be later than --since" in text and "Traceback" not in text


@pytest.mark.parametrize("command", [["tickets", "list"], ["audit", "export"]])
def test_a_real_window_still_works(runner: CliRunner, command: list[str]) -> None:
    code, _text = _invoke(runner, [*command, "--since", "2026-11-30T09:00Z", "--until", "2026-11-30T10:00:01+01:00"])
    assert code == 0
