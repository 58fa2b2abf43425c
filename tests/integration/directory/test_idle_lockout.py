"""slapd's idle lockout (ppolicy ``pwdMaxIdle`` with ``olcLastBind``) is a lock, reported as such.

After ``pwdMaxIdle`` seconds without a successful bind slapd 2.5 refuses the right password,
although the entry has no ``pwdAccountLockedTime``. The connector did not read it:
``account_status`` said not locked and the unlock runbook closed "was not locked; nothing was
changed". Now it is ``locked`` with ``lock_reason`` ``idle``; an unlock is refused before any
write (``locked_idle``: ``pwdLastSuccess`` is NO-USER-MODIFICATION, no unlock can lift it) and
a password reset, which does lift it (slapd drops ``pwdLastSuccess``), goes through and the new
password binds. Under a policy without ``pwdLockout`` slapd does not lock idle accounts, nor
does the connector.

The lab slapd does not keep the last bind, and must not be reconfigured or restarted by a
test, so this runs against a private slapd 2.5 started here (tests/.../private_slapd.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from ldap3 import MODIFY_REPLACE

from connectors.base import Rejected
from connectors.ldap import LdapConnector
from tests.integration.directory.helpers import new_password
from tests.integration.directory.private_slapd import SVCDN, PrivateSlapd, private_slapd

pytestmark = pytest.mark.integration
IDLE = 3  # seconds of pwdMaxIdle in the private slapd's default policy
NO_LOCKOUT = "cn=no-lockout,ou=policies,dc=example,dc=org"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateSlapd]:
    with private_slapd(
        tmp_path_factory.mktemp("slapd-idle"), database="olcLastBind: TRUE", policy=f"pwdMaxIdle: {IDLE}"
    ) as s:
        admin, _server = s.admin()
        ok = admin.add(
            NO_LOCKOUT,
            attributes={
                "objectClass": ["top", "device", "pwdPolicy"],
                "cn": "no-lockout",
                "pwdAttribute": "userPassword",
                "pwdLockout": "FALSE",
                "pwdMaxIdle": str(IDLE),
                "pwdMustChange": "TRUE",
            },
        )
        assert ok, admin.result
        # the service account binds too: under the default policy it would go idle itself
        ok = admin.modify(SVCDN, {"pwdPolicySubentry": [(MODIFY_REPLACE, [NO_LOCKOUT])]})
        assert ok, admin.result
        admin.unbind()
        yield s


@pytest.fixture
def conn(slapd: PrivateSlapd) -> Iterator[LdapConnector]:
    c = slapd.connector()
    yield c
    c.close()


def _user(slapd: PrivateSlapd, name: str, **extra: str) -> tuple[str, str]:
    return name, slapd.add_user(name, "Idle", **extra)


def _state(slapd: PrivateSlapd, name: str) -> dict[str, object]:
    return {k: v for k, v in slapd.entry(name).items() if k.startswith("pwd") or k == "userPassword"}


def test_an_idle_lockout_is_locked_unlock_refuses_and_a_reset_lifts_it(
    slapd: PrivateSlapd, conn: LdapConnector
) -> None:
    name, pw = _user(slapd, "idle-a")
    assert slapd.binds(name, pw)  # sets pwdLastSuccess
    status = conn.run("account_status", {"user": name}, timeout=10)
    assert (status["locked"], status["lock_reason"]) == (False, "")

    time.sleep(IDLE + 1.5)
    assert not slapd.binds(name, pw)  # slapd refuses the right password
    assert "pwdAccountLockedTime" not in _state(slapd, name)
    status = conn.run("account_status", {"user": name}, timeout=10)
    assert (status["locked"], status["lock_reason"], status["disabled"]) == (True, "idle", False)

    before = _state(slapd, name)
    with pytest.raises(Rejected) as err:
        conn.run("unlock_account", {"user": name}, timeout=10)
    assert err.value.reason == "locked_idle"
    assert "nothing was changed" in str(err.value) and "password reset" in str(err.value)
    assert _state(slapd, name) == before
    assert not slapd.binds(name, pw)

    fresh = new_password()
    conn.run("reset_password", {"user": name, "new_password": fresh, "must_change": False}, timeout=10)
    assert slapd.binds(name, fresh)
    status = conn.run("account_status", {"user": name}, timeout=10)
    assert (status["locked"], status["lock_reason"]) == (False, "")


def test_no_idle_lock_under_a_policy_without_lockout(slapd: PrivateSlapd, conn: LdapConnector) -> None:
    name, pw = _user(slapd, "idle-b", pwdPolicySubentry=NO_LOCKOUT)
    assert slapd.binds(name, pw)
    time.sleep(IDLE + 1.5)
    status = conn.run("account_status", {"user": name}, timeout=10)
    assert (status["locked"], status["lock_reason"]) == (False, "")
    assert slapd.binds(name, pw)  # slapd agrees: pwdMaxIdle needs pwdLockout
