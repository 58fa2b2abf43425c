"""What a run records: no-change steps (item 13), requester-fixable failures closed as
``requester_action_needed`` (item 18), and messages without configuration detail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.base import InvalidInput, NotFound, Rejected, Unreachable
from runner.errors import ConfigError
from runner.ledger.tables import audit_event, ticket
from runner.service import REQUESTER_GUIDANCE, Firstline
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases


def _events(app: Firstline, action: str | None = None) -> list[dict[str, object]]:
    with app.engine.connect() as c:
        rows = [dict(r) for r in c.execute(select(audit_event).order_by(audit_event.c.seq)).mappings()]
    for r in rows:
        r["detail"] = json.loads(str(r["detail"]))
    return [r for r in rows if action is None or r["action"] == action]


def _always_unlock(workdir: Path, app: Firstline) -> None:
    """A runbook whose unlock has no `when`: the connector itself must say it changed nothing."""
    text = (workdir / "runbooks" / "fake-unlock.yaml").read_text()
    text = text.replace("name: fake-unlock", "name: fake-unlock-always").replace(
        '    when: "{{ steps.check.locked }}"\n', ""
    )
    (workdir / "runbooks" / "fake-unlock-always.yaml").write_text(text)
    app.vet("fake-unlock-always", "reviewer")


# -- item 13: nothing is recorded as a change that changed nothing --------------------------------


def test_an_unlock_that_changed_nothing_is_audited_as_no_change(app: Firstline, workdir: Path) -> None:
    _always_unlock(workdir, app)
    FakeConnector.script = {
        "account_status": [{"locked": False}, {"locked": False}],
        "unlock_account": [{"unlocked": False, "changed": False}],
    }
    out = app.run("fake-unlock-always", {"user": "alice"}, requester="alice", actor_id="agent7")
    assert out.state == "resolved"
    (event,) = _events(app, "fake.unlock_account")
    assert event["outcome"] == "no_change"
    assert event["detail"]["changed"] is False and event["detail"]["changed_reported"] is True  # type: ignore[index]
    step = app.ticket(out.ticket_number)["steps"][1]
    assert step["status"] == "ok" and step["outputs"]["changed"] is False
    assert step["message"] == "Nothing to change: it was already as it should be."


def test_a_real_unlock_is_audited_as_success_with_changed_true(app: Firstline) -> None:
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": False}],
        "unlock_account": [{"unlocked": True, "changed": True}],
    }
    app.run("fake-unlock", {"user": "alice"}, requester="alice")
    (event,) = _events(app, "fake.unlock_account")
    assert event["outcome"] == "success" and event["detail"]["changed"] is True  # type: ignore[index]


def test_an_action_that_does_not_report_changed_counts_as_changed(app: Firstline) -> None:
    FakeConnector.script = {"reset_password": [{"temporary_password": "Tmp-Pw-55aa77bb"}]}
    app.run("fake-reset", {"user": "alice"}, requester="agent7")
    (event,) = _events(app, "fake.reset_password")
    assert event["outcome"] == "success"
    assert event["detail"]["changed"] is True and event["detail"]["changed_reported"] is False  # type: ignore[index]


@pytest.mark.parametrize("reported", [0, "false", None, "no"])
def test_a_changed_value_that_is_not_a_bool_is_not_taken_as_no_change(app: Firstline, reported: object) -> None:
    """Only a real False means 'nothing changed'; anything else is treated as a change."""
    FakeConnector.script = {
        "account_status": [{"locked": True}, {"locked": False}],
        "unlock_account": [{"unlocked": True, "changed": reported}],
    }
    app.run("fake-unlock", {"user": "alice"}, requester="alice")
    (event,) = _events(app, "fake.unlock_account")
    assert event["outcome"] == "success" and event["detail"]["changed_reported"] is False  # type: ignore[index]


def test_the_progress_callback_says_nothing_changed(app: Firstline, workdir: Path) -> None:
    _always_unlock(workdir, app)
    FakeConnector.script = {
        "account_status": [{"locked": False}, {"locked": False}],
        "unlock_account": [{"unlocked": False, "changed": False}],
    }
    seen: list[dict[str, object]] = []
    app.run(
        "fake-unlock-always",
        {"user": "alice"},
        requester="alice",
        progress=lambda kind, data: seen.append(dict(data)) if kind == "step.finished" else None,
    )
    assert [d["changed"] for d in seen] == [None, False, None]


# -- item 18: failures the requester can fix are not escalations ----------------------------------

RA_ERRORS = [
    Rejected("The password is too short: use at least 15 characters.", reason="too_short", requester_action=True),
    Rejected("The current password is not correct.", reason="wrong_password", requester_action=True),
    NotFound("The account does not exist.", requester_action=True),
]


@pytest.mark.parametrize("error", RA_ERRORS, ids=lambda e: e.reason)
def test_requester_fixable_failure_closes_the_ticket_without_escalating(app: Firstline, error: Rejected) -> None:
    FakeConnector.script = {"reset_password": [error]}
    out = app.run("fake-reset", {"user": "alice", "new_password": "Tiny-7"}, requester="alice", roles={"employee"})
    assert out.state == "closed" and out.requester_action_needed and not out.ok
    assert out.reason == error.reason and out.message == str(error)
    assert out.guidance("en") == REQUESTER_GUIDANCE["en"] and out.guidance("nl") == REQUESTER_GUIDANCE["nl"]
    t = app.ticket(out.ticket_number)
    assert t["state"] == "closed" and t["resolution_code"] == "requester_action_needed"
    assert t["assignment_group"] is None and t["resolved_at"] is None and t["closed_at"]  # not resolved: ended
    assert app.list_tickets(state="escalated") == [] and len(app.list_tickets(state="closed")) == 1
    (closed,) = _events(app, "ticket.closed")
    assert closed["detail"]["resolution_code"] == "requester_action_needed"  # type: ignore[index]
    assert closed["detail"]["assignment_group"] is None  # type: ignore[index]
    assert _events(app, "ticket.escalated") == []


def test_a_failure_without_the_flag_still_escalates(app: Firstline) -> None:
    FakeConnector.script = {"reset_password": [Rejected("The directory refused the change.", reason="unwilling")]}
    out = app.run("fake-reset", {"user": "alice"}, requester="agent7")
    assert out.state == "escalated" and app.ticket(out.ticket_number)["assignment_group"] == "service-desk-l2"


def test_a_flag_set_to_false_wins_over_the_invalid_input_rule(app: Firstline) -> None:
    FakeConnector.script = {"reset_password": [InvalidInput("bad", requester_action=False)]}
    out = app.run("fake-reset", {"user": "alice"}, requester="agent7")
    assert out.state == "escalated"


def test_invalid_input_from_the_requesters_own_values_is_theirs_to_fix(app: Firstline) -> None:
    FakeConnector.script = {"reset_password": [InvalidInput("The account name may only contain letters.")]}
    out = app.run("fake-reset", {"user": "alice"}, requester="agent7")
    assert out.state == "closed" and out.reason == "invalid_input"


def test_invalid_input_about_an_inventory_or_step_value_escalates(app: Firstline, workdir: Path) -> None:
    """An input built from an earlier step's output is not something the requester typed."""
    (workdir / "runbooks" / "fake-chain.yaml").write_text(
        "schema_version: 1\nname: fake-chain\ntitle: {en: Chain}\ncategory: test\naudience: [agent]\n"
        "parameters:\n  - {name: user, type: account}\n"
        "steps:\n"
        '  - {id: check, connector: fake, action: account_status, with: {user: "{{ params.user }}"}}\n'
        '  - {id: send, connector: fake, action: echo, with: {text: "{{ steps.check.mail }}"}}\n'
        "on_failure: {escalate_to: service-desk-l2}\nresolution: {note: done}\n"
    )
    app.vet("fake-chain", "reviewer")
    FakeConnector.script = {"account_status": [{"mail": "x"}], "echo": [InvalidInput("not an address")]}
    out = app.run("fake-chain", {"user": "alice"}, requester="agent7")
    assert out.state == "escalated"


