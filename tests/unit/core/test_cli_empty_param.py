"""``-p user=`` (an empty value, e.g. ``-p user=$U`` with ``U`` unset) is a usage error,
never the runbook's default: for an agent that default is the person at the terminal,
so an unlock or a reset would silently act on the operator's own account."""

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


@pytest.mark.parametrize("role", ["agent", "employee"])
def test_an_empty_parameter_value_is_refused_and_nothing_runs(runner: CliRunner, app: Firstline, role: str) -> None:
    FakeConnector.script = {"account_status": [{"locked": True}], "unlock_account": [{"unlocked": True}]}
    result = runner.invoke(cli.app, ["run", "fake-unlock", "-p", "user=", "--as", "alice", "--role", role])
    text = " ".join((result.output + (result.stderr if result.stderr_bytes is not None else "")).split())
    assert result.exit_code == 2
    assert "'user' is given without a value" in text and "Traceback" not in text
    assert FakeConnector.calls == [] and app.list_tickets() == []


def test_leaving_the_parameter_out_still_uses_the_default(runner: CliRunner, app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": False}],
        "unlock_account": [{"unlocked": True}],
    }
    result = runner.invoke(cli.app, ["run", "fake-unlock", "--as", "alice"])
    assert result.exit_code == 0
    assert [t["subject"] for t in app.list_tickets()] == ["alice"]
