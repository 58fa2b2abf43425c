"""Directory refusals carry their real reason and the directory's own figure (issue 7, item 6).

The lab gets a second shape per test, made by the administrator: an OpenLDAP ppolicy with
``pwdMinLength`` 20 / ``pwdMaxLength`` 40 / ``pwdMinAge`` (longer and shorter than
Firstline's own rules), and an AD fine-grained password policy (PSO) with a 12-character
minimum — the issue's case, where Firstline's own minimum after MFA is 8 and the message
used to say 15.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from ldap3 import MODIFY_ADD

from connectors.base import Rejected
from tests.integration.directory.helpers import Directory, connector

MFA8 = {"min_length": 15, "min_length_with_mfa": 8, "blocklist": False, "check_personal_info": False}


@pytest.fixture
def long_policy(openldap: Directory) -> Iterator[str]:
    dn = f"cn=long-{secrets.token_hex(3)},ou=policies,dc=example,dc=org"
    ok = openldap.admin.add(
        dn,
        attributes={
            "objectClass": ["top", "device", "pwdPolicy"],
            "pwdAttribute": "userPassword",
            "pwdMinLength": "20",
            "pwdMaxLength": "40",
            "pwdCheckQuality": "2",
            "pwdInHistory": "3",
            "pwdMinAge": "0",
            "pwdAllowUserChange": "TRUE",
            "pwdMustChange": "TRUE",  # a must-change reset is refused where slapd would not enforce it
        },
    )
    assert ok, openldap.admin.result
    yield dn
    openldap.admin.delete(dn)


@pytest.fixture
def young_policy(openldap: Directory) -> Iterator[str]:
    dn = f"cn=young-{secrets.token_hex(3)},ou=policies,dc=example,dc=org"
    attrs = {"objectClass": ["top", "device", "pwdPolicy"], "pwdAttribute": "userPassword", "pwdMinAge": "3600"}
    assert openldap.admin.add(dn, attributes=attrs), openldap.admin.result
    yield dn
    openldap.admin.delete(dn)


@pytest.fixture
def pso12(ad: Directory) -> Iterator[str]:
    dn = f"CN=pso-{secrets.token_hex(3)},CN=Password Settings Container,CN=System,DC=example,DC=test"
    ok = ad.admin.add(
        dn,
        attributes={
            "objectClass": ["msDS-PasswordSettings"],
            "msDS-PasswordSettingsPrecedence": "10",
            "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
            "msDS-PasswordHistoryLength": "3",
            "msDS-PasswordComplexityEnabled": "TRUE",
            "msDS-MinimumPasswordLength": "12",
            "msDS-MinimumPasswordAge": "0",
            "msDS-MaximumPasswordAge": "-36288000000000",
            "msDS-LockoutThreshold": "3",
            "msDS-LockoutObservationWindow": "-18000000000",
            "msDS-LockoutDuration": "-18000000000",
        },
    )
    assert ok, ad.admin.result
    yield dn
    ad.admin.delete(dn)


def test_openldap_too_short_is_too_short_with_the_directorys_minimum(openldap: Directory, long_policy: str) -> None:
    """slapd says "fails quality checking" for every rule; the control says passwordTooShort (6)."""
    user, pw = openldap.create_user(pwdPolicySubentry=long_policy)
    before = openldap.state_attrs(user)
    conn = connector("corp", password_policy=MFA8)
    try:
        for candidate, mfa in (("Zq-abcdefgh 12345", False), ("Zq-9 abc", True)):  # 17 and 8: ours pass
            with pytest.raises(Rejected) as err:
                conn.run("reset_password", {"user": user, "new_password": candidate, "mfa_verified": mfa}, timeout=30)
            assert err.value.reason == "too_short", str(err.value)
            assert "20" in str(err.value) and "15" not in str(err.value) and " 8 " not in str(err.value)
            assert err.value.requester_action is True
    finally:
        conn.close()
    assert openldap.state_attrs(user) == before and openldap.bind_ok(user, pw)


def test_openldap_too_long_is_too_long_with_the_directorys_maximum(openldap: Directory, long_policy: str) -> None:
    user, pw = openldap.create_user(pwdPolicySubentry=long_policy)
    conn = connector("corp")
    try:
        with pytest.raises(Rejected) as err:
            conn.run("reset_password", {"user": user, "new_password": "Zq-" + "long words " * 5}, timeout=30)
        assert err.value.reason == "too_long" and "40" in str(err.value) and "128" not in str(err.value)
    finally:
        conn.close()
    assert openldap.bind_ok(user, pw)


def test_openldap_self_change_too_short_keeps_its_reason(openldap: Directory, long_policy: str) -> None:
    """As the user (bind + exop with old and new): passwordTooShort (6) with the policy's 20."""
    user, pw = openldap.create_user(pwdPolicySubentry=long_policy)
    conn = connector("corp", password_policy=MFA8)
    try:
        with pytest.raises(Rejected) as err:
            conn.run(
                "change_password",
                {"user": user, "old_password": pw, "new_password": "Zq-abcdefgh 12345"},
                timeout=30,
            )
        assert err.value.reason == "too_short" and "20" in str(err.value) and "15" not in str(err.value)
    finally:
        conn.close()
    assert openldap.bind_ok(user, pw)


