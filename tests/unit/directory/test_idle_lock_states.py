"""slapd's idle lockout (``pwdMaxIdle``) read as slapd 2.5's ``account_locked`` reads it:
under ``pwdLockout``, locked once now is past ``pwdLastSuccess`` (else ``pwdChangedTime``)
+ ``pwdMaxIdle``, to the second; never without those values or with an unknown policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.ldap_flavors import OpenLdap, PwdPolicy, UnreadableValue

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
IDLE = PwdPolicy(lockout=True, lockout_duration=0, max_idle=3600)


def openldap(policy: PwdPolicy | None = IDLE) -> OpenLdap:
    return OpenLdap(lambda _dn: policy)


def gt(when: datetime) -> bytes:
    return when.strftime("%Y%m%d%H%M%SZ").encode()


def lock(attrs: dict[str, list[bytes]], policy: PwdPolicy | None = IDLE) -> tuple[bool, str, bool]:
    s = openldap(policy).state(attrs, NOW)
    return s["locked"], s["lock_reason"], s["disabled"]


def test_idle_past_the_limit_is_locked_idle() -> None:
    assert lock({"pwdLastSuccess": [gt(NOW - timedelta(seconds=3601))]}) == (True, "idle", False)
    assert openldap().idle_lock_since({"pwdLastSuccess": [gt(NOW - timedelta(hours=2))]}, NOW) == NOW - timedelta(
        hours=1
    )


def test_the_boundary_second_is_not_yet_idle() -> None:  # slapd: now > last + pwdMaxIdle
    assert lock({"pwdLastSuccess": [gt(NOW - timedelta(seconds=3600))]}) == (False, "", False)


def test_without_a_last_bind_the_password_change_counts() -> None:
    old = {"pwdChangedTime": [gt(NOW - timedelta(days=2))]}
    assert lock(old) == (True, "idle", False)
    # a recent sign-in wins over an old change
    assert lock({**old, "pwdLastSuccess": [gt(NOW - timedelta(minutes=5))]}) == (False, "", False)
    assert lock({}) == (False, "", False)  # neither: slapd has nothing to count from


@pytest.mark.parametrize(
    "policy",
    [PwdPolicy(lockout=False, max_idle=3600), PwdPolicy(lockout=True), PwdPolicy(lockout=True, max_idle=0), None],
)
def test_no_idle_lock_without_lockout_a_limit_or_a_known_policy(policy: PwdPolicy | None) -> None:
    assert lock({"pwdLastSuccess": [gt(NOW - timedelta(days=30))]}, policy) == (False, "", False)


def test_temporary_and_admin_locks_still_win() -> None:
    idle = {"pwdLastSuccess": [gt(NOW - timedelta(days=30))]}
    assert lock({**idle, "pwdAccountLockedTime": [b"000001010000Z"]}) == (True, "admin", True)
    assert lock({**idle, "pwdAccountTmpLockoutEnd": [gt(NOW + timedelta(minutes=5))]})[1] == "temporary"


def test_an_unreadable_last_bind_fails_closed() -> None:
    with pytest.raises(UnreadableValue):
        openldap().state({"pwdLastSuccess": [b"yesterday"]}, NOW)
