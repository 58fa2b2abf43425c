"""Flavour-specific behaviour: ppolicy details on OpenLDAP, AD controls and rights on Samba."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from ldap3 import MODIFY_ADD, MODIFY_REPLACE, Connection

from connectors.base import Rejected
from connectors.ldap_controls import ppolicy_request, response_ppolicy
from tests.integration.directory.helpers import Directory, connector, new_password

pytestmark = pytest.mark.integration


# ----------------------------------------------------------------------------- OpenLDAP


def test_reset_stores_the_password_hashed(openldap: Directory) -> None:
    user, _ = openldap.create_user()
    pw = new_password()
    openldap.conn.run("reset_password", {"user": user, "new_password": pw}, timeout=30)
    stored = openldap.read(user, "userPassword")["userPassword"][0]
    stored = stored if isinstance(stored, bytes) else stored.encode()
    assert stored.startswith(b"{SSHA}") and pw.encode() not in stored


def test_slapd_itself_refuses_short_and_reused_passwords_from_the_service_account(openldap: Directory) -> None:
    """The service account has write, not manage: ppolicy applies to its resets (security 29)."""
    user, current = openldap.create_user()
    svc = openldap.conn._service(10)
    dn = openldap.dn(user)
    assert svc.extend.standard.modify_password(user=dn, new_password="short", controls=[ppolicy_request()]) is not True
    assert response_ppolicy(svc.result).error == "too_short"
    assert svc.extend.standard.modify_password(user=dn, new_password=current, controls=[ppolicy_request()]) is not True
    assert "existing value" in svc.result["message"]


def test_history_applies_to_resets(openldap: Directory) -> None:
    user, first = openldap.create_user()
    second = new_password()
    openldap.conn.run("change_password", {"user": user, "old_password": first, "new_password": second}, timeout=30)
    with pytest.raises(Rejected) as err:
        openldap.conn.run("reset_password", {"user": user, "new_password": first}, timeout=30)
    assert err.value.reason == "in_history"


def test_reset_to_the_current_password_is_refused(openldap: Directory) -> None:
    user, current = openldap.create_user()
    with pytest.raises(Rejected) as err:
        openldap.conn.run("reset_password", {"user": user, "new_password": current}, timeout=30)
    assert err.value.reason == "same_as_current"


def test_service_account_cannot_touch_membership_or_other_attributes(openldap: Directory) -> None:
    svc = openldap.conn._service(10)
    user, _ = openldap.create_user()
    group = "cn=it-admins,ou=groups,dc=example,dc=org"
    assert svc.modify(group, {"member": [(MODIFY_ADD, [openldap.dn(user)])]}) is False
    assert svc.result["description"] == "insufficientAccessRights"
    for attr, value in (("mail", "x@evil.example"), ("sn", "Changed"), ("pwdPolicySubentry", "cn=x")):
        assert svc.modify(openldap.dn(user), {attr: [(MODIFY_REPLACE, [value])]}) is False
    assert (
        svc.extend.standard.modify_password(user="uid=eve,ou=external,dc=example,dc=org", new_password=new_password())
        is not True
    )


def test_admin_lock_is_disabled_not_unlockable(openldap: Directory) -> None:
    user, _ = openldap.create_user(pwdAccountLockedTime="000001010000Z")
    out = openldap.conn.run("account_status", {"user": user}, timeout=10)
    assert (out["locked"], out["lock_reason"], out["disabled"]) == (True, "admin", True)
    with pytest.raises(Rejected) as err:
        openldap.conn.run("unlock_account", {"user": user}, timeout=10)
    assert err.value.reason == "disabled"
    assert openldap.read(user, "pwdAccountLockedTime")["pwdAccountLockedTime"]


def test_a_policy_with_a_lockout_duration_expires_the_lock(openldap: Directory) -> None:
    """FGPP-like per-user policy (pwdPolicySubentry) with a 1-hour lockout duration (security 32)."""
    policy = "cn=short-lockout,ou=policies,dc=example,dc=org"
    old = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y%m%d%H%M%SZ")
    recent = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y%m%d%H%M%SZ")
    expired_lock, _ = openldap.create_user(pwdPolicySubentry=policy, pwdAccountLockedTime=old)
    live_lock, _ = openldap.create_user(pwdPolicySubentry=policy, pwdAccountLockedTime=recent)
    default_lock, _ = openldap.create_user(pwdAccountLockedTime=old)  # default policy: duration 0
    status = lambda u: openldap.conn.run("account_status", {"user": u}, timeout=10)["locked"]  # noqa: E731
    assert (status(expired_lock), status(live_lock), status(default_lock)) == (False, True, True)


def test_the_ppolicy_control_is_decoded_on_a_locked_bind(openldap: Directory) -> None:
    user, pw = openldap.create_user()
    openldap.lock(user)
    c = Connection(openldap.server, openldap.dn(user), pw)
    assert c.bind(controls=[ppolicy_request()]) is False
    # olcPPolicyUseLockout FALSE: the server does not reveal the lock to the binder
    assert response_ppolicy(c.result).error is None
    c.unbind()


def test_must_change_shows_in_the_bind_control(openldap: Directory) -> None:
    user, _ = openldap.create_user()
    temp = openldap.conn.run("reset_password", {"user": user}, timeout=30)["temporary_password"]
    c = Connection(openldap.server, openldap.dn(user), temp)
    assert c.bind(controls=[ppolicy_request()]) is True
    assert response_ppolicy(c.result).error == "change_after_reset"
    c.unbind()


# ----------------------------------------------------------------------------- Active Directory


def test_ad_service_account_has_only_delegated_rights(ad: Directory) -> None:
    svc = ad.conn._service(10)
    user, _ = ad.create_user()
    dn = ad.dn(user)
    assert svc.modify("CN=Domain Admins,CN=Users,DC=example,DC=test", {"member": [(MODIFY_ADD, [dn])]}) is False
    assert svc.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, ["514"])]}) is False
    assert svc.modify(dn, {"mail": [(MODIFY_REPLACE, ["x@evil.example"])]}) is False
    eve = "CN=Eve External,CN=Users,DC=example,DC=test"  # outside OU=People: no reset right there
    assert svc.modify(eve, {"unicodePwd": [(MODIFY_REPLACE, [f'"{new_password()}"'.encode("utf-16-le")])]}) is False


def test_ad_complexity_refusal_is_mapped(ad: Directory) -> None:
    user, _ = ad.create_user()
    with pytest.raises(Rejected) as err:
        ad.conn.run("reset_password", {"user": user, "new_password": "all lower case words here"}, timeout=30)
    assert err.value.reason == "complexity"
    assert "0000052D" not in str(err.value) and "check_password_restrictions" not in str(err.value)


def test_ad_directory_minimum_length_is_mapped(ad: Directory) -> None:
    """Our own minimum is 8 with MFA; the DC's own rule is checked too (here 8 as well)."""
    user, _ = ad.create_user()
    conn = connector("ad", password_policy={"min_length": 8, "min_length_with_mfa": 8, "blocklist": False})
    with pytest.raises(Rejected) as err:
        ad.conn._flavor  # noqa: B018 - same flavour, fresh connector below
        conn._service(10)
        failure = conn._flavor.reset(conn._service(10), ad.dn(user), "Ab1!", True)
        raise conn._directory_refusal(failure)
    assert err.value.reason == "too_short"
    conn.close()


