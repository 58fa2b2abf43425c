"""A must-change reset is refused when the OpenLDAP policy that applies cannot be read.

Whether slapd makes a reset password be changed depends on the effective policy's
``pwdMustChange`` (test_must_change_enforced.py). When the connector could not read that
policy — ``pwdPolicySubentry`` names a DN that does not exist, the policy entry or its
attributes are hidden from the service account by an ACL, the default policy is not
configured or not found, the subentry names an entry that is no policy — it counted it as
enforcing: the reset wrote ``pwdReset`` and answered "must be changed at the next sign-in"
without knowing it, and ``account_status`` said ``must_change``. For a missing subentry slapd
itself applies no ``pwdMustChange`` (checked below), so that answer was wrong and a handed-out
temporary password stayed valid for good.

Now such a reset is refused before anything is written (``must_change_unknown``, escalated),
and the status says ``must_change_unknown`` instead of claiming ``must_change``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from connectors.base import Rejected
from connectors.ldap import LdapConnector
from tests.integration.directory.helpers import Directory, connector, new_password
from tests.integration.directory.private_slapd import SUFFIX, SVCDN, PrivateSlapd, private_slapd
from tests.integration.directory.test_must_change_enforced import _binds_unrestricted

pytestmark = pytest.mark.integration
POLICIES = f"ou=policies,{SUFFIX}"


def _refused_unknown(conn: LdapConnector, user: str, read: Callable[[], dict[str, object]]) -> None:
    """A must-change reset (given and generated password) is refused as unknown, nothing written."""
    before = read()
    for params in ({"user": user, "new_password": new_password()}, {"user": user, "must_change": True}):
        with pytest.raises(Rejected) as err:
            conn.run("reset_password", params, timeout=30)
        assert err.value.reason == "must_change_unknown"
        assert "could not be read" in str(err.value) and "Nothing was changed" in str(err.value)
        assert not err.value.requester_action and not err.value.outcome_unknown
        assert read() == before


# ------------------------------------------------------------------ the lab slapd


def test_subentry_naming_a_missing_entry(openldap: Directory) -> None:
    missing = f"cn=fl-missing-{secrets.token_hex(4)},{POLICIES}"
    user, pw = openldap.create_user(pwdPolicySubentry=missing)
    openldap.set(user, pwdReset="TRUE")
    assert _binds_unrestricted(openldap, user, pw)  # slapd falls back to no pwdMustChange

    _refused_unknown(openldap.conn, user, lambda: openldap.state_attrs(user))
    assert _binds_unrestricted(openldap, user, pw)
    status = openldap.conn.run("account_status", {"user": user}, timeout=10)
    assert (status["must_change"], status["must_change_unknown"]) == (False, True)

    # without must-change the reset is what was asked, and goes ahead
    new = new_password()
    out = openldap.conn.run("reset_password", {"user": user, "new_password": new, "must_change": False}, timeout=30)
    assert out["must_change"] is False
    assert _binds_unrestricted(openldap, user, new)


def test_subentry_naming_an_entry_that_is_no_policy(openldap: Directory) -> None:
    user, pw = openldap.create_user(pwdPolicySubentry=POLICIES)  # an organizationalUnit
    _refused_unknown(openldap.conn, user, lambda: openldap.state_attrs(user))
    assert openldap.bind_ok(user, pw)


@pytest.mark.parametrize("default", [None, f"cn=fl-absent-default,{POLICIES}"], ids=["not-configured", "not-found"])
def test_default_policy_not_configured_or_not_found(openldap: Directory, default: str | None) -> None:
    user, pw = openldap.create_user()  # no pwdPolicySubentry: the default policy applies
    conn = connector("corp", ppolicy_default_dn=default)
    try:
        _refused_unknown(conn, user, lambda: openldap.state_attrs(user))
        assert openldap.bind_ok(user, pw)
    finally:
        conn.close()


# ------------------------------------------------------------------ a private slapd with ACLs

HIDDEN = f"cn=hidden,{POLICIES}"  # the service account cannot see the entry at all
MASKED = f"cn=masked,{POLICIES}"  # it sees the entry, not its policy attributes


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateSlapd]:
    access = (
        f'to dn.base="{HIDDEN}" by dn.exact="{SVCDN}" none by users read by * none',
        f'to dn.base="{MASKED}" attrs=pwdAttribute,pwdMustChange by dn.exact="{SVCDN}" none by users read by * none',
    )
    with private_slapd(tmp_path_factory.mktemp("slapd-acl"), access=access) as s:
        admin, _server = s.admin()
        for dn in (HIDDEN, MASKED):
            name = dn.split(",")[0][3:]
            attrs = {
                "objectClass": ["top", "device", "pwdPolicy"],
                "cn": name,
                "pwdAttribute": "userPassword",
                "pwdMustChange": "TRUE",
            }
            assert admin.add(dn, attributes=attrs), admin.result
        admin.unbind()
        yield s


@pytest.fixture
def private(slapd: PrivateSlapd) -> Iterator[LdapConnector]:
    c = slapd.connector()
    yield c
    c.close()


def _user(slapd: PrivateSlapd, **extra: str) -> tuple[str, str]:
    name = f"t{secrets.token_hex(5)}"
    return name, slapd.add_user(name, "Policy", **extra)


def _state(slapd: PrivateSlapd, name: str) -> dict[str, object]:
    keep = ("userPassword", "pwdReset", "pwdChangedTime", "pwdHistory", "pwdAccountLockedTime")
    return {k: v for k, v in slapd.entry(name).items() if k in keep}


@pytest.mark.parametrize("policy", [HIDDEN, MASKED], ids=["entry-hidden", "attributes-hidden"])
def test_policy_the_service_account_may_not_read(slapd: PrivateSlapd, private: LdapConnector, policy: str) -> None:
    name, pw = _user(slapd, pwdPolicySubentry=policy)
    status = private.run("account_status", {"user": name}, timeout=10)
    assert (status["must_change"], status["must_change_unknown"]) == (False, False)  # no pwdReset yet

    _refused_unknown(private, name, lambda: _state(slapd, name))
    assert slapd.binds(name, pw)


def test_readable_default_policy_still_resets_with_must_change(slapd: PrivateSlapd, private: LdapConnector) -> None:
    """The ACLs hide only those two entries: under the readable default the reset goes through."""
    name, _pw = _user(slapd)
    out = private.run("reset_password", {"user": name, "new_password": new_password()}, timeout=30)
    assert out["must_change"] is True
    assert _state(slapd, name).get("pwdReset") in (["TRUE"], "TRUE", [True], True)
