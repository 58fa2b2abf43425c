"""``run --dry-run --json`` prints the plan as JSON (it printed the text plan, which a script
asking for JSON cannot read), with secrets redacted, and touches nothing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from runner import cli
from runner.service import Firstline
from tests.fakes import FakeConnector


@pytest.fixture
def runner(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli, "_app", lambda: app)
    return CliRunner()


def test_dry_run_json_is_the_plan_with_secrets_redacted(runner: CliRunner, app: Firstline) -> None:
    result = runner.invoke(
        cli.app,
        ["run", "fake-reset", "-p", "user=bob", "--secret", "new_password", "--dry-run", "--json"],
        input="Plan-Secret-Value-123456\n",
    )
    assert result.exit_code == 0
    assert "Plan-Secret-Value-123456" not in result.output
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["runbook"] == "fake-reset"
    assert [s["action"] for s in plan["steps"]][:1] and all("inputs" in s for s in plan["steps"])
    assert any(s["inputs"].get("new_password") == "[REDACTED]" for s in plan["steps"])
    assert FakeConnector.calls == [] and app.list_tickets() == []


def test_dry_run_without_json_stays_text(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["run", "fake-unlock", "-p", "user=alice", "--dry-run"])
    assert result.exit_code == 0 and result.output.startswith("Dry run of fake-unlock")
