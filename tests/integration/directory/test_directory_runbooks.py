"""The four directory runbooks end to end through open_app(), on OpenLDAP and on AD.

The OpenLDAP runs use lab/inventory.yaml as it is (defaults.ldap: corp); the AD runs use a
copy whose defaults.ldap is ``ad`` — the same runbooks, another inventory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.api import open_app
from runner.service import Firstline
from runner.settings import Settings
from tests.integration.conftest import store_bytes
from tests.integration.directory.helpers import LAB, Directory, mails_to, new_password, raw_mails_to

pytestmark = pytest.mark.integration


def _absolute(node: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {"file"} and not str(node["file"]).startswith("/"):
            return {"file": str((LAB / node["file"]).resolve())}
        return {k: _absolute(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute(v) for v in node]
    return node


@pytest.fixture
def app(directory: Directory, lab_settings: Settings, tmp_path: Path) -> Iterator[Firstline]:
    settings = lab_settings
    if directory.target != "corp":
        raw = _absolute(yaml.safe_load((LAB / "inventory.yaml").read_text()))
        raw["defaults"]["ldap"] = directory.target
        inv = tmp_path / "inventory.yaml"
        inv.write_text(yaml.safe_dump(raw))
        settings = lab_settings.model_copy(update={"inventory": inv})
    application = open_app(settings)
    yield application
    application.close()


def _secret_free(app: Firstline, *secrets: str, fixed: tuple[str, ...] = ()) -> None:
    """No store holds any of *secrets*. *fixed*: Firstline's own fixed texts a secret may
    happen to occur in (a password "too short" in "The new password is too short: ..."):
    they are taken out first, so the secret may stand there and nowhere else."""
    blob = store_bytes(app)
    for text in fixed:
        blob = blob.replace(text.encode(), b"")
    for s in secrets:
        assert s.encode() not in blob


def test_account_status_runbook_resolves_with_a_note(app: Firstline, directory: Directory) -> None:
    user, _ = directory.create_user()
    directory.lock(user)
    out = app.run("account-status", {"user": user}, requester="agent-1", roles={"agent"})
    assert out.state == "resolved"
    assert out.resolution_note is not None and "locked after too many failed sign-ins" in out.resolution_note
    missing = app.run("account-status", {"user": "nobody-at-all"}, requester="agent-1", roles={"agent"})
    assert missing.state == "resolved" and "No account named" in (missing.resolution_note or "")


def test_unlock_runbook_unlocks_verifies_and_notifies(app: Firstline, directory: Directory) -> None:
    user, pw = directory.create_user()
    directory.lock(user)
    out = app.run("account-unlock", {}, requester=user, roles={"employee"}, channel="portal")
    assert out.state == "resolved", (out.reason, out.message)
    assert directory.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False
    assert directory.bind_ok(user, pw)
    (msg,) = mails_to(f"{user}@example.org")
    assert "unlocked" in msg.get_content() and "self-service portal" in msg.get_content()


def test_an_agent_s_unlock_for_the_owner_names_the_service_desk_agent_not_the_portal(
    app: Firstline, directory: Directory
) -> None:
    """An agent's one-click fix comes in on the portal (or API) channel, but the owner did not
    use the self-service portal: the notification says a service desk agent did it."""
    user, _pw = directory.create_user()
    directory.lock(user)
    out = app.run(  # as the agent desk submits it: on behalf of the owner, acted by the agent
        "account-unlock", {"user": user}, requester=f"{user}@example.org", actor_id="agent7@example.org",
        roles={"agent"}, channel="portal",
    )  # fmt: skip
    assert out.state == "resolved", (out.reason, out.message)
    (msg,) = mails_to(f"{user}@example.org")
    body = msg.get_content()
    assert "self-service portal" not in body and "a service desk agent" in body and "servicedeskmedewerker" in body


def test_unlock_runbook_on_a_privileged_account_escalates(app: Firstline, directory: Directory) -> None:
    out = app.run("account-unlock", {"user": "root-admin"}, requester="agent-1", roles={"agent"})
    assert out.state == "escalated" and out.reason == "not_allowed"


def test_agent_reset_hands_over_a_temporary_password_stored_nowhere(app: Firstline, directory: Directory) -> None:
    user, old = directory.create_user()
    directory.lock(user)
    out = app.run("password-reset", {"user": user}, requester="agent-1", roles={"agent"}, channel="cli")
    assert out.state == "resolved", (out.reason, out.message)
    temp = out.secrets["reset.temporary_password"]
    assert directory.conn.run("account_status", {"user": user}, timeout=10)["must_change"] is True
    assert directory.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False
    assert not directory.bind_ok(user, old)
    _secret_free(app, temp)
    (msg,) = mails_to(f"{user}@example.org")
    assert "reset" in msg.get_content() and "wasn't you" in msg.get_content()
    assert temp.encode() not in raw_mails_to(f"{user}@example.org")


def test_self_service_reset_with_own_password(app: Firstline, directory: Directory) -> None:
    user, _ = directory.create_user()
    pw = new_password()
    out = app.run(
        "password-reset",
        {"new_password": pw, "must_change": False},
        requester=user,
        roles={"employee"},
        channel="portal",
    )
    assert out.state == "resolved", (out.reason, out.message)
    assert out.secrets == {}
    assert directory.bind_ok(user, pw)
    _secret_free(app, pw)
    assert pw.encode() not in raw_mails_to(f"{user}@example.org")


def test_reset_with_a_weak_password_is_closed_for_the_requester(app: Firstline, directory: Directory) -> None:
    user, _old = directory.create_user()
    before = directory.state_attrs(user)
    out = app.run("password-reset", {"new_password": "too short"}, requester=user, roles={"employee"})
    assert out.state == "closed" and out.reason == "too_short"  # requester_action_needed, not second level
    # the policy's fixed text says what to change, although the password typed occurs in it
    # (it was "(message withheld: it contained a secret value)"); it holds nothing typed
    assert out.message is not None and out.message.startswith("The new password is too short: use at least")
    assert directory.state_attrs(user) == before
    _secret_free(app, "too short", fixed=(out.message,))


def test_employee_cannot_reset_someone_else(app: Firstline, directory: Directory) -> None:
    victim, old = directory.create_user()
    out = None
    try:
        out = app.run("password-reset", {"user": victim}, requester="someone-else", roles={"employee"})
    except Exception as exc:  # the runner may refuse before a ticket opens
        assert "own account" in str(exc)
    if out is not None:
        assert out.state == "escalated"
    assert directory.bind_ok(victim, old)


def test_password_change_runbook_changes_and_notifies(app: Firstline, directory: Directory) -> None:
    user, old = directory.create_user()
    new = new_password()
    out = app.run(
        "password-change",
        {"old_password": old, "new_password": new},
        requester=user,
        roles={"employee"},
        channel="portal",
    )
    assert out.state == "resolved", (out.reason, out.message)
    assert directory.bind_ok(user, new)
    _secret_free(app, old, new)
    (msg,) = mails_to(f"{user}@example.org")
    assert "changed" in msg.get_content()
    assert new.encode() not in raw_mails_to(f"{user}@example.org") and old.encode() not in raw_mails_to(
        f"{user}@example.org"
    )


def test_password_change_with_wrong_old_password_is_closed_for_the_requester(
    app: Firstline, directory: Directory
) -> None:
    user, _ = directory.create_user()
    out = app.run(
        "password-change",
        {"old_password": "Wrong-Password-123", "new_password": new_password()},
        requester=user,
        roles={"employee"},
    )
    assert out.state == "closed" and out.reason == "wrong_password"  # requester_action_needed
    assert mails_to(f"{user}@example.org", wait=0.3) == []