def test_openldap_too_young_is_too_young(openldap: Directory, young_policy: str) -> None:
    """passwordTooYoung (7): the password was set moments ago and pwdMinAge is an hour."""
    user, pw = openldap.create_user(pwdPolicySubentry=young_policy)
    conn = connector("corp")
    try:
        with pytest.raises(Rejected) as err:
            conn.run(
                "change_password",
                {"user": user, "old_password": pw, "new_password": f"Zq-{secrets.token_hex(12)}"},
                timeout=30,
            )
        assert err.value.reason == "too_young" and err.value.requester_action is True, str(err.value)
    finally:
        conn.close()
    assert openldap.bind_ok(user, pw)


def test_openldap_reset_refused_as_too_young_is_escalated(openldap: Directory, young_policy: str) -> None:
    """slapd applies pwdMinAge to the service account's reset too. The person who forgot the
    password (or the agent) cannot fix that by trying again: escalated, not "you can fix this
    yourself" (found by a tester: a one-day minimum age is a common company policy)."""
    user, pw = openldap.create_user(pwdPolicySubentry=young_policy)
    before = openldap.state_attrs(user)
    conn = connector("corp")
    try:
        for inputs in ({"must_change": False}, {"must_change": False, "new_password": f"Zq-{secrets.token_hex(12)}"}):
            with pytest.raises(Rejected) as err:
                conn.run("reset_password", {"user": user, **inputs}, timeout=30)
            assert err.value.reason == "too_young" and err.value.requester_action is False, str(err.value)
            assert "service desk" in str(err.value)
    finally:
        conn.close()
    assert openldap.state_attrs(user) == before and openldap.bind_ok(user, pw)


@pytest.fixture
def no_self_change_policy(openldap: Directory) -> Iterator[str]:
    dn = f"cn=nochange-{secrets.token_hex(3)},ou=policies,dc=example,dc=org"
    attrs = {
        "objectClass": ["top", "device", "pwdPolicy"],
        "pwdAttribute": "userPassword",
        "pwdMustChange": "TRUE",
        "pwdAllowUserChange": "FALSE",
    }
    assert openldap.admin.add(dn, attributes=attrs), openldap.admin.result
    yield dn
    openldap.admin.delete(dn)


def test_openldap_must_change_reset_the_account_could_never_change_is_refused(
    openldap: Directory, no_self_change_policy: str
) -> None:
    """pwdMustChange TRUE with pwdAllowUserChange FALSE: slapd lets the reset password bind only
    to change it, then refuses the change. The reset said "must be changed at the next sign-in"
    and left an account nobody could use; it is refused before anything is written."""
    user, pw = openldap.create_user(pwdPolicySubentry=no_self_change_policy)
    before = openldap.state_attrs(user)
    conn = connector("corp")
    try:
        with pytest.raises(Rejected) as err:
            conn.run("reset_password", {"user": user, "must_change": True}, timeout=30)
        assert err.value.reason == "must_change_impossible" and not err.value.requester_action, str(err.value)
        # without must-change the reset is an ordinary one (the new password works as it is)
        new = f"Zq-{secrets.token_hex(12)}"
        conn.run("reset_password", {"user": user, "must_change": False, "new_password": new}, timeout=30)
    finally:
        conn.close()
    assert openldap.bind_ok(user, new) and not openldap.bind_ok(user, pw)
    assert before["pwdReset"] == openldap.state_attrs(user).get("pwdReset")


