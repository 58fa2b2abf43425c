"""``runner.inventory_check`` with the unit fakes (issue 7, item 22): every problem named
by its field, all at once; connection checks per target; runbooks checked against the
inventory they need."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from connectors.base import AuthFailed
from runner.inventory_check import check_inventory
from runner.service import Firstline
from tests.fakes import FakeConnector

CONNECTORS = {"fake": FakeConnector}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_every_problem_is_named_and_reported_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FL_UNSET_FOR_TEST", raising=False)
    path = _write(
        tmp_path,
        """\
        targets:
          t1: {connector: fake, colour: red}
          t2: {connector: nope}
          t3: {label: no connector}
        """,
    )
    report = check_inventory(path, CONNECTORS)
    assert report.exit_code == 2
    text = "\n".join(report.problems)
    assert "targets.t1.colour: Extra inputs are not permitted" in text
    assert "targets.t2.connector: unknown connector 'nope'" in text
    assert "targets.t3: needs a 'connector'" in text


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "targets:\n", "targets: {}\n", "choices: {}\n"])
def test_an_inventory_without_targets_is_not_valid(tmp_path: Path, text: str) -> None:
    """An empty file (a wrong path, a truncated copy) said "valid (0 targets)" and exit 0."""
    report = check_inventory(_write(tmp_path, text), CONNECTORS)
    assert report.exit_code == 2
    assert report.problems == ["targets: none are defined; every runbook step acts on a target"]


def test_a_valid_inventory_without_connect_checks_nothing_remote(tmp_path: Path) -> None:
    path = _write(tmp_path, "targets:\n  t1: {connector: fake}\n")
    report = check_inventory(path, CONNECTORS)
    assert report.exit_code == 0 and report.targets == ["t1"] and report.results == []
    assert FakeConnector.calls == []


def test_connect_reports_per_target_and_exit_1_when_one_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "targets:\n  good: {connector: fake}\n  bad: {connector: fake}\n  none: {connector: fake}")

    def check(self: FakeConnector, *, timeout: float) -> str | None:
        if self.target_name == "bad":
            raise AuthFailed("the target refused the service account; check its password")
        return None if self.target_name == "none" else "all good"

    monkeypatch.setattr(FakeConnector, "check_connection", check, raising=False)
    report = check_inventory(path, CONNECTORS, connect=True)
    by = {r.target: r for r in report.results}
    assert by["good"].ok is True and by["good"].message == "all good"
    assert by["bad"].ok is False and by["bad"].reason == "auth_failed" and "refused" in by["bad"].message
    assert by["none"].ok is None
    assert report.exit_code == 1


def test_runbooks_check_fails_when_the_inventory_they_need_is_broken(app: Firstline) -> None:
    assert app.check_runbooks() == []
    inv = app.settings.inventory
    original = inv.read_text()
    inv.write_text(original.replace("defaults: {fake: f1}\n", ""))  # two fake targets, no default
    problems = app.check_runbooks()
    assert any("step check" in p and "defaults.fake" in p for p in problems), problems
    inv.write_text(original.replace("  f1: {connector: fake, label: one}", "  f1: {connector: fake, colour: red}"))
    problems = app.check_runbooks()
    assert any("targets.f1.colour" in p for p in problems), problems
