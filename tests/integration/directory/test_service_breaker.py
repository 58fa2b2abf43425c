"""A wrong service password does not lock the service account (issue 7, item 8).

Each test makes its own service account (OpenLDAP ``cn=svc-…,ou=services`` under the
default policy, pwdMaxFailure 3; an AD user, lockout threshold 3) so that the lab's real
service accounts are never put at risk. Runs are simulated as a new connector per run
(the CLI's situation), and across processes with a shared breaker file.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import BASE

from connectors.auth_breaker import BREAKERS, AuthBreaker
from connectors.base import AuthFailed
from connectors.ldap import LdapConnector
from runner.secrets import SecretStore
from tests.integration.directory.helpers import LAB, REPO, Directory, new_password, target_config


def failures(d: Directory, dn: str) -> int:
    """Failed binds the directory counted on *dn* (pwdFailureTime values / badPwdCount)."""
    attr = "pwdFailureTime" if d.flavor == "openldap" else "badPwdCount"
    d.admin.search(dn, "(objectClass=*)", BASE, attributes=[attr, "pwdAccountLockedTime", "lockoutTime"])
    assert d.admin.entries, d.admin.result
    values = d.admin.entries[0].entry_attributes_as_dict.get(attr) or []
    if d.flavor == "openldap":
        return len(values)
    return int(values[0]) if values else 0


@pytest.fixture
def service(directory: Directory, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(bind DN, its real password, a secret file) for a throwaway service account."""
    password = new_password()
    if directory.flavor == "openldap":
        dn = f"cn=svc-{secrets.token_hex(4)},ou=services,dc=example,dc=org"
        ok = directory.admin.add(
            dn,
            attributes={
                "objectClass": ["applicationProcess", "simpleSecurityObject"],
                "userPassword": password,
            },
        )
        assert ok, directory.admin.result
    else:
        user, password = directory.create_user()
        dn = directory.dn(user)
    secret = tmp_path / "svc-password"
    yield dn, password, secret
    if directory.flavor == "openldap":
        directory.admin.delete(dn)


def run_once(d: Directory, dn: str, secret: Path, **changes: object) -> LdapConnector:
    config = target_config(d.target, bind_dn=dn, password={"file": str(secret)}, **changes)
    return LdapConnector(d.target, config, SecretStore(LAB))


def test_n_runs_with_a_wrong_password_reach_the_directory_once(
    directory: Directory, service: tuple[str, str, Path]
) -> None:
    dn, real, secret = service
    secret.write_text("Wrong-" + secrets.token_hex(8))
    assert failures(directory, dn) == 0
    messages, reasons = [], set()
    for _ in range(6):  # more than the lockout threshold of 3
        conn = run_once(directory, dn, secret)  # a new connector per run, like the CLI
        with pytest.raises(AuthFailed) as err:
            conn.run("account_status", {"user": "alice"}, timeout=30)
        conn.close()
        messages.append(str(err.value))
        reasons.add(err.value.reason)
        assert real not in str(err.value) and secret.read_text() not in str(err.value)
    assert failures(directory, dn) == 1
    assert reasons == {"auth_failed"}
    first = messages[0]
    assert "password" in first and "bind_dn" in first
    assert all(m.startswith(first) for m in messages)  # the same clear reason every run
    assert all("Not trying again" in m for m in messages[1:])
    # the account was never locked: its real password still works
    assert _binds(directory, dn, real)


def _binds(d: Directory, dn: str, password: str) -> bool:
    from ldap3 import Connection

    c = Connection(d.server, dn, password)
    try:
        return bool(c.bind())
    finally:
        c.unbind()


def test_a_corrected_password_closes_the_breaker_at_once(directory: Directory, service: tuple[str, str, Path]) -> None:
    dn, real, secret = service
    secret.write_text("Wrong-" + secrets.token_hex(8))
    with pytest.raises(AuthFailed):
        run_once(directory, dn, secret).run("account_status", {"user": "alice"}, timeout=30)
    secret.write_text(real)
    conn = run_once(directory, dn, secret)
    assert conn.run("account_status", {"user": "alice"}, timeout=30)["exists"] is True
    conn.close()
    # a successful bind clears the directory's failure count too
    assert failures(directory, dn) == 0


def test_the_cooldown_is_configurable_and_zero_disables_the_breaker(
    directory: Directory, service: tuple[str, str, Path]
) -> None:
    dn, _real, secret = service
    secret.write_text("Wrong-" + secrets.token_hex(8))
    for _ in range(2):
        with pytest.raises(AuthFailed) as err:
            run_once(directory, dn, secret, auth_failure_cooldown=0).run(
                "account_status", {"user": "alice"}, timeout=30
            )
        assert "Not trying again" not in str(err.value)
    assert failures(directory, dn) == 2


