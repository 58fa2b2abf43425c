"""Account state from directory attributes: lock values, validity times, password expiry, failing closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.ldap_flavors import ActiveDirectory, OpenLdap, PwdPolicy, UnreadableValue

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LOCKING = PwdPolicy(lockout=True, lockout_duration=0)


def openldap(policy: PwdPolicy | None = LOCKING) -> OpenLdap:
    return OpenLdap(lambda _dn: policy)


def gt(when: datetime) -> bytes:
    return when.strftime("%Y%m%d%H%M%SZ").encode()


# ----------------------------------------------------------------------------- OpenLDAP locks


@pytest.mark.parametrize(
    "value",
    [
        b"00000101000000Z",
        b"000001010000Z",
        b"0000010100Z",
        b"00000101000000.5Z",
        b"00000101010000+0100",
        "000001010000Z",
    ],
)
@pytest.mark.parametrize(
    "policy", [LOCKING, PwdPolicy(lockout=True, lockout_duration=3600), PwdPolicy(lockout=False), None]
)
def test_admin_lock_is_disabled_under_every_policy(value: bytes | str, policy: PwdPolicy | None) -> None:
    s = openldap(policy).state({"pwdAccountLockedTime": [value]}, NOW)
    assert (s["locked"], s["lock_reason"], s["disabled"]) == (True, "admin", True)


@pytest.mark.parametrize(
    "value", [b"99991231235960Z", b"2020", b"", b"\xff", "٢٠٢٠0101000000Z", b"00000101000000+0100"]
)
def test_a_lock_value_that_cannot_be_understood_fails_closed(value: bytes | str) -> None:
    with pytest.raises(UnreadableValue) as err:
        openldap().state({"pwdAccountLockedTime": [value]}, NOW)
    assert err.value.attribute == "pwdAccountLockedTime"


def test_failure_locks_follow_the_policy() -> None:
    hourly = openldap(PwdPolicy(lockout=True, lockout_duration=3600))
    recent, old = gt(NOW - timedelta(minutes=30)), gt(NOW - timedelta(hours=2))
    assert hourly.state({"pwdAccountLockedTime": [recent]}, NOW)["lock_reason"] == "failures"
    assert hourly.state({"pwdAccountLockedTime": [old]}, NOW)["locked"] is False
    # hour precision with a fraction: slapd reads 11:00:00 (a fraction of a second, dropped), not
    # 11:30 (X.680): its hour of lock ends at 12:00:00 sharp
    half = b"2026010111.5Z"
    assert hourly.state({"pwdAccountLockedTime": [half]}, NOW - timedelta(seconds=1))["locked"] is True
    assert hourly.state({"pwdAccountLockedTime": [half]}, NOW)["locked"] is False
    assert openldap().state({"pwdAccountLockedTime": [old]}, NOW)["locked"] is True  # duration 0
    assert openldap(None).state({"pwdAccountLockedTime": [old]}, NOW)["locked"] is True  # unknown: conservative
    # slapd ignores the attribute under a policy without pwdLockout, and a lock time still to come
    assert openldap(PwdPolicy(lockout=False)).state({"pwdAccountLockedTime": [old]}, NOW)["locked"] is False
    assert openldap().state({"pwdAccountLockedTime": [gt(NOW + timedelta(days=1))]}, NOW)["locked"] is False


# Lock times as slapd 2.5.13 reads them (connectors.ldap_time.openldap_seconds): each value and
# whether the lab slapd let the right password bind under the default policy (pwdLockout TRUE,
# pwdLockoutDuration 0) on 2026-12-02. Firstline must say "locked" exactly where slapd refused.
SLAPD_BINDS = [
    ("20990101000000Z", True),  # by the calendar and by slapd still to come: not in effect
    ("21060205000000Z", True),
    ("21060206000000Z", True),
    ("21060207000000Z", False),  # slapd counts 2100 as a leap year: past 2^32 s, wrapped to 1970
    ("21060207062815Z", False),
    ("21060207062816Z", False),  # slapd's time 0: the administrator lock
    ("21370101000000Z", False),
    ("22000101000000Z", True),  # wrapped to 2063: still to come
    ("25000101000000Z", True),
    ("30000101000000Z", True),
    ("40000101000000Z", True),
    ("50000101000000Z", False),  # wrapped to 2005
    ("99990101000000Z", True),
    ("99991230000000Z", False),
    ("99991231235959Z", False),  # "locked for ever": 1970-02-20 to slapd
    ("19691231235959Z", True),  # before the epoch: 2106 to slapd, not in effect
    ("18000101000000Z", True),
    ("00010101000000Z", True),
    ("00000101000001Z", True),
    ("00000101000000Z", False),
]
NOW_2026_12 = datetime(2026, 12, 2, 6, tzinfo=UTC)


@pytest.mark.parametrize(("value", "binds"), SLAPD_BINDS)
def test_lock_times_are_read_as_slapd_reads_them(value: str, binds: bool) -> None:
    s = openldap().state({"pwdAccountLockedTime": [value.encode()]}, NOW_2026_12)
    assert s["locked"] is (not binds)


@pytest.mark.parametrize("value", ["99991231235959Z", "21370101000000Z", "50000101000000Z", "21060207000000Z"])
def test_a_lock_time_to_come_that_slapd_enforces_is_an_administrators_lock(value: str) -> None:
    """No failed sign-in writes a time still to come; slapd enforcing one (it wrapped into the
    past) is an administrator's lock for good: disabled, no first-level unlock."""
    for policy in (LOCKING, PwdPolicy(lockout=True, lockout_duration=3600), PwdPolicy(lockout=False), None):
        s = openldap(policy).state({"pwdAccountLockedTime": [value.encode()]}, NOW_2026_12)
        assert (s["locked"], s["lock_reason"], s["disabled"]) == (True, "admin", True)


