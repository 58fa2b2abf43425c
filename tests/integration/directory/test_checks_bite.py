"""Checks of the ldap connector that no other test would miss (issue 7, "tests that must be able to fail").

Each test here was written for a check that could be deleted with the whole suite still
green (found by mutating the check, see ``docs/testing.md``); each asserts on what the real
lab directory holds afterwards, not on the connector's own report.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from ldap3 import BASE, Connection

from connectors.base import Rejected
from connectors.ldap import LdapConnector
from runner.secrets import SecretStore
from tests.integration.directory.helpers import LAB, Directory, new_password, target_config


def _failed_sign_ins(directory: Directory, user: str, times: int = 3) -> None:
    """Wrong passwords the real way (the lab's policies lock after three)."""
    for _ in range(times):
        c = Connection(directory.server, directory.dn(user), "wrong-" + secrets.token_hex(4))
        c.bind()
        c.unbind()


def test_an_unlock_is_believed_only_when_the_re_read_shows_the_account_unlocked(
    directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory accepts the unlock, but the account is locked again before the re-read
    (three more wrong sign-ins land in between): the action must not report "unlocked"."""
    user, pw = directory.create_user()
    directory.lock(user)
    flavor: Any = directory.conn._flavor
    original = flavor.unlock

    def unlock_then_locked_again(conn: Any, dn: str, seen: Any) -> Any:
        failure = original(conn, dn, seen)
        assert failure is None  # the directory did take the unlock
        _failed_sign_ins(directory, user)
        return failure

    monkeypatch.setattr(flavor, "unlock", unlock_then_locked_again)
    with pytest.raises(Rejected) as err:
        directory.conn.run("unlock_account", {"user": user}, timeout=30)
    assert err.value.reason == "unlock_failed"
    monkeypatch.undo()
    assert directory.conn.run("account_status", {"user": user}, timeout=10)["locked"] is True
    assert not directory.bind_ok(user, pw)


def test_a_name_that_two_entries_carry_is_refused_and_neither_is_touched(openldap: Directory) -> None:
    """Two entries with the same uid (say a copy in another OU): acting on the first one the
    directory returns would be a guess. Every action refuses and both entries stay as they were."""
    user, pw = openldap.create_user()
    twin = f"cn={user}-twin,{openldap.base}"
    ok = openldap.admin.add(
        twin,
        attributes={
            "objectClass": ["inetOrgPerson"],
            "uid": user,
            "cn": f"{user}-twin",
            "sn": "Twin",
            "userPassword": pw,
        },
    )
    assert ok, openldap.admin.result
    try:
        _failed_sign_ins(openldap, user)  # locked: unlock would have something to do
        before = openldap.state_attrs(user)
        for action, extra in (
            ("account_status", {}),
            ("unlock_account", {}),
            ("reset_password", {"new_password": new_password()}),
            ("change_password", {"old_password": pw, "new_password": new_password()}),
        ):
            with pytest.raises(Rejected) as err:
                openldap.conn.run(action, {"user": user, **extra}, timeout=30)
            assert err.value.reason == "ambiguous", (action, err.value.reason)
        assert openldap.state_attrs(user) == before
        openldap.admin.search(twin, "(objectClass=*)", BASE, attributes=["userPassword", "pwdAccountLockedTime"])
        assert openldap.admin.entries[0].entry_attributes_as_dict.get("pwdAccountLockedTime", []) == []
    finally:
        openldap.admin.delete(twin)


def test_no_credential_is_sent_on_a_connection_without_tls_even_if_the_setting_slipped_through(
    openldap: Directory,
) -> None:
    """``ldap://`` without StartTLS is refused when the inventory is read; should such a target
    be built anyway (``model_copy`` skips validation), the connector itself still refuses to
    bind before any password travels, and the account is not touched."""
    user, _pw = openldap.create_user()
    before = openldap.state_attrs(user)
    config = target_config("corp").model_copy(update={"url": "ldap://127.0.0.1:3389", "start_tls": False})
    conn = LdapConnector("corp", config, SecretStore(LAB))
    try:
        for action, extra in (("account_status", {}), ("reset_password", {"new_password": new_password()})):
            with pytest.raises(Rejected) as err:
                conn.run(action, {"user": user, **extra}, timeout=30)
            assert err.value.reason == "insecure_connection", (action, err.value.reason)
    finally:
        conn.close()
    assert openldap.state_attrs(user) == before


def test_a_base_dn_that_does_not_exist_is_a_configuration_error(directory: Directory) -> None:
    """Not "the account does not exist", not "lookup failed": the inventory is wrong."""
    missing = "ou=nowhere,dc=example,dc=org" if directory.flavor == "openldap" else "OU=Nowhere,DC=example,DC=test"
    conn = LdapConnector(directory.target, target_config(directory.target, base_dn=missing), SecretStore(LAB))
    try:
        for action in ("account_status", "unlock_account"):
            with pytest.raises(Rejected) as err:
                conn.run(action, {"user": "alice"}, timeout=30)
            assert err.value.reason == "config", (action, err.value.reason)
    finally:
        conn.close()
