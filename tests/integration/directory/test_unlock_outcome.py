"""An unlock the directory accepted is never reported as "nothing was applied".

``unlock_account`` writes (OpenLDAP: deletes the lock value; AD: ``lockoutTime=0``) and then
reads the account back. When that read failed — the connection dropped, a value could not be
read — or still showed a lock, the error said nothing of the write, so the audit recorded
outcome ``failure`` (nothing applied) for an account that had been unlocked. Now those
errors carry ``outcome_unknown`` (audit outcome ``unknown``). The dropped read is injected;
the directories are the lab slapd and Samba DC.
"""

from __future__ import annotations

from typing import Any

import pytest
from ldap3.core.exceptions import LDAPSocketReceiveError

from connectors.base import ConnectorError
from tests.integration.directory.helpers import Directory


def test_a_failed_read_after_the_unlock_is_outcome_unknown(directory: Directory) -> None:
    user, pw = directory.create_user()
    directory.lock(user)
    conn = directory.conn
    real = conn._read_attrs

    def read(c: Any, dn: str, *, protection: bool = True) -> dict[str, Any]:
        if not protection:  # the read back after the write
            raise LDAPSocketReceiveError("connection lost")
        return real(c, dn, protection=protection)

    conn._read_attrs = read  # type: ignore[method-assign]
    with pytest.raises(ConnectorError) as info:
        conn.run("unlock_account", {"user": user}, timeout=15)
    assert info.value.reason == "unreachable"
    assert info.value.outcome_unknown is True  # before: False, audited as "nothing applied"
    del conn._read_attrs
    assert conn.run("account_status", {"user": user}, timeout=10)["locked"] is False  # it was unlocked
    assert directory.bind_ok(user, pw)


def test_a_lock_still_shown_after_the_write_is_outcome_unknown(openldap: Directory) -> None:
    """The read back shows a lock (here: the administrator's, set right after the write)."""
    user, _pw = openldap.create_user()
    openldap.lock(user)
    conn = openldap.conn
    real = conn._read_attrs

    def read(c: Any, dn: str, *, protection: bool = True) -> dict[str, Any]:
        if not protection:
            openldap.set(user, pwdAccountLockedTime="000001010000Z")
        return real(c, dn, protection=protection)

    conn._read_attrs = read  # type: ignore[method-assign]
    with pytest.raises(ConnectorError) as info:
        conn.run("unlock_account", {"user": user}, timeout=15)
    del conn._read_attrs
    assert info.value.reason == "unlock_failed" and info.value.outcome_unknown is True