@pytest.mark.parametrize(
    ("name", "value", "key", "expected"),
    [
        ("pwdEndTime", "99991231235959Z", "expired", True),  # "valid for ever" is 1970 to slapd: expired
        ("pwdEndTime", "25000101000000Z", "expired", False),
        ("pwdStartTime", "50000101000000Z", "disabled", False),  # 2005 to slapd: already active
        ("pwdStartTime", "25000101000000Z", "disabled", True),
    ],
)
def test_validity_times_are_read_as_slapd_reads_them(name: str, value: str, key: str, expected: bool) -> None:
    assert openldap().state({name: [value.encode()]}, NOW_2026_12)[key] is expected


# ----------------------------------------------------------------------------- OpenLDAP validity


@pytest.mark.parametrize(
    "value",
    [b"2020010100Z", b"202001010000Z", b"2020010100.5Z", b"2020010100+0100", b"20251231235959,9Z", b"2026010111Z"],
)
def test_an_end_time_in_the_past_in_any_precision_is_expired(value: bytes) -> None:
    assert openldap().state({"pwdEndTime": [value]}, NOW)["expired"] is True


@pytest.mark.parametrize("value", [b"2999010100Z", b"2026010113Z", b"2026010112-0100"])
def test_an_end_time_to_come_is_not_expired(value: bytes) -> None:
    assert openldap().state({"pwdEndTime": [value]}, NOW)["expired"] is False


def test_a_start_time_to_come_means_not_active_yet() -> None:
    s = openldap().state({"pwdStartTime": [b"2999010100Z"]}, NOW)
    assert (s["disabled"], s["locked"]) == (True, False)
    assert openldap().state({"pwdStartTime": [b"2020010100Z"]}, NOW)["disabled"] is False


@pytest.mark.parametrize("name", ["pwdEndTime", "pwdStartTime", "pwdChangedTime"])
@pytest.mark.parametrize("value", [b"2020010100", b"20200230000000Z", b"00000101000000Z", b"x"])
def test_unreadable_validity_times_fail_closed(name: str, value: bytes) -> None:
    with pytest.raises(UnreadableValue) as err:
        openldap(PwdPolicy(max_age=60)).state({name: [value]}, NOW)
    assert err.value.attribute == name


# ----------------------------------------------------------------------------- OpenLDAP password expiry


def test_password_expiry_from_changed_time_and_max_age() -> None:
    changed = {"pwdChangedTime": [b"2026010111Z"]}  # hour precision
    s = openldap(PwdPolicy(max_age=1800)).state(changed, NOW)
    assert (s["password_expired"], s["password_expires"], s["must_change"]) == (True, "2026-01-01T11:30:00Z", True)
    s = openldap(PwdPolicy(max_age=7200)).state(changed, NOW)
    assert (s["password_expired"], s["password_expires"], s["must_change"]) == (False, "2026-01-01T13:00:00Z", False)
    for policy in (PwdPolicy(max_age=0), PwdPolicy(), None):
        s = openldap(policy).state(changed, NOW)
        assert (s["password_expired"], s["password_expires"]) == (False, "")
    assert openldap(PwdPolicy(max_age=60)).state({}, NOW)["password_expires"] == ""  # no pwdChangedTime