def test_a_requester_fixable_failure_after_a_change_is_escalated(app: Firstline, workdir: Path) -> None:
    """Half done is for a person to look at, not for the requester to retry."""
    (workdir / "runbooks" / "fake-two.yaml").write_text(
        "schema_version: 1\nname: fake-two\ntitle: {en: Two}\ncategory: test\naudience: [agent]\n"
        "parameters:\n  - {name: user, type: account}\n"
        "steps:\n"
        '  - {id: unlock, connector: fake, action: unlock_account, with: {user: "{{ params.user }}"}}\n'
        '  - {id: reset, connector: fake, action: reset_password, with: {user: "{{ params.user }}"}}\n'
        "on_failure: {escalate_to: service-desk-l2}\nresolution: {note: done}\n"
    )
    app.vet("fake-two", "reviewer")
    FakeConnector.script = {
        "unlock_account": [{"unlocked": True, "changed": True}],
        "reset_password": [Rejected("too short", reason="too_short", requester_action=True)],
    }
    assert app.run("fake-two", {"user": "alice"}, requester="agent7").state == "escalated"
    FakeConnector.script = {
        "unlock_account": [{"unlocked": False, "changed": False}],
        "reset_password": [Rejected("too short", reason="too_short", requester_action=True)],
    }
    assert app.run("fake-two", {"user": "alice"}, requester="agent7").state == "closed"


