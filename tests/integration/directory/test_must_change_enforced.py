"""A reset is "must be changed at the next sign-in" only when the directory enforces it.

The flag alone does not make a user change a password:

* OpenLDAP: slapd ignores ``pwdReset: TRUE`` under a policy whose ``pwdMustChange`` is not
  TRUE (the bind is not restricted);
* AD: the DC ignores ``pwdLastSet = 0`` for an account whose password never expires
  (``UF_DONT_EXPIRE_PASSWD``; the lab Samba DC lets the bind through, as Windows does).

Before: ``account_status`` said ``must_change: true`` for such accounts, and a must-change
reset wrote the flag and answered ``must_change: true`` — the ticket said the (possibly
generated, handed-out) password "must be changed at the next sign-in" while it stayed valid
for good. Now the status follows the directory, and a must-change reset the directory would
not enforce is refused before anything is written (``must_change_not_enforced``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from ldap3 import MODIFY_REPLACE, Connection

from connectors.base import Rejected
from connectors.ldap_controls import ppolicy_request, response_ppolicy
from tests.integration.directory.helpers import Directory, new_password

POLICIES = "ou=policies,dc=example,dc=org"


@pytest.fixture
def lax_policy(openldap: Directory) -> Iterator[str]:
    """A password policy of its own (unique name) with pwdMustChange FALSE, removed afterwards."""
    name = f"fl-test-nomustchange-{secrets.token_hex(4)}"
    dn = f"cn={name},{POLICIES}"
    ok = openldap.admin.add(
        dn,
        attributes={
            "objectClass": ["top", "device", "pwdPolicy"],
            "cn": name,
            "pwdAttribute": "userPassword",
            "pwdLockout": "TRUE",
            "pwdMaxFailure": "3",
            "pwdMinLength": "8",
            "pwdInHistory": "3",
            "pwdCheckQuality": "2",
            "pwdMustChange": "FALSE",
        },
    )
    assert ok, openldap.admin.result
    yield dn
    openldap.cleanup()  # the users that name it go first
    openldap.created.clear()
    openldap.admin.delete(dn)


def _binds_unrestricted(d: Directory, user: str, password: str) -> bool:
    """A bind with the password works and slapd does not restrict it to a password change."""
    c = Connection(d.server, d.dn(user), password.encode())
    try:
        ok = bool(c.bind(controls=[ppolicy_request()] if d.flavor == "openldap" else None))
        return ok and response_ppolicy(dict(c.result or {})).error is None
    finally:
        c.unbind()


def test_openldap_pwd_reset_without_pwd_must_change_is_not_must_change(openldap: Directory, lax_policy: str) -> None:
    user, pw = openldap.create_user(pwdPolicySubentry=lax_policy)
    openldap.set(user, pwdReset="TRUE")
    assert _binds_unrestricted(openldap, user, pw)  # slapd ignores the flag under this policy
    assert openldap.conn.run("account_status", {"user": user}, timeout=10)["must_change"] is False

    before = openldap.state_attrs(user)
    with pytest.raises(Rejected) as err:
        openldap.conn.run("reset_password", {"user": user, "new_password": new_password()}, timeout=30)
    assert err.value.reason == "must_change_not_enforced"
    assert "Nothing was changed" in str(err.value)
    assert openldap.state_attrs(user) == before
    assert openldap.bind_ok(user, pw)

    generated = {"user": user, "must_change": True}
    with pytest.raises(Rejected):
        openldap.conn.run("reset_password", generated, timeout=30)
    assert openldap.state_attrs(user) == before

    # asked for without must-change, the reset goes ahead and says so
    new = new_password()
    out = openldap.conn.run("reset_password", {"user": user, "new_password": new, "must_change": False}, timeout=30)
    assert out["must_change"] is False
    assert _binds_unrestricted(openldap, user, new)


def test_openldap_default_policy_still_must_change(openldap: Directory) -> None:
    """The lab's default policy has pwdMustChange TRUE: the reset marks the password and slapd enforces it."""
    user, _pw = openldap.create_user()
    new = new_password()
    assert openldap.conn.run("reset_password", {"user": user, "new_password": new}, timeout=30)["must_change"] is True
    assert openldap.conn.run("account_status", {"user": user}, timeout=10)["must_change"] is True
    assert not _binds_unrestricted(openldap, user, new)  # changeAfterReset


def test_ad_password_never_expires_is_not_must_change(ad: Directory) -> None:
    user, pw = ad.create_user(userAccountControl=str(0x200 | 0x10000))  # NORMAL_ACCOUNT | DONT_EXPIRE_PASSWD
    ok = ad.admin.modify(ad.dn(user), {"pwdLastSet": [(MODIFY_REPLACE, ["0"])]})
    assert ok, ad.admin.result
    assert _binds_unrestricted(ad, user, pw)  # the DC ignores pwdLastSet = 0 here
    assert ad.conn.run("account_status", {"user": user}, timeout=10)["must_change"] is False

    before = ad.state_attrs(user)
    with pytest.raises(Rejected) as err:
        ad.conn.run("reset_password", {"user": user, "new_password": new_password()}, timeout=30)
    assert err.value.reason == "must_change_not_enforced"
    assert ad.state_attrs(user) == before
    assert ad.bind_ok(user, pw)

    new = new_password()
    out = ad.conn.run("reset_password", {"user": user, "new_password": new, "must_change": False}, timeout=30)
    assert out["must_change"] is False
    assert ad.bind_ok(user, new)


def test_ad_ordinary_account_still_must_change(ad: Directory) -> None:
    user, _pw = ad.create_user()
    new = new_password()
    assert ad.conn.run("reset_password", {"user": user, "new_password": new}, timeout=30)["must_change"] is True
    assert ad.conn.run("account_status", {"user": user}, timeout=10)["must_change"] is True
    assert not ad.bind_ok(user, new)  # data 773: must change at next logon