def test_the_per_user_policy_is_asked_for() -> None:
    asked: list[str | None] = []

    def policy(dn: str | None) -> PwdPolicy:
        asked.append(dn)
        return PwdPolicy(max_age=60)

    OpenLdap(policy).state({"pwdPolicySubentry": ["cn=fast,ou=policies"], "pwdChangedTime": [b"2020010100Z"]}, NOW)
    OpenLdap(policy).state({}, NOW)
    assert asked == ["cn=fast,ou=policies", None]


def test_grace_binds_left() -> None:
    attrs: dict[str, Any] = {"pwdChangedTime": [b"2026010111Z"]}
    grace = openldap(PwdPolicy(max_age=60, grace_limit=2))
    assert grace.grace_left(attrs, NOW) == 2
    assert grace.grace_left({**attrs, "pwdGraceUseTime": [b"2026010111.9Z"]}, NOW) == 1
    assert grace.grace_left({**attrs, "pwdGraceUseTime": [b"2026010111Z", b"20260101115000Z"]}, NOW) == 0
    assert openldap(PwdPolicy(max_age=60, grace_limit=0)).grace_left(attrs, NOW) == 0
    assert openldap(PwdPolicy(max_age=60, grace_limit=2, grace_expiry=60)).grace_left(attrs, NOW) == 0
    with pytest.raises(UnreadableValue):
        grace.grace_left({**attrs, "pwdGraceUseTime": [b"bad"]}, NOW)


# ----------------------------------------------------------------------------- Active Directory

AD_OK = {
    "userAccountControl": ["512"],
    "msDS-User-Account-Control-Computed": ["0"],
    "pwdLastSet": [b"134000000000000000"],
    "accountExpires": [b"9223372036854775807"],
    "lockoutTime": [b"0"],
    "msDS-UserPasswordExpiryTimeComputed": [b"134432352000000000"],  # 2027-01-01
}


def ad(**changes: Any) -> dict[str, Any]:
    attrs = dict(AD_OK)
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = [value]
    return ActiveDirectory(hints_critical=True).state(attrs, NOW)


def test_ad_healthy_account() -> None:
    s = ad()
    assert not any(s[k] for k in ("locked", "disabled", "expired", "must_change", "password_expired"))
    assert s["password_expires"] == "2027-01-01T00:00:00Z"


@pytest.mark.parametrize("value", [b"0", b"9223372036854775807", None])
def test_ad_account_expires_sentinels_mean_never(value: bytes | None) -> None:
    assert ad(accountExpires=value)["expired"] is False


def test_ad_account_expiry() -> None:
    assert ad(accountExpires=b"132223104000000000")["expired"] is True  # 2020-01-01
    assert ad(accountExpires=b"139000000000000000")["expired"] is False  # 2041


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("accountExpires", b"-5"),
        ("accountExpires", b"soon"),
        ("accountExpires", b"9223372036854775808"),
        ("lockoutTime", b"-1"),
        ("lockoutTime", b"x"),
        ("pwdLastSet", b"1.5"),
        ("msDS-UserPasswordExpiryTimeComputed", b"-7"),
        ("userAccountControl", b"512x"),
        ("userAccountControl", None),  # unreadable by the service account: fail closed
        ("msDS-User-Account-Control-Computed", None),
    ],
)
def test_ad_unreadable_values_fail_closed(attribute: str, value: bytes | None) -> None:
    attrs = dict(AD_OK)
    if value is None:
        attrs.pop(attribute)
    else:
        attrs[attribute] = [value]
    with pytest.raises(UnreadableValue) as err:
        ActiveDirectory(hints_critical=True).state(attrs, NOW)
    assert err.value.attribute == attribute


