"""End-to-end runs through the service with the scripted fake connector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.base import Rejected, Unreachable
from runner.errors import NotVetted, ParameterError, PolicyDenied
from runner.ledger.tables import audit_event, step_result, ticket
from runner.service import Firstline
from tests.databases import database_bytes
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases


def _audit_actions(app: Firstline) -> list[str]:
    with app.engine.connect() as c:
        return [r.action for r in c.execute(select(audit_event).order_by(audit_event.c.seq))]


def test_locked_account_is_unlocked_and_ticket_resolved(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"exists": True, "locked": True}, {"exists": True, "locked": False}],
        "unlock_account": [{"unlocked": True}],
    }
    out = app.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"})
    assert out.state == "resolved" and out.ticket_number == "FL-000001"
    assert out.resolution_note == "Account alice unlocked."
    t = app.ticket(out.ticket_number)
    assert t["state"] == "resolved" and t["resolution_code"] == "solved_by_automation" and t["resolved_at"]
    assert [(s["step_id"], s["status"]) for s in t["steps"]] == [("check", "ok"), ("unlock", "ok"), ("verify", "ok")]
    assert [c[1] for c in FakeConnector.calls] == ["account_status", "unlock_account", "account_status"]
    assert _audit_actions(app)[-3:] == ["ticket.opened", "fake.unlock_account", "ticket.resolved"]
    assert app.verify_audit().ok


def test_unlock_step_is_skipped_when_not_locked(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    out = app.run("fake-unlock", {"user": "bob"}, requester="agent7")
    assert out.state == "resolved"
    assert [s.status for s in out.steps] == ["ok", "skipped", "ok"]
    assert "unlock_account" not in [c[1] for c in FakeConnector.calls]


def test_transient_error_is_retried_within_the_bound(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": False}],
        "unlock_account": [Unreachable("directory down"), {"unlocked": True}],
    }
    out = app.run("fake-unlock", {"user": "carol"}, requester="agent7")
    assert out.state == "resolved"
    assert out.steps[1].attempts == 2


def test_retries_stop_after_the_bound_and_ticket_escalates(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": True}], "unlock_account": [Unreachable("directory down")] * 3}
    out = app.run("fake-unlock", {"user": "carol"}, requester="agent7")
    assert out.state == "escalated" and out.reason == "unreachable"
    assert out.steps[1].attempts == 3
    t = app.ticket(out.ticket_number)
    assert t["assignment_group"] == "service-desk-l2" and t["message"] == "directory down"


def test_rejection_is_not_retried_and_escalates_with_reason(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}],
        "unlock_account": [Rejected("the directory refused", reason="insufficient_access")],
    }
    out = app.run("fake-unlock", {"user": "carol"}, requester="agent7")
    assert (out.state, out.reason, out.steps[1].attempts) == ("escalated", "insufficient_access", 1)


def test_bug_in_a_connector_escalates_instead_of_leaving_ticket_open(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [RuntimeError("boom")]}
    out = app.run("fake-unlock", {"user": "dave"}, requester="agent7")
    assert out.state == "escalated" and out.reason == "internal_error"
    assert "boom" not in out.message
    assert app.list_tickets(state="in_progress") == []


def test_failed_verify_escalates(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": True}],
        "unlock_account": [{"unlocked": True}],
    }
    out = app.run("fake-unlock", {"user": "erin"}, requester="agent7")
    assert out.state == "escalated" and out.reason == "verify_failed"
    assert "locked should be false but is true" in out.message


def test_secret_parameter_and_generated_password_reach_no_store(app: Firstline, workdir: Path) -> None:
    chosen = "Chosen-Secret-Value-4711"
    generated = "Generated-Temp-Pw-0815"
    FakeConnector.script = {"reset_password": [{"temporary_password": generated}]}
    out = app.run("fake-reset", {"user": "alice", "new_password": chosen}, requester="agent7")
    assert out.state == "resolved"
    assert out.secrets == {"reset.temporary_password": generated}
    assert FakeConnector.calls[0][2]["new_password"] == chosen  # the connector got the real value
    app.close()
    stores = [workdir / "fl.log", *workdir.glob("*.jsonl")]
    blob = database_bytes(app.settings.database_url) + b"".join(p.read_bytes() for p in stores if p.exists())
    assert chosen.encode() not in blob and generated.encode() not in blob
    exported = "".join(app.export_audit("jsonl")) + "".join(app.export_audit("csv"))
    assert chosen not in exported and generated not in exported
    step = app.ticket(out.ticket_number)["steps"][0]
    assert step["inputs"]["new_password"] == "[REDACTED]" and step["outputs"]["temporary_password"] == "[REDACTED]"


def test_secret_leaking_into_connector_error_is_scrubbed(app: Firstline) -> None:
    chosen = "Leaky-Secret-123456"
    FakeConnector.script = {"reset_password": [Rejected(f"server said: bad password {chosen}")]}
    out = app.run("fake-reset", {"user": "alice", "new_password": chosen}, requester="agent7")
    assert out.state == "escalated" and chosen not in out.message
    assert chosen not in json.dumps(app.ticket(out.ticket_number), default=str)


def test_changed_runbook_is_refused_and_refusal_audited(app: Firstline, workdir: Path) -> None:
    path = workdir / "runbooks" / "fake-unlock.yaml"
    path.write_text(path.read_text().replace("unlocked.", "unlocked!"))
    with pytest.raises(NotVetted, match="changed since it was vetted"):
        app.run("fake-unlock", {"user": "alice"}, requester="agent7")
    assert FakeConnector.calls == [] and app.list_tickets() == []
    assert _audit_actions(app)[-1] == "run.refused"
    with app.engine.connect() as c:
        last = c.execute(select(audit_event).order_by(audit_event.c.seq.desc())).mappings().first()
    assert last is not None and (last["outcome"], last["reason"]) == ("denied", "not_vetted")  # not "NotVetted"


def test_every_refusal_reason_is_a_snake_case_code() -> None:
    """The audit's ``reason`` of a ``run.refused`` event is a code as every other reason
    (``protected``, ``wrong_code``), never a Python class name (it was ``PolicyDenied``)."""
    import re

    from runner import errors
    from runner.dispatch import QueueFull

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.FirstlineError)]
    codes = {c.__name__: c.reason_code for c in [*classes, QueueFull]}
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", code) for code in codes.values()), codes
    assert len(set(codes.values())) == len(codes), codes  # one code per kind of refusal


@pytest.mark.parametrize(
    "bad", ["*", ")(uid=*", "al\x00ice", "admin*)(|(uid=*", "a" * 65, "../../etc/passwd", "alice\u202e", "", "x y"]
)
def test_hostile_account_names_are_refused_before_any_ticket(app: Firstline, bad: str) -> None:
    with pytest.raises((ParameterError, PolicyDenied)):
        app.run("fake-unlock", {"user": bad} if bad else {"user": bad, "extra": "1"}, requester="agent7")
    assert FakeConnector.calls == [] and app.list_tickets() == []


def test_employee_can_only_act_on_own_account(app: Firstline) -> None:
    with pytest.raises(PolicyDenied, match="own account"):
        app.run("fake-unlock", {"user": "bob"}, requester="alice", roles={"employee"})
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    out = app.run("fake-unlock", {}, requester="alice", roles={"employee"}, channel="portal")
    assert out.state == "resolved" and app.ticket(out.ticket_number)["subject"] == "alice"


def test_unknown_parameter_is_named(app: Firstline) -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter.*colour"):
        app.run("fake-unlock", {"user": "alice", "colour": "red"}, requester="agent7")


def test_stale_in_progress_ticket_is_swept_to_escalated(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    out = app.run("fake-unlock", {"user": "alice"}, requester="agent7")
    with app.engine.begin() as c:  # simulate a worker that died mid-run
        c.execute(ticket.update().values(state="in_progress", deadline_at="2000-01-01T00:00:00"))
    assert app.sweep() == [out.ticket_number]
    t = app.ticket(out.ticket_number)
    assert t["state"] == "escalated" and t["reason"] == "run_lost"
    assert app.verify_audit().ok


def test_step_rows_are_written_before_the_next_step_runs(app: Firstline) -> None:
    seen: list[list[tuple[str, str]]] = []

    def unlock(_inputs: dict[str, str]) -> dict[str, bool]:
        with app.engine.connect() as c:
            rows = c.execute(select(step_result.c.step_id, step_result.c.status).order_by(step_result.c.seq))
            seen.append([(r.step_id, r.status) for r in rows])
        return {"unlocked": True}

    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [unlock]}
    app.run("fake-unlock", {"user": "alice"}, requester="agent7")
    # The earlier step is finished in the ledger, the current one is visible as running.
    assert seen == [[("check", "ok"), ("unlock", "running")]]


def test_concurrent_runs_keep_one_ticket_each_and_an_intact_chain(app: Firstline) -> None:
    from concurrent.futures import ThreadPoolExecutor

    FakeConnector.script = {"account_status": [{"locked": False}] * 200}
    with ThreadPoolExecutor(max_workers=8) as pool:
        outs = list(pool.map(lambda i: app.run("fake-unlock", {"user": f"user{i}"}, requester="agent7"), range(40)))
    assert len({o.ticket_number for o in outs}) == 40
    assert all(o.state in ("resolved", "escalated") for o in outs)
    assert app.list_tickets(state="in_progress") == []
    report = app.verify_audit()
    assert report.ok and report.events == 2 + 40 * 2


def test_a_hung_step_is_cancelled_by_the_watchdog_and_escalated(app: Firstline, workdir: Path) -> None:
    import threading

    release = threading.Event()
    cancelled: list[bool] = []

    def hang(_inputs: dict[str, str]) -> dict[str, str]:
        release.wait(10)  # a connector that ignores its own timeout
        raise Unreachable("connection closed by cancel")

    def cancel(self: FakeConnector) -> bool:
        cancelled.append(True)
        release.set()
        return True

    app.watchdog.grace = 0.05
    rb = workdir / "runbooks" / "fake-echo.yaml"
    rb.write_text(
        "schema_version: 1\nname: fake-echo\ntitle: {en: Echo}\ncategory: test\naudience: [agent]\n"
        "steps:\n  - {id: hang, connector: fake, action: echo, with: {text: hi}, timeout: 0.1, retries: 2}\n"
        "on_failure: {escalate_to: service-desk-l2}\nresolution: {note: done}\n"
    )
    app.vet("fake-echo", "reviewer")
    FakeConnector.script = {"echo": [hang]}
    FakeConnector.cancel = cancel  # type: ignore[method-assign]
    try:
        out = app.run("fake-echo", {}, requester="agent7")
    finally:
        del FakeConnector.cancel
    assert cancelled == [True]
    assert out.state == "escalated" and out.reason == "timeout" and out.steps[0].attempts == 1
    assert "did not finish within 0.1 s and was stopped (cleanup confirmed)" in out.message


def test_runbooks_check_lists_every_problem_with_file_and_line(app: Firstline, workdir: Path) -> None:
    assert app.check_runbooks() == []
    (workdir / "runbooks" / "broken.yaml").write_text("schema_version: 1\nname: broken\nstepz: []\n")
    unlock = workdir / "runbooks" / "fake-unlock.yaml"
    unlock.write_text(unlock.read_text() + "# edited\n")
    problems = app.check_runbooks()
    assert f"{workdir}/runbooks/broken.yaml:3: stepz: unknown key (check spelling; keys are snake_case)" in problems
    assert any(p.startswith(f"{unlock}:1: runbook 'fake-unlock' changed since it was vetted") for p in problems)
    assert any("broken.yaml:1: steps: Field required" in p for p in problems)


def test_employee_cannot_set_an_agent_only_parameter(app: Firstline, workdir: Path) -> None:
    rb = workdir / "runbooks" / "fake-reset.yaml"
    rb.write_text(
        rb.read_text().replace(
            "  - {name: new_password, type: secret, required: false}",
            "  - {name: new_password, type: secret, required: false}\n"
            "  - {name: mfa_verified, type: bool, default: false, settable_by: [agent]}",
        )
    )
    app.vet("fake-reset", "reviewer")
    with pytest.raises(PolicyDenied, match="can only be set by the service desk"):
        app.run("fake-reset", {"user": "alice", "mfa_verified": "true"}, requester="alice", roles={"employee"})
    FakeConnector.script = {"reset_password": [{"temporary_password": "x-Temp-123456"}]}
    out = app.run("fake-reset", {"user": "alice"}, requester="alice", roles={"employee"})
    assert out.state == "resolved" and app.ticket(out.ticket_number)["params"]["mfa_verified"] is False


CHOOSY = """\
schema_version: 1
name: fake-choosy
title: {en: Act on a printer by its kind}
category: hardware/printer
audience: [agent]
parameters:
  - {name: printer, type: choice, source: printers}
