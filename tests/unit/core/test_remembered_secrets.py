"""The operator log's process-wide mask list (``runner.oplog.remember_secret``): a credential
is masked for the life of the process; a code, a typed password or a run's secret parameter
only until it cannot matter any more — then it leaves the process's memory, and the list
every log line is checked against does not grow with every reset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from connectors.base import Rejected
from runner import oplog
from runner.redaction import REDACTED, WITHHELD
from runner.service import Firstline
from tests.fakes import FakeConnector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    clock = Clock()
    monkeypatch.setattr(oplog.time, "monotonic", clock)
    yield clock


@pytest.fixture
def remembered(monkeypatch: pytest.MonkeyPatch) -> oplog._Remembered:
    found = oplog._Remembered()
    monkeypatch.setattr(oplog, "_GLOBAL_SCRUB", found)
    return found


def test_a_short_lived_secret_is_masked_until_its_time_is_up_and_then_forgotten(
    clock: Clock, remembered: oplog._Remembered
) -> None:
    oplog.remember_secret("Code-481516")
    assert oplog.scrub_text("sent Code-481516") == f"sent {REDACTED}"
    clock.now += oplog.REMEMBER_SECONDS - 1
    assert oplog.scrub_text("sent Code-481516") == f"sent {REDACTED}"
    clock.now += 2
    assert oplog.scrub_text("sent Code-481516") == "sent Code-481516"
    assert remembered.held() == 0
    assert not any("Code-481516" in form for form in remembered._ordered())


def test_a_credential_is_masked_for_the_life_of_the_process(clock: Clock, remembered: oplog._Remembered) -> None:
    oplog.remember_secret("Bind-Credential-99", seconds=None)
    oplog.remember_secret("Bind-Credential-99")  # asked again with a time: the longer one stands
    clock.now += 10 * 365 * 86400
    assert oplog.scrub_text("bind as Bind-Credential-99") == f"bind as {REDACTED}"


def test_remembering_again_extends_the_time(clock: Clock, remembered: oplog._Remembered) -> None:
    oplog.remember_secret("Typed-Pass-1", seconds=10)
    clock.now += 8
    oplog.remember_secret("Typed-Pass-1", seconds=10)
    clock.now += 8
    assert oplog.scrub_text("Typed-Pass-1") == REDACTED
    clock.now += 3
    assert oplog.scrub_text("Typed-Pass-1") == "Typed-Pass-1"


def test_the_list_is_bounded_and_the_one_due_first_goes(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    found = oplog._Remembered(limit=3)
    monkeypatch.setattr(oplog, "_GLOBAL_SCRUB", found)
    oplog.remember_secret("Forever-Secret-0", seconds=None)  # not counted against the limit
    for i, seconds in enumerate((50, 10, 40, 30)):
        oplog.remember_secret(f"Short-Secret-{i}", seconds=seconds)
    assert found.held() == 4  # the credential and three short-lived ones
    assert oplog.scrub_text("Short-Secret-1") == "Short-Secret-1"  # due first: dropped
    for kept in ("Forever-Secret-0", "Short-Secret-0", "Short-Secret-2", "Short-Secret-3"):
        assert oplog.scrub_text(kept) == REDACTED


def test_thousands_of_resets_do_not_pile_up(clock: Clock, remembered: oplog._Remembered) -> None:
    for i in range(3000):
        oplog.remember_secret(f"Reset-Password-{i:05d}!")
        clock.now += 1.0  # one reset a second for 50 minutes
    assert remembered.held() <= oplog.REMEMBER_SECONDS + 1
    assert oplog.scrub_text("Reset-Password-00000!") == "Reset-Password-00000!"
    assert oplog.scrub_text("Reset-Password-02999!") == REDACTED


def test_a_runs_secret_parameter_is_masked_until_the_runs_deadline(
    app: Firstline, clock: Clock, remembered: oplog._Remembered
) -> None:
    FakeConnector.script = {"reset_password": [{}]}
    params = {"user": "alice", "new_password": "Run-Secret-Pw-77"}
    out = app.run("fake-reset", params, requester="alice", roles={"agent"})
    assert out.state == "resolved"
    assert oplog.scrub_text("echo Run-Secret-Pw-77") == f"echo {REDACTED}"
    rb = app.catalogue.runbook("fake-reset")
    clock.now += float(app.settings.run_start_within) + app.runs.run_timeout(rb) + 1
    assert oplog.scrub_text("echo Run-Secret-Pw-77") == "echo Run-Secret-Pw-77"


def test_a_short_typed_value_is_not_masked_but_a_short_credential_is(
    clock: Clock, remembered: oplog._Remembered
) -> None:
    oplog.remember_secret("e")  # a new password no policy allows: masking it would blank every "e"
    oplog.remember_secret("x" * (oplog.MIN_REMEMBERED - 1))
    assert oplog.scrub_text("resolved e xxxxxxx") == "resolved e xxxxxxx"
    oplog.remember_secret("db-pw", seconds=None)  # a credential: masked whatever its length
    assert oplog.scrub_text("connect db-pw") == f"connect {REDACTED}"


def test_the_logs_own_names_and_codes_are_never_masked(tmp_path: Path, remembered: oplog._Remembered) -> None:
    """Masking an event's name, a reason code or a runbook name in place made an oracle of the
    log ("too_[REDACTED]": the password typed was "short") and could blank every line."""
    log_file = tmp_path / "fl.log"
    oplog.configure(log_file)
    try:
        oplog.remember_secret("password", seconds=60)
        oplog.remember_secret("too_short", seconds=60)
        oplog.get_logger().info(
            "run.refused", runbook="password-change", reason="too_short", detail="the password too_short"
        )
    finally:
        oplog.configure(None)
        structlog.reset_defaults()
    line = json.loads(log_file.read_text(encoding="utf-8").splitlines()[-1])
    assert (line["event"], line["runbook"], line["reason"]) == ("run.refused", "password-change", "too_short")
    assert line["detail"] == f"the {REDACTED} {REDACTED}"  # free text is still masked


def test_a_connectors_fixed_refusal_is_shown_even_when_the_typed_secret_occurs_in_it(app: Firstline) -> None:
    """A new password "e": the directory's refusal (a fixed text) holds an "e", and withholding
    it left the requester without a reason. A text made from what was typed is still withheld."""
    fixed = "The new password is too short: use at least 15 characters."
    FakeConnector.script = {
        "reset_password": [Rejected(fixed, reason="too_short", requester_action=True, fixed_text=True)]
    }
    out = app.run("fake-reset", {"user": "alice", "new_password": "e"}, requester="alice", roles={"agent"})
    assert (out.state, out.reason, out.message) == ("closed", "too_short", fixed)
    echoed = "The directory said: password e is too short"
    FakeConnector.script = {"reset_password": [Rejected(echoed, reason="too_short", requester_action=True)]}
    out = app.run("fake-reset", {"user": "alice", "new_password": "e"}, requester="alice", roles={"agent"})
    assert out.reason == "too_short" and out.message == WITHHELD["en"]


def test_an_account_name_equal_to_a_typed_secret_stays_on_the_ticket_and_in_the_audit(app: Firstline) -> None:
    """A current password guessed as the user name: masking the name hid whose account it was
    (target "f1:[REDACTED]") and told the auditor what was typed."""
    FakeConnector.script = {"reset_password": [{}]}
    out = app.run("fake-reset", {"user": "alice", "new_password": "alice"}, requester="bob", roles={"agent"})
    assert out.state == "resolved"
    step = out.steps[0]
    assert step.inputs == {"user": "alice", "new_password": REDACTED}
    with app.engine.connect() as conn:
        targets = {r[0] for r in conn.exec_driver_sql("SELECT target FROM audit_event WHERE ticket IS NOT NULL")}
        stored = [r[0] for r in conn.exec_driver_sql("SELECT inputs FROM step_result")]
    assert not any("[REDACTED]" in (t or "") for t in targets)
    assert any('"user": "alice"' in s or '"user":"alice"' in s for s in stored)