def test_ad_directory_minimum_is_shown_not_ours(ad: Directory, pso12: str) -> None:
    """The issue's case: AD's own 12-character minimum; our minimum after MFA is 8, default 15."""
    user, pw = ad.create_user()
    assert ad.admin.modify(pso12, {"msDS-PSOAppliesTo": [(MODIFY_ADD, [ad.dn(user)])]}), ad.admin.result
    before = ad.state_attrs(user)
    conn = connector("ad", password_policy=MFA8)
    try:
        with pytest.raises(Rejected) as err:
            conn.run("reset_password", {"user": user, "new_password": "Zq-9 abcd", "mfa_verified": True}, timeout=30)
        assert err.value.reason == "too_short"
        assert "12" in str(err.value) and "15" not in str(err.value)
        assert "0000052D" not in str(err.value) and "check_password_restrictions" not in str(err.value)
        with pytest.raises(Rejected) as err:
            conn.run(
                "change_password",
                {"user": user, "old_password": pw, "new_password": "Zq-9 abcd", "mfa_verified": True},
                timeout=30,
            )
        assert err.value.reason == "too_short" and "12" in str(err.value)
    finally:
        conn.close()
    assert ad.state_attrs(user) == before and ad.bind_ok(user, pw)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        # Windows DCs name no rule, only the extended error
        (
            "0000052D: AtrErr: DSID-03191083, #1:\n\t0: 0000052D: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), "
            "data 0, Att 9005a (unicodePwd)\n",
            "quality",
        ),
        (
            "00000056: AtrErr: DSID-03190F80, #1:\n\t0: 00000056: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), "
            "data 0, Att 9005a (unicodePwd)\n",
            "wrong_password",
        ),
    ],
)
def test_ad_windows_refusals_read_the_domain_figure(ad: Directory, message: str, reason: str) -> None:
    """No figure in the message: the connector reads the domain's minPwdLength (8 in the lab) itself."""
    user, _ = ad.create_user()
    conn = connector("ad")
    try:
        conn._service(10)
        err = conn._directory_refusal({"result": 19, "message": message}, ad.dn(user))
    finally:
        conn.close()
    assert err.reason == reason and err.requester_action is True
    if reason == "quality":
        assert "at least 8 characters" in str(err) and "15" not in str(err)


def test_ad_unreadable_pso_gives_no_figure_rather_than_the_domains(ad: Directory, pso12: str) -> None:
    """A PSO applies but the service account may not read it: say "too short", not the domain's 8."""
    user, _ = ad.create_user()
    assert ad.admin.modify(pso12, {"msDS-PSOAppliesTo": [(MODIFY_ADD, [ad.dn(user)])]}), ad.admin.result
    conn = connector("ad")
    try:
        conn._service(10)
        err = conn._directory_refusal({"result": 19, "message": "0000052D: SvcErr: too short"}, ad.dn(user))
    finally:
        conn.close()
    assert err.reason == "too_short" and not any(ch.isdigit() for ch in str(err))


def test_ad_reset_of_a_smartcard_account_is_refused(ad: Directory) -> None:
    """An account that must sign in with a smart card (UF_SMARTCARD_REQUIRED) was reset like any
    other and the agent handed out a temporary password that could not let the person in (a
    tester's find on the lab Samba DC). Refused before anything is written, escalated."""
    user, _pw = ad.create_user()
    ad.set(user, userAccountControl=str(0x200 | 0x40000))
    before = ad.state_attrs(user)
    conn = connector("ad")
    try:
        with pytest.raises(Rejected) as err:
            conn.run("reset_password", {"user": user, "must_change": True}, timeout=30)
        assert err.value.reason == "smartcard_required" and not err.value.requester_action, str(err.value)
        assert conn.run("account_status", {"user": user}, timeout=30)["exists"] is True  # a read still works
    finally:
        conn.close()
    assert ad.state_attrs(user) == before
