"""What the ledger records for real directory runs, on OpenLDAP and on AD (issue 7):

* item 13: an unlock that finds nothing to lift is audited as ``no_change`` (read from the
  audit rows), and the shipped ``account-unlock`` does not even try it;
* item 18: a too-short password, a wrong current password and an unknown account close the
  ticket as ``requester_action_needed`` (not escalated; no assignment group) and leave the
  directory as it was;
* item 17: the audit rows carry who acted and on whose behalf.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from runner.api import open_app
from runner.ledger.tables import audit_event
from runner.service import Firstline
from runner.settings import Settings
from tests.integration.conftest import REPO
from tests.integration.directory.helpers import LAB, Directory

pytestmark = pytest.mark.integration

UNLOCK_ALWAYS = """\
schema_version: 1
name: unlock-always
title: {en: Unlock without checking first}
category: identity/account
audience: [agent]
parameters:
  - {name: user, type: account}
  - {name: directory, type: directory}
steps:
  - id: unlock
    connector: ldap
    target: "{{ params.directory.target }}"
    action: unlock_account
    with: {user: "{{ params.user }}"}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "done"}
"""


def _absolute(node: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {"file"} and not str(node["file"]).startswith("/"):
            return {"file": str((LAB / node["file"]).resolve())}
        return {k: _absolute(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute(v) for v in node]
    return node


@pytest.fixture
def directory_app(lab_settings: Settings, tmp_path: Path) -> Iterator[Firstline]:
    """The shipped runbooks plus `unlock-always` (vetted in a copy), over the lab inventory."""
    books = tmp_path / "runbooks"
    shutil.copytree(REPO / "runbooks", books)
    (books / "unlock-always.yaml").write_text(UNLOCK_ALWAYS)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(_absolute(yaml.safe_load((LAB / "inventory.yaml").read_text()))))
    application = open_app(lab_settings.model_copy(update={"runbooks_dir": books, "inventory": inv}))
    application.vet("unlock-always", "reviewer")
    yield application
    application.close()


@pytest.fixture
def app(directory: Directory, directory_app: Firstline) -> Firstline:
    return directory_app


def _events(app: Firstline, ticket: str) -> list[dict[str, Any]]:
    with app.engine.connect() as c:
        rows = c.execute(select(audit_event).where(audit_event.c.ticket == ticket).order_by(audit_event.c.seq))
        out = [dict(r) for r in rows.mappings()]
    for r in out:
        r["detail"] = json.loads(r["detail"])
    return out


def test_an_unlock_of_an_unlocked_account_is_audited_as_no_change(app: Firstline, directory: Directory) -> None:
    user, pw = directory.create_user()
    before = directory.state_attrs(user)
    out = app.run("unlock-always", {"user": user, "directory": directory.target}, requester=user, actor_id="agent-7")
    assert out.state == "resolved", out.message
    (event,) = [e for e in _events(app, out.ticket_number) if e["action"] == "ldap.unlock_account"]
    assert event["outcome"] == "no_change"
    assert event["detail"]["changed"] is False and event["detail"]["changed_reported"] is True
    step = app.ticket(out.ticket_number)["steps"][0]
    assert step["outputs"]["changed"] is False and "Nothing to change" in step["message"]
    after = directory.state_attrs(user)
    assert {k: v for k, v in after.items() if k != "whenChanged"} == {
        k: v for k, v in before.items() if k != "whenChanged"
    }
    assert directory.bind_ok(user, pw)


def test_a_real_unlock_is_audited_as_a_change(app: Firstline, directory: Directory) -> None:
    user, pw = directory.create_user()
    directory.lock(user)
    out = app.run("unlock-always", {"user": user, "directory": directory.target}, requester=user, actor_id="agent-7")
    assert out.state == "resolved", out.message
    (event,) = [e for e in _events(app, out.ticket_number) if e["action"] == "ldap.unlock_account"]
    assert event["outcome"] == "success" and event["detail"]["changed"] is True
    assert directory.bind_ok(user, pw)


def test_the_shipped_unlock_runbook_skips_an_account_that_is_not_locked(app: Firstline, directory: Directory) -> None:
    user, _ = directory.create_user()
    out = app.run("account-unlock", {"user": user, "directory": directory.target}, requester="agent-7")
    assert out.state == "resolved" and out.resolution_note == f"Account {user} was not locked; nothing was changed."
    assert {s.step_id: s.status for s in out.steps}["unlock"] == "skipped"
    assert [e["action"] for e in _events(app, out.ticket_number)] == ["ticket.opened", "ticket.resolved"]


def _closed_for_the_requester(app: Firstline, number: str, reason: str) -> None:
    t = app.ticket(number)
    assert (t["state"], t["resolution_code"], t["reason"]) == ("closed", "requester_action_needed", reason), t
    assert t["assignment_group"] is None
    actions = [e["action"] for e in _events(app, number)]
    assert actions[-1] == "ticket.closed" and "ticket.escalated" not in actions
    assert app.list_tickets(state="escalated") == []


def test_a_too_short_password_is_for_the_requester_to_fix(app: Firstline, directory: Directory) -> None:
    user, pw = directory.create_user()
    out = app.run(
        "password-change",
        {"user": user, "directory": directory.target, "old_password": pw, "new_password": "Short-1"},
        requester=user,
        actor_id="agent-7",
    )
    assert out.requester_action_needed and out.guidance("nl")
    _closed_for_the_requester(app, out.ticket_number, "too_short")
    assert directory.bind_ok(user, pw)


def test_a_wrong_current_password_is_for_the_requester_to_fix(app: Firstline, directory: Directory) -> None:
    user, pw = directory.create_user()
    out = app.run(
        "password-change",
        {
            "user": user,
            "directory": directory.target,
            "old_password": "Not-The-Password-" + pw[-6:],
            "new_password": "Harbour Lantern quietly 91 orbit!",  # fixed: no personal token by chance
        },
        requester=user,
        actor_id="agent-7",
    )
    assert out.requester_action_needed, (out.state, out.reason, out.message)
    _closed_for_the_requester(app, out.ticket_number, "wrong_password")
    assert directory.bind_ok(user, pw)


@pytest.mark.parametrize("runbook", ["account-unlock", "password-reset"])
def test_an_unknown_account_is_for_the_requester_to_fix(app: Firstline, directory: Directory, runbook: str) -> None:
    out = app.run(runbook, {"user": "nobody-here-4711", "directory": directory.target}, requester="agent-7")
    assert out.requester_action_needed, (out.state, out.reason, out.message)
    _closed_for_the_requester(app, out.ticket_number, "not_found")
    assert out.secrets == {}


def test_who_acted_and_for_whom_are_in_every_audit_row(app: Firstline, directory: Directory) -> None:
    user, _ = directory.create_user()
    directory.lock(user)
    out = app.run(
        "account-unlock", {"user": user, "directory": directory.target}, requester=user, actor_id="operator-1"
    )
    assert out.state == "resolved", out.message
    events = _events(app, out.ticket_number)
    assert {e["action"] for e in events} >= {"ticket.opened", "ldap.unlock_account", "ticket.resolved"}
    assert all((e["actor"], e["on_behalf_of"]) == ("operator-1", user) for e in events)
    assert app.ticket(out.ticket_number)["opened_by"] == "operator-1"


def test_the_shipped_unlock_still_sends_a_disabled_account_to_the_service_desk(
    directory_app: Firstline, ad: Directory
) -> None:
    """Skipping the unlock is only for an ordinary unlocked account: a disabled one (AD
    userAccountControl 514, not locked) still reaches the connector, which refuses it."""
    user, _pw = ad.create_user(userAccountControl="514")
    before = ad.state_attrs(user)
    out = directory_app.run("account-unlock", {"user": user, "directory": "ad"}, requester="agent-7")
    assert (out.state, out.reason) == ("escalated", "disabled"), (out.state, out.reason, out.message)
    assert {s.step_id: s.status for s in out.steps}["unlock"] == "failed"
    assert ad.state_attrs(user) == before