def test_the_breaker_is_shared_by_separate_processes(
    directory: Directory, service: tuple[str, str, Path], tmp_path: Path
) -> None:
    """Each CLI run is a new process: the breaker file carries the state from one to the next."""
    dn, real, secret = service
    secret.write_text("Wrong-" + secrets.token_hex(8))
    state = tmp_path / "breakers.json"
    script = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(REPO)!r})
from connectors import auth_breaker
from connectors.base import AuthFailed
from tests.integration.directory.test_service_breaker import run_once
from tests.integration.directory.helpers import Directory
auth_breaker.configure(Path({str(state)!r}))
d = Directory({directory.flavor!r}, {directory.target!r}, None, None, None, "", "")
try:
    run_once(d, {dn!r}, Path({str(secret)!r})).run("account_status", {{"user": "alice"}}, timeout=30)
    print(json.dumps({{"ok": True}}))
except AuthFailed as exc:
    print(json.dumps({{"reason": exc.reason, "message": str(exc)}}))
"""
    outs = []
    for _ in range(4):
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert all(o.get("reason") == "auth_failed" for o in outs), outs
    assert failures(directory, dn) == 1
    raw = state.read_bytes()
    assert real.encode() not in raw and secret.read_bytes() not in raw  # no secret in the state file
    assert (state.stat().st_mode & 0o777) == 0o600


def test_breaker_unit_keys_by_secret_and_expires(tmp_path: Path) -> None:
    b = AuthBreaker(tmp_path / "b.json")
    k1, k2 = b.key("corp", "cn=svc", "one"), b.key("corp", "cn=svc", "two")
    assert k1 != k2 and "one" not in k1
    b.trip(k1, AuthFailed("refused."), 60)
    with pytest.raises(AuthFailed):
        b.check(k1)
    b.check(k2)  # another secret: closed
    b.trip(k2, AuthFailed("refused."), -1)  # already expired
    b.check(k2)
    # a fresh registry reading the same file sees the open trip
    with pytest.raises(AuthFailed):
        AuthBreaker(tmp_path / "b.json").check(k1)
    b.close(k1)
    AuthBreaker(tmp_path / "b.json").check(k1)
    assert BREAKERS is not b


def test_cli_runs_with_a_wrong_service_password_reach_the_directory_once(
    directory: Directory, service: tuple[str, str, Path], tmp_path: Path
) -> None:
    """The issue's case as an operator meets it: `firstline run` again and again (one process each)."""
    import os

    import yaml

    from tests.integration.directory.test_directory_runbooks import _absolute

    dn, real, secret = service
    secret.write_text("Wrong-" + secrets.token_hex(8))
    raw = _absolute(yaml.safe_load((LAB / "inventory.yaml").read_text()))
    raw["defaults"]["ldap"] = directory.target
    raw["targets"][directory.target].update({"bind_dn": dn, "password": {"file": str(secret)}})
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(raw))
    env = {
        **os.environ,
        "FIRSTLINE_ENVIRONMENT": "test",
        "FIRSTLINE_DATA_DIR": str(tmp_path / "data"),
        "FIRSTLINE_INVENTORY": str(inventory),
        "FIRSTLINE_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "FIRSTLINE_LANG": "en",
    }
    outputs = []
    for _ in range(4):
        proc = subprocess.run(
            [str(REPO / ".venv" / "bin" / "firstline"), "run", "account-status", "-p", "user=alice", "--as", "agent-1"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
        assert proc.returncode != 0, proc.stdout
        outputs.append(proc.stdout + proc.stderr)
        assert secret.read_text() not in outputs[-1] and real not in outputs[-1]
    assert failures(directory, dn) == 1, outputs
    assert all("bind_dn" in out for out in outputs), outputs
    assert all("Not trying again" in out for out in outputs[1:]), outputs


def test_a_locked_service_account_is_reported_as_locked(ad: Directory, tmp_path: Path) -> None:
    """AD says why (data 775): the message tells an administrator to unlock, not to fix the password."""
    from ldap3 import Connection

    user, real = ad.create_user()
    for _ in range(3):  # the lab's lockout threshold
        c = Connection(ad.server, ad.dn(user), "Wrong-" + secrets.token_hex(6))
        c.bind()
        c.unbind()
    secret = tmp_path / "svc-password"
    secret.write_text(real)
    with pytest.raises(AuthFailed) as err:
        run_once(ad, ad.dn(user), secret).run("account_status", {"user": "alice"}, timeout=30)
    assert err.value.reason == "service_locked" and "locked" in str(err.value) and real not in str(err.value)