steps:
  - id: clear_cups
    connector: fake
    action: account_status
    with: {user: "x"}
    when: "{{ (params.printer.kind | default('')) == 'cups' }}"
  - id: clear_windows
    connector: fake
    action: account_status
    with: {user: "x"}
    when: "{{ (params.printer.kind | default('')) == 'windows' }}"
on_failure: {escalate_to: service-desk-l2}
resolution: {code: solved_by_automation, note: "The queue of {{ params.printer.label }} is empty."}
"""


def test_a_run_in_which_no_step_applied_is_escalated_not_resolved(app: Firstline, workdir: Path) -> None:
    """A choice whose ``kind`` no step's condition names (``Linux``, ``unix``) skipped every
    step, and the ticket was resolved: "printd was restarted and is running", nothing done."""
    (workdir / "runbooks" / "fake-choosy.yaml").write_text(CHOOSY)
    app.vet("fake-choosy", "reviewer")
    outcome = app.run("fake-choosy", {"printer": "office-1"}, requester="agent7", roles={"agent"})
    assert (outcome.state, outcome.reason) == ("escalated", "nothing_ran"), outcome
    assert "No step of this runbook applied" in outcome.message and FakeConnector.calls == []
    assert [s.status for s in outcome.steps] == ["skipped", "skipped"]
    with app.engine.connect() as c:
        row = c.execute(select(ticket)).mappings().one()
    assert (row["state"], row["reason"]) == ("escalated", "nothing_ran") and not row["resolution_note"]
