"""Fewer round trips, the same verdicts: the combined account read and admin-group search
(issue 8 benchmark "API unlock <= 2x raw"; the checks are issue 7 item 7's).

On OpenLDAP an account read is one subtree search returning every attribute the status
needs (entryUUID included, for the bind-account check), and the first level of the
admin-group walk plus the existence of every admin group is one search (``entryDN`` +
the matched-values control, RFC 3876). These tests pin both halves: the number of
requests, and that every verdict is the one the separate reads give — direct and nested
members (``member`` and ``uniqueMember``), another spelling of the group DN, a missing
group next to an existing one — on the combined path, on the fallback a server takes
when it refuses the control, and when a server ignores the control (every value comes
back: must not make every group look like a holder). Each refusal leaves the account as
it was, read back as the administrator.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from ldap3 import MODIFY_REPLACE

import connectors.ldap_protect as protect
from connectors.base import Rejected
from connectors.ldap import LdapConnector
from tests.integration.directory.helpers import Directory, connector

GROUPS = "ou=groups,dc=example,dc=org"
ADMINS = "cn=it-admins,ou=groups,dc=example,dc=org"


def _refused_control(_assertions: list[tuple[str, str]], _rules: object = None) -> tuple[str, bool, bytes]:
    """A critical control slapd does not know: it refuses the search (unavailableCriticalExtension)."""
    return ("1.3.6.1.4.1.99999.1", True, b"")


def _ignored_control(_assertions: list[tuple[str, str]], _rules: object = None) -> tuple[str, bool, bytes]:
    """A non-critical control slapd does not know: it is ignored, every member value comes back."""
    return ("1.3.6.1.4.1.99999.1", False, b"")


MODES = {"combined": None, "control_refused": _refused_control, "control_ignored": _ignored_control}


@pytest.fixture(params=list(MODES), ids=list(MODES))
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    replacement = MODES[request.param]
    if replacement is not None:
        monkeypatch.setattr(protect, "matched_values", replacement)
    return str(request.param)


@pytest.fixture
def groups(openldap: Directory) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for group in reversed(made):
        openldap.admin.delete(group)


def _group(d: Directory, made: list[str], kind: str, attr: str, *members: str) -> str:
    dn = f"cn=g-{secrets.token_hex(4)},{GROUPS}"
    ok = d.admin.add(dn, attributes={"objectClass": [kind], "cn": dn[3:].split(",")[0], attr: list(members)})
    assert ok, d.admin.result
    made.append(dn)
    return dn


class Counted:
    """Counts the requests the connector's pooled connection sends (searches and modifies)."""

    def __init__(self, conn: LdapConnector, monkeypatch: pytest.MonkeyPatch) -> None:
        conn.run("account_status", {"user": "alice"}, timeout=15)  # bind, bind identity, policy cache
        pooled: Any = conn._conn
        self.ops: list[str] = []
        for name in ("search", "modify"):
            original = getattr(pooled, name)

            def wrapped(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
                self.ops.append(_name)
                return _original(*args, **kwargs)

            monkeypatch.setattr(pooled, name, wrapped)


def test_an_unlock_on_openldap_is_four_requests_and_a_status_two(
    openldap: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """find+read (one search), privilege (one search), the modify, the re-read — no more."""
    user, pw = openldap.create_user()
    counted = Counted(openldap.conn, monkeypatch)
    assert openldap.conn.run("account_status", {"user": user}, timeout=15)["privileged"] is False
    assert counted.ops == ["search", "search"]
    openldap.lock(user)
    counted.ops.clear()
    assert openldap.conn.run("unlock_account", {"user": user}, timeout=15)["changed"] is True
    assert counted.ops == ["search", "search", "modify", "search"]
    assert openldap.state_attrs(user).get("pwdAccountLockedTime") in (None, [], "")
    assert openldap.bind_ok(user, pw)


def test_membership_verdicts_are_the_same_on_every_path(openldap: Directory, groups: list[str], mode: str) -> None:
    """Direct (member / uniqueMember), nested, a group holding others only, and the admin
    group given in another spelling: privileged exactly when the walk says so, on the
    combined search, when the control is refused and when it is ignored."""
    d = openldap
    direct, _ = d.create_user()
    unique, _ = d.create_user()
    nested, _ = d.create_user()
    plain, plain_pw = d.create_user()
    inner = _group(d, groups, "groupOfUniqueNames", "uniqueMember", d.dn(nested), d.dn("alice"))
    # plain is in a group that has other members (and holds no admin): not privileged
    _group(d, groups, "groupOfNames", "member", d.dn(plain), d.dn("bob"))
    admin = _group(d, groups, "groupOfNames", "member", d.dn(direct), inner, d.dn("alice"))
    admin_u = _group(d, groups, "groupOfUniqueNames", "uniqueMember", d.dn(unique), d.dn("bob"))
    spelled = admin.upper().replace(",", " , ").replace("CN=G-", "CN=\\47-")  # \47 is "G"
    conn = connector("corp", admin_groups=[spelled, admin_u])
    try:
        verdicts = {u: conn.run("account_status", {"user": u}, timeout=15)["privileged"] for u in (direct, unique)}
        verdicts[nested] = conn.run("account_status", {"user": nested}, timeout=15)["privileged"]
        verdicts[plain] = conn.run("account_status", {"user": plain}, timeout=15)["privileged"]
        assert verdicts == {direct: True, unique: True, nested: True, plain: False}, mode
        for user in (direct, unique, nested):
            d.lock(user)
            before = d.state_attrs(user)
            with pytest.raises(Rejected) as err:
                conn.run("unlock_account", {"user": user}, timeout=15)
            assert err.value.reason == "not_allowed"
            assert d.state_attrs(user) == before  # still locked, untouched
        d.lock(plain)
        assert conn.run("unlock_account", {"user": plain}, timeout=15)["changed"] is True
        assert d.bind_ok(plain, plain_pw)
    finally:
        conn.close()


def test_a_unique_member_with_an_optional_uid_is_a_member_on_every_path(
    openldap: Directory, groups: list[str], mode: str
) -> None:
    """``uniqueMember: <dn>#'0101'B`` (RFC 4517 nameAndOptionalUID) names the account too.
    Its equality rule only matches an assertion with the same UID, so ``(uniqueMember=<dn>)``
    missed it: an administrator listed that way (directly in an admin group of unique names,
    or in such a group nested in an admin group) read as an ordinary account and was reset
    and unlocked. Now privileged on every path; an account of another DN stays ordinary."""
    d = openldap
    direct, _ = d.create_user()
    nested, _ = d.create_user()
    other, other_pw = d.create_user()
    inner = _group(d, groups, "groupOfUniqueNames", "uniqueMember", f"{d.dn(nested)}#'1'B", f"{d.dn('alice')}#'0'B")
    admin_u = _group(d, groups, "groupOfUniqueNames", "uniqueMember", f"{d.dn(direct)}#'0101'B", d.dn("bob"))
    admin_n = _group(d, groups, "groupOfNames", "member", inner)
    # other's DN is a prefix-free neighbour of direct's: only the exact DN counts
    _group(d, groups, "groupOfUniqueNames", "uniqueMember", f"{d.dn(other)}x#'1'B")
    conn = connector("corp", admin_groups=[admin_u, admin_n])
    try:
        verdicts = {
            u: conn.run("account_status", {"user": u}, timeout=15)["privileged"] for u in (direct, nested, other)
        }
        assert verdicts == {direct: True, nested: True, other: False}, mode
        for user in (direct, nested):
            d.lock(user)
            before = d.state_attrs(user)
            for action in ("unlock_account", "reset_password"):
                inputs: dict[str, Any] = {"user": user}
                if action == "reset_password":
                    inputs["new_password"] = "Zq-bcdfghjkmnpq Kv-rvwxyz26!"
                with pytest.raises(Rejected) as err:
                    conn.run(action, inputs, timeout=15)
                assert err.value.reason == "not_allowed", (mode, action, err.value.reason)
            assert d.state_attrs(user) == before  # still locked, password untouched
        d.lock(other)
        assert conn.run("unlock_account", {"user": other}, timeout=15)["changed"] is True
        assert d.bind_ok(other, other_pw)
    finally:
        conn.close()


def test_a_missing_admin_group_beside_an_existing_one_is_still_a_configuration_error(
    openldap: Directory, mode: str
) -> None:
    """The existing group is found by the combined search; the missing one must still be
    named, and nothing changes — also for a member of the existing admin group."""
    missing = f"cn=no-such-{secrets.token_hex(3)},{GROUPS}"
    user, _ = openldap.create_user()
    openldap.lock(user)
    before = openldap.state_attrs(user)
    conn = connector("corp", admin_groups=[ADMINS, missing])
    try:
        for who in (user, "root-admin"):
            for action in ("account_status", "unlock_account"):
                with pytest.raises(Rejected) as err:
                    conn.run(action, {"user": who}, timeout=15)
                assert err.value.reason == "config" and missing in str(err.value), (who, action, mode)
    finally:
        conn.close()
    assert openldap.state_attrs(user) == before


def test_the_lock_value_deleted_is_the_one_read_in_the_combined_search(openldap: Directory) -> None:
    """An administrator lock replacing the failure lock between the read and the write stays
    (the delete names the exact value read with the account), and the re-read reports it."""
    user, pw = openldap.create_user()
    openldap.lock(user)
    flavor: Any = openldap.conn._flavor
    original = flavor.unlock

    def admin_lock_in_between(c: Any, dn: str, seen: Any) -> Any:
        assert openldap.admin.modify(dn, {"pwdAccountLockedTime": [(MODIFY_REPLACE, ["000001010000Z"])]})
        return original(c, dn, seen)

    flavor.unlock = admin_lock_in_between
    try:
        with pytest.raises(Rejected) as err:
            openldap.conn.run("unlock_account", {"user": user}, timeout=15)
    finally:
        flavor.unlock = original
    assert err.value.reason == "unlock_failed"
    assert openldap.read(user, "pwdAccountLockedTime")["pwdAccountLockedTime"], "the administrator lock must stay"
    assert not openldap.bind_ok(user, pw)
