"""slapd's temporary lockout is a lock: reported, and never "unlocked" or reset past.

slapd 2.5 sets ``pwdAccountTmpLockoutEnd`` after failed binds under a policy with
``pwdMinDelay``; until that time it refuses every bind — the right password, and a new one
after a reset (seen on slapd 2.5.13) — and the attribute is NO-USER-MODIFICATION, so no
service account can lift it. The connector did not read it: ``account_status`` said not
locked, the unlock runbook closed "was not locked; nothing was changed" and a reset answered
success while the owner still could not sign in. Now it is ``locked`` with ``lock_reason``
``temporary``, and unlock and reset are refused before any write (``locked_temporarily``,
naming the end). Under a policy without ``pwdLockout`` slapd ignores it, and so does the
connector.

The lab slapd crashes on a failed bind under ``pwdMinDelay`` (2.5.13), so the test writes the
attribute as the directory administrator with the relax control, as slapd itself would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ldap3 import MODIFY_REPLACE

from connectors.base import Rejected
from tests.integration.directory.helpers import Directory, new_password

RELAX = ("1.3.6.1.4.1.4203.666.5.12", True, None)  # lets the administrator write the operational value
NO_LOCKOUT = "cn=no-lockout,ou=policies,dc=example,dc=org"  # lab/slapd.sh: pwdLockout FALSE


def lock_temporarily(d: Directory, user: str, minutes: int = 10) -> str:
    end = (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y%m%d%H%M%SZ")
    ok = d.admin.modify(d.dn(user), {"pwdAccountTmpLockoutEnd": [(MODIFY_REPLACE, [end])]}, controls=[RELAX])
    assert ok, d.admin.result
    return end


def test_a_temporary_lockout_is_locked_and_not_unlocked_or_reset_past(openldap: Directory) -> None:
    user, pw = openldap.create_user()
    end = lock_temporarily(openldap, user)
    assert not openldap.bind_ok(user, pw)  # slapd refuses even the right password

    status = openldap.conn.run("account_status", {"user": user}, timeout=10)
    assert (status["locked"], status["lock_reason"], status["disabled"]) == (True, "temporary", False)

    before = openldap.state_attrs(user)
    for action, inputs in (
        ("unlock_account", {"user": user}),
        ("reset_password", {"user": user, "new_password": new_password()}),
        ("reset_password", {"user": user}),
    ):
        with pytest.raises(Rejected) as err:
            openldap.conn.run(action, inputs, timeout=15)
        assert err.value.reason == "locked_temporarily", action
        assert f"until {end[:4]}-{end[4:6]}-{end[6:8]}T{end[8:10]}:{end[10:12]}:{end[12:14]}Z" in str(err.value)
    assert openldap.state_attrs(user) == before


def test_a_temporary_lockout_that_ended_or_is_ignored_is_not_a_lock(openldap: Directory) -> None:
    user, pw = openldap.create_user()
    openldap.admin.modify(
        openldap.dn(user),
        {
            "pwdAccountTmpLockoutEnd": [
                (MODIFY_REPLACE, [(datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y%m%d%H%M%SZ")])
            ]
        },
        controls=[RELAX],
    )
    assert openldap.bind_ok(user, pw)
    assert openldap.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False

    other, other_pw = openldap.create_user(pwdPolicySubentry=NO_LOCKOUT)
    lock_temporarily(openldap, other)
    assert openldap.bind_ok(other, other_pw)  # pwdLockout FALSE: slapd ignores it
    assert openldap.conn.run("account_status", {"user": other}, timeout=10)["locked"] is False
