"""``run --dry-run --json`` prints the plan as JSON (it printed the text plan, which a script
asking for JSON cannot read), with secrets redacted, and touches nothing."""

from __future__ import annotations

import json
from typing import Any

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


def test_dry_run_decides_the_conditions_the_parameters_decide(runner: CliRunner, app: Firstline, workdir: Any) -> None:
    """A Linux host's plan listed the Windows steps (a tester's find): a condition that the
    parameters alone decide is decided; one that needs an earlier step's outputs is shown."""
    (workdir / "runbooks" / "fake-kinds.yaml").write_text(KINDS)
    app.vet("fake-kinds", "reviewer")
    result = runner.invoke(cli.app, ["run", "fake-kinds", "-p", "printer=office-1", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    steps = {s["id"]: s for s in json.loads(result.stdout)["steps"]}
    assert set(steps) == {"for_cups", "then"}, steps  # for_windows cannot run for this choice
    assert steps["for_cups"]["when"] is None and "steps.for_cups" in steps["then"]["when"]
    assert FakeConnector.calls == [] and app.list_tickets() == []


KINDS = """\
schema_version: 1
name: fake-kinds
title: {en: Steps by kind}
category: hardware/printer
audience: [agent]
parameters:
  - {name: printer, type: choice, source: printers}
steps:
  - id: for_cups
    connector: fake
    action: echo
    with: {text: "x"}
    when: "{{ (params.printer.queue | default('')) == 'office-1' }}"
  - id: for_windows
    connector: fake
    action: echo
    with: {text: "y"}
    when: "{{ (params.printer.queue | default('')) == 'nowhere' }}"
  - id: then
    connector: fake
    action: echo
    with: {text: "z"}
    when: "{{ steps.for_cups.text == 'x' }}"
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "Done."}
"""
