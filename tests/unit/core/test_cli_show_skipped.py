"""``tickets show`` prints a skipped step (which never reached a target) with ``on -``,
not ``on None``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from runner import cli
from runner.service import Firstline
from tests.fakes import FakeConnector


@pytest.fixture
def runner(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli, "_app", lambda: app)
    return CliRunner()


def test_a_skipped_step_shows_no_target(runner: CliRunner) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    assert runner.invoke(cli.app, ["run", "fake-unlock", "-p", "user=alice"]).exit_code == 0
    result = runner.invoke(cli.app, ["tickets", "show", "FL-000001"])
    assert result.exit_code == 0
    skipped = [line for line in result.output.splitlines() if "[skipped]" in line]
    assert skipped and all(" on - " in line for line in skipped)
    assert " on None " not in result.output