def test_ad_lock_disable_and_password_states() -> None:
    s = ad(msDS_User_Account_Control_Computed="16", lockoutTime=b"134000000000000000")
    assert (s["locked"], s["lock_reason"]) == (True, "failures")
    assert ad(lockoutTime=b"134000000000000000")["locked"] is False  # lockout duration passed (DC decides)
    assert ad(userAccountControl="514")["disabled"] is True
    s = ad(pwdLastSet=b"0", msDS_User_Account_Control_Computed="8388608", msDS_UserPasswordExpiryTimeComputed=b"0")
    assert (s["must_change"], s["password_expired"], s["password_expires"]) == (True, False, "")  # data 773
    s = ad(msDS_User_Account_Control_Computed="8388608", msDS_UserPasswordExpiryTimeComputed=b"132259392000000000")
    assert (s["must_change"], s["password_expired"], s["password_expires"]) == (True, True, "2020-02-12T00:00:00Z")
    assert ad(msDS_UserPasswordExpiryTimeComputed=b"9223372036854775807")["password_expires"] == ""
    # "password never expires" (UF_DONT_EXPIRE_PASSWD): the DC ignores pwdLastSet = 0
    assert ad(pwdLastSet=b"0", userAccountControl="66048")["must_change"] is False
    assert ad(pwdLastSet=b"0", userAccountControl="512")["must_change"] is True


def test_password_expiry_boundary_is_slapds() -> None:
    """slapd: expired once whole seconds since pwdChangedTime exceed pwdMaxAge (``now - pwtime > max``)."""
    policy = PwdPolicy(max_age=3)
    changed = {"pwdChangedTime": [b"20260101115957Z"]}  # NOW - 3 s
    assert openldap(policy).state(changed, NOW)["password_expired"] is False
    assert openldap(policy).state(changed, NOW + timedelta(microseconds=999_999))["password_expired"] is False
    assert openldap(policy).state(changed, NOW + timedelta(seconds=1))["password_expired"] is True
    assert openldap(policy).state(changed, NOW)["password_expires"] == "2026-01-01T12:00:00Z"


def test_change_is_blocked_only_without_grace_or_reset() -> None:
    old = {"pwdChangedTime": [b"2020010100Z"]}
    assert openldap(PwdPolicy(max_age=60)).change_blocked_by_expiry(old, NOW) is True
    assert openldap(PwdPolicy(max_age=60, grace_limit=1)).change_blocked_by_expiry(old, NOW) is False
    used = {**old, "pwdGraceUseTime": [b"2020010101Z"]}
    assert openldap(PwdPolicy(max_age=60, grace_limit=1)).change_blocked_by_expiry(used, NOW) is True
    reset = {**old, "pwdReset": ["TRUE"]}  # slapd skips the expiry check for a reset password
    assert openldap(PwdPolicy(max_age=60, must_change=True)).change_blocked_by_expiry(reset, NOW) is False
    assert openldap(PwdPolicy(max_age=60, must_change=False)).change_blocked_by_expiry(reset, NOW) is True
    assert openldap(PwdPolicy(max_age=60)).change_blocked_by_expiry({"pwdChangedTime": [gt(NOW)]}, NOW) is False


def test_openldap_temporary_lockout_is_a_lock_while_it_runs() -> None:
    """pwdAccountTmpLockoutEnd (pwdMinDelay): slapd refuses every bind until then, under pwdLockout."""
    soon = {"pwdAccountTmpLockoutEnd": [gt(NOW + timedelta(minutes=5))]}
    s = openldap().state(soon, NOW)
    assert (s["locked"], s["lock_reason"], s["disabled"]) == (True, "temporary", False)
    assert openldap(None).state(soon, NOW)["locked"] is True  # policy unknown: conservative
    assert openldap(PwdPolicy(lockout=False)).state(soon, NOW)["locked"] is False  # slapd ignores it
    assert openldap().state({"pwdAccountTmpLockoutEnd": [gt(NOW)]}, NOW)["locked"] is False  # ended
    assert openldap().temporary_lock_end(soon, NOW) == NOW + timedelta(minutes=5)
    admin = {**soon, "pwdAccountLockedTime": [b"000001010000Z"]}
    assert openldap().state(admin, NOW)["lock_reason"] == "admin"  # the administrator's lock wins
    with pytest.raises(UnreadableValue) as err:
        openldap().state({"pwdAccountTmpLockoutEnd": [b"soon"]}, NOW)
    assert err.value.attribute == "pwdAccountTmpLockoutEnd"
