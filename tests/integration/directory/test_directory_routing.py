"""One vetted runbook, two directories (issue 7 item 10), against the real lab slapd and Samba.

lab/inventory.yaml declares ``corp`` (OpenLDAP, example.org, EXAMPLE-ORG) and ``ad``
(Samba AD, example.test, EXAMPLE); ``defaults.ldap`` is corp. The same runbooks act on
each directory, chosen by the agent or by the account's domain; tickets, audit events
and ``firstline tickets list`` name the directory; an employee cannot reach the other one.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from runner.api import open_app
from runner.errors import ParameterError, PolicyDenied
from runner.ledger.tables import audit_event
from runner.service import Firstline
from runner.settings import Settings
from tests.integration.conftest import REPO
from tests.integration.directory.conftest import _admin
from tests.integration.directory.helpers import FLAVORS, Directory, connector

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")


@pytest.fixture
def both(lab_directory: None) -> Iterator[tuple[Directory, Directory]]:
    made = []
    for flavor, attr in (("openldap", "uid"), ("active_directory", "sAMAccountName")):
        target, base, _ = FLAVORS[flavor]
        admin, server = _admin(flavor)
        made.append(Directory(flavor, target, connector(target), admin, server, base, attr))
    yield made[0], made[1]
    for d in made:
        d.conn.close()
        d.cleanup()
        d.admin.unbind()


@pytest.fixture
def app(lab_settings: Settings) -> Iterator[Firstline]:
    application = open_app(lab_settings)
    yield application
    application.close()


def _events(app: Firstline, action: str, ticket_no: str | None = None) -> list[Any]:
    q = select(audit_event).where(audit_event.c.action == action).order_by(audit_event.c.seq)
    if ticket_no is not None:
        q = q.where(audit_event.c.ticket == ticket_no)
    with app.engine.connect() as c:
        return list(c.execute(q))


def _locked(d: Directory, user: str) -> bool:
    return bool(d.conn.run("account_status", {"user": user}, timeout=10)["locked"])


def test_account_status_reads_each_directory_by_choice_and_by_domain(
    app: Firstline, both: tuple[Directory, Directory]
) -> None:
    corp, ad = both
    alice, _ = corp.create_user()
    bob, _ = ad.create_user()
    ad.lock(bob)
    runs = {
        "corp-domain": app.run("account-status", {"user": f"{alice}@example.org"}, requester="agent-1"),
        "corp-default": app.run("account-status", {"user": alice}, requester="agent-1"),
        "ad-choice": app.run("account-status", {"user": bob, "directory": "ad"}, requester="agent-1"),
        "ad-netbios": app.run("account-status", {"user": f"EXAMPLE\\{bob}"}, requester="agent-1"),
        "ad-upn": app.run("account-status", {"user": f"{bob}@EXAMPLE.TEST"}, requester="agent-1"),
        # the corp user's name in the AD domain: the AD directory is asked, and has no such account
        "corp-name-in-ad": app.run("account-status", {"user": f"{alice}@example.test"}, requester="agent-1"),
    }
    notes = {k: (v.state, v.resolution_note or "") for k, v in runs.items()}
    assert all(state == "resolved" for state, _ in notes.values()), notes
    assert f"Account {alice} in Example Org (OpenLDAP): not locked" in notes["corp-domain"][1]
    assert notes["corp-default"][1] == notes["corp-domain"][1]
    for key in ("ad-choice", "ad-netbios", "ad-upn"):
        assert f"Account {bob} in Example Test (Active Directory): locked after too many" in notes[key][1], key
    assert f"No account named {alice} was found in Example Test (Active Directory)" in notes["corp-name-in-ad"][1]
    expected = {
        "corp-domain": "corp",
        "corp-default": "corp",
        "ad-choice": "ad",
        "ad-netbios": "ad",
        "ad-upn": "ad",
        "corp-name-in-ad": "ad",
    }
    for key, out in runs.items():
        t = app.ticket(out.ticket_number)
        assert (t["directory"], t["params"]["directory"]) == (expected[key], expected[key]), key
        assert [s["target"] for s in t["steps"]] == [expected[key]], key  # the step ran on that target
        (opened,) = _events(app, "ticket.opened", out.ticket_number)
        assert json.loads(opened.detail)["directory"] == expected[key], key
    assert app.verify_audit().ok


def test_account_unlock_acts_only_in_the_routed_directory(app: Firstline, both: tuple[Directory, Directory]) -> None:
    corp, ad = both
    alice, alice_pw = corp.create_user()
    bob, bob_pw = ad.create_user()
    corp.lock(alice)
    ad.lock(bob)
    # The corp account's name under the AD domain changes nothing in corp.
    wrong = app.run("account-unlock", {"user": f"{alice}@example.test"}, requester="agent-1")
    assert wrong.state != "resolved" and _locked(corp, alice)
    assert app.ticket(wrong.ticket_number)["directory"] == "ad"
    # nothing unlocked there: at most the failed attempt in the routed directory (audited as such)
    tried = _events(app, "ldap.unlock_account", wrong.ticket_number)
    assert all(e.outcome == "failure" and e.target.startswith("ad:") for e in tried), tried

    one = app.run("account-unlock", {"user": f"{alice}@example.org"}, requester="agent-1")
    assert one.state == "resolved", (one.reason, one.message)
    assert not _locked(corp, alice) and corp.bind_ok(alice, alice_pw)
    assert _locked(ad, bob)  # the other directory untouched
    two = app.run("account-unlock", {"user": f"EXAMPLE\\{bob}"}, requester="agent-1")
    assert two.state == "resolved", (two.reason, two.message)
    assert not _locked(ad, bob) and ad.bind_ok(bob, bob_pw)

    assert [e.target for e in _events(app, "ldap.unlock_account", one.ticket_number)] == [f"corp:{alice}"]
    assert [e.target for e in _events(app, "ldap.unlock_account", two.ticket_number)] == [f"ad:{bob}"]
    assert [(t["number"], t["directory"]) for t in app.list_tickets()] == [
        (two.ticket_number, "ad"),
        (one.ticket_number, "corp"),
        (wrong.ticket_number, "ad"),
    ]


def test_employees_are_routed_to_their_own_directory_and_no_further(
    app: Firstline, both: tuple[Directory, Directory]
) -> None:
    corp, ad = both
    alice, _ = corp.create_user()
    bob, bob_pw = ad.create_user()
    ad.lock(bob)
    corp.lock(alice)
    before = (corp.state_attrs(alice), ad.state_attrs(bob))
    refusals = [
        ({"directory": "ad"}, f"{alice}@example.org", PolicyDenied),
        ({"user": f"{alice}@example.test"}, f"{alice}@example.org", PolicyDenied),
        ({"user": f"EXAMPLE\\{bob}"}, f"{alice}@example.org", PolicyDenied),
        ({"directory": "corp"}, f"EXAMPLE\\{bob}", PolicyDenied),
        ({"directory": "ad"}, alice, PolicyDenied),  # bare sign-in name: the default directory only
        ({"directory": "elsewhere"}, f"{alice}@example.org", PolicyDenied),
        ({}, f"{alice}@example.org.", ParameterError),
    ]
    for raw, requester, error in refusals:
        with pytest.raises(error):
            app.run("account-unlock", raw, requester=requester, roles={"employee"}, channel="portal")
    assert app.list_tickets() == []
    assert _events(app, "ticket.opened") == []
    assert len(_events(app, "run.refused")) == len(refusals)
    assert (corp.state_attrs(alice), ad.state_attrs(bob)) == before  # nothing changed anywhere

    # bob signs in with his UPN: his own AD account is unlocked although corp is the default
    out = app.run("account-unlock", {}, requester=f"{bob}@example.test", roles={"employee"}, channel="portal")
    assert out.state == "resolved", (out.reason, out.message)
    assert not _locked(ad, bob) and ad.bind_ok(bob, bob_pw) and _locked(corp, alice)
    t = app.ticket(out.ticket_number)
    assert (t["directory"], t["subject"], t["requester"]) == ("ad", bob, f"{bob}@example.test")


def _cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FIRSTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "FIRSTLINE_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "FIRSTLINE_INVENTORY": str(REPO / "lab" / "inventory.yaml"),
        "FIRSTLINE_AUDIT_KEY_FILE": str(tmp_path / "keys" / "audit.key"),
        "FIRSTLINE_LOG_FILE": str(tmp_path / "firstline.log"),
        "FIRSTLINE_ENVIRONMENT": "test",
    }


def _fl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FIRSTLINE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_cli_routes_lists_the_directory_and_refuses_unknown_ones(
    tmp_path: Path, both: tuple[Directory, Directory]
) -> None:
    corp, ad = both
    alice, _ = corp.create_user()
    bob, _ = ad.create_user()
    env = _cli_env(tmp_path)
    r = _fl(env, "run", "account-status", "-p", f"user={alice}@example.org")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _fl(env, "run", "account-status", "-p", f"user={bob}", "-p", "directory=ad")
    assert r.returncode == 0, r.stdout + r.stderr

    r = _fl(env, "run", "account-status", "-p", f"user={bob}", "-p", "directory=AD-Forest")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "must be one of the directories: ad, corp" in r.stderr and "AD-Forest" not in r.stderr
    assert "Traceback" not in r.stderr
    r = _fl(env, "run", "account-status", "--role", "employee", "--as", f"{alice}@example.org", "-p", "directory=ad")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "own directory" in r.stderr and "Traceback" not in r.stderr

    r = _fl(env, "tickets", "list")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith("FL-")]
    assert [(row[0], row[4], row[-1]) for row in rows] == [("FL-000002", "ad", bob), ("FL-000001", "corp", alice)]