def test_the_sweeper_never_touches_closed_tickets(app: Firstline) -> None:
    FakeConnector.script = {"reset_password": [RA_ERRORS[0]]}
    out = app.run("fake-reset", {"user": "alice"}, requester="agent7")
    with app.engine.begin() as c:  # a deadline long past: only the state keeps the sweeper away
        c.execute(ticket.update().values(deadline_at="2000-01-01T00:00:00.000000+00:00"))
    assert app.sweep() == []
    assert app.ticket(out.ticket_number)["state"] == "closed"
    assert app.verify_audit().ok


# -- item 18: no configuration detail or server path in what people are shown ---------------------


def test_configuration_errors_show_a_generic_message_and_log_the_detail(app: Firstline, workdir: Path) -> None:
    FakeConnector.script = {"reset_password": [ConfigError("secret file /etc/firstline/ldap.secret is unreadable")]}
    out = app.run("fake-reset", {"user": "alice"}, requester="agent7")
    assert out.state == "escalated" and out.reason == "config_error"
    generic = "Firstline is not configured correctly for this; the service desk has been told."
    assert out.message == generic
    stored = json.dumps(app.ticket(out.ticket_number), default=str)
    assert "/etc/firstline" not in stored and generic in stored
    assert "/etc/firstline/ldap.secret" in (workdir / "fl.log").read_text()


@pytest.mark.parametrize(
    "text",
    [
        "known_hosts /etc/ssh/ssh_known_hosts cannot be read",
        "CA file ../var/lab/ca/ca.crt is not readable",
        "CA file ~/certs/ca.pem is not readable",
        r"file C:\ProgramData\firstline\ca.pem is missing",
    ],
)
def test_connector_messages_naming_a_server_path_are_withheld(app: Firstline, workdir: Path, text: str) -> None:
    FakeConnector.script = {"reset_password": [Rejected(text, reason="config")]}
    out = app.run("fake-reset", {"user": "alice"}, requester="agent7")
    assert out.message.startswith("Firstline is not configured correctly")
    assert text not in json.dumps(app.ticket(out.ticket_number), default=str)
    assert text.replace("\\", "\\\\") in (workdir / "fl.log").read_text()


@pytest.mark.parametrize(
    "text",
    [
        "ssh: cleanup of '/srv/app/cache' on app-01 was incomplete: removed 1 file(s) (8192 bytes freed), "
        "then: find: '/srv/app/cache/stuck': Permission denied",
        r"winrm: cleanup of 'D:\\Cache' on win-01 was incomplete: removed 3 file(s)",
    ],
)
def test_a_message_that_is_no_configuration_error_keeps_its_diagnosis_without_the_path(
    app: Firstline, workdir: Path, text: str
) -> None:
    """A clean-up that stopped half-way was shown as "Firstline is not configured correctly":
    the wrong diagnosis. Its words stay; only the paths are withheld (item 18)."""
    FakeConnector.script = {"reset_password": [Rejected(text, reason="cleanup_incomplete")]}
    out = app.run("fake-reset", {"user": "alice"}, requester="agent7")
    assert out.reason == "cleanup_incomplete"
    assert out.message is not None and "was incomplete: removed" in out.message
    assert "(a path on the server)" in out.message and "not configured correctly" not in out.message
    stored = json.dumps(app.ticket(out.ticket_number), default=str)
    assert "/srv/app" not in stored and "Cache" not in stored
    assert "/srv/app/cache/stuck" in (workdir / "fl.log").read_text() or "Cache" in (workdir / "fl.log").read_text()


def test_an_ordinary_connector_message_is_shown_as_is(app: Firstline) -> None:
    FakeConnector.script = {"reset_password": [Unreachable("The directory cannot be reached (ldaps://10.0.0.1:636).")]}
    out = app.run("fake-reset", {"user": "alice"}, requester="agent7")
    assert out.message == "The directory cannot be reached (ldaps://10.0.0.1:636)."


def test_template_problems_show_a_generic_message(app: Firstline, workdir: Path) -> None:
    (workdir / "runbooks" / "fake-tmpl.yaml").write_text(
        "schema_version: 1\nname: fake-tmpl\ntitle: {en: T}\ncategory: test\naudience: [agent]\n"
        "steps:\n"
        "  - {id: a, connector: fake, action: account_status, with: {user: x}}\n"
        '  - {id: b, connector: fake, action: echo, with: {text: "{{ steps.a.mail.secret_path }}"}}\n'
        "on_failure: {escalate_to: service-desk-l2}\nresolution: {note: done}\n"
    )
    app.vet("fake-tmpl", "reviewer")
    FakeConnector.script = {"account_status": [{"mail": "m"}]}
    out = app.run("fake-tmpl", {}, requester="agent7")
    assert out.reason == "template_error" and "secret_path" not in out.message
    assert out.message == "The runbook could not prepare this step; the service desk has been told."