def test_ad_policy_hints_critical_on_a_dc_without_support_changes_nothing(ad: Directory) -> None:
    """Samba 4.17 lacks 1.2.840.113556.1.4.2239: with policy_hints critical the reset is refused."""
    user, old = ad.create_user()
    before = ad.state_attrs(user)
    conn = connector("ad", policy_hints="critical")
    with pytest.raises(Rejected) as err:
        conn.run("reset_password", {"user": user, "new_password": new_password()}, timeout=30)
    assert err.value.reason == "policy_hints_unsupported"
    assert ad.state_attrs(user) == before and ad.bind_ok(user, old)
    conn.close()


def test_ad_must_change_user_can_still_change_password(ad: Directory) -> None:
    """pwdLastSet=0 blocks the user's own bind (data 773); the change op still works."""
    user, _ = ad.create_user()
    temp = ad.conn.run("reset_password", {"user": user}, timeout=30)["temporary_password"]
    assert not ad.bind_ok(user, temp)
    new = new_password()
    ad.conn.run("change_password", {"user": user, "old_password": temp, "new_password": new}, timeout=30)
    assert ad.bind_ok(user, new)


def test_ad_nested_admin_group_membership_is_privileged(ad: Directory) -> None:
    group = f"CN=g{secrets.token_hex(4)},OU=People,DC=example,DC=test"
    assert ad.admin.add(group, attributes={"objectClass": ["top", "group"]}), ad.admin.result
    try:
        user, _ = ad.create_user()
        ad.admin.modify(group, {"member": [(MODIFY_ADD, [ad.dn(user)])]})
        ad.admin.modify("CN=Domain Admins,CN=Users,DC=example,DC=test", {"member": [(MODIFY_ADD, [group])]})
        assert ad.conn.run("account_status", {"user": user}, timeout=10)["privileged"] is True
        with pytest.raises(Rejected) as err:
            ad.conn.run("reset_password", {"user": user}, timeout=30)
        assert err.value.reason == "not_allowed"
    finally:
        ad.admin.delete(group)
