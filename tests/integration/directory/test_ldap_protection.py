"""Firstline never acts on itself or on protected accounts (issue 7, item 7).

Targets here put the base DN at the directory root (``DC=example,DC=test`` and
``dc=example,dc=org``), so the service account, Administrator and krbtgt are all inside it;
``admin_groups`` is empty unless a test says otherwise, so AD's built-in protection must
come from well-known SIDs, not from configuration. Every refusal leaves the directory as it
was, checked as the administrator.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, Connection

from connectors.base import Rejected
from connectors.ldap import LdapConnector
from connectors.ldap_protect import sid_to_str
from tests.integration.directory.helpers import VAR, Directory, connector, new_password

AD_ROOT = "DC=example,DC=test"
OL_ROOT = "dc=example,dc=org"
AD_SVC = "CN=svc-firstline,CN=Users,DC=example,DC=test"
OL_SVC = "cn=firstline,ou=services,dc=example,dc=org"
SVC_SECRET = {
    "ad": lambda: (VAR / "samba" / "secrets" / "firstline").read_text(),
    "corp": lambda: (VAR / "slapd" / "secrets" / "firstline").read_text(),
}


def snapshot(admin: Connection, dn: str) -> dict[str, Any]:
    names = ["userPassword", "pwdChangedTime", "pwdReset", "pwdAccountLockedTime", "pwdLastSet", "lockoutTime"]
    names += ["whenChanged", "userAccountControl", "badPwdCount", "uSNChanged", "modifyTimestamp"]
    admin.search(dn, "(objectClass=*)", BASE, attributes=["*", "+"])
    assert admin.entries, admin.result
    attrs = admin.entries[0].entry_attributes_as_dict
    return {k: v for k, v in attrs.items() if k in names}


def refused(conn: LdapConnector, user: str, *actions: str, password: str | None = None) -> None:
    """Every action is refused as ``not_allowed``.

    For the service accounts *password* is their current secret: should the guard ever
    fail, the directory refuses the same password (history) instead of locking every
    other test out of the shared lab.
    """
    for action in actions or ("reset_password", "unlock_account"):
        inputs: dict[str, Any] = {"user": user}
        if action == "reset_password":
            inputs["new_password"] = password or new_password()
        with pytest.raises(Rejected) as err:
            conn.run(action, inputs, timeout=30)
        assert err.value.reason == "not_allowed", (action, err.value.reason, str(err.value))


@pytest.fixture
def ad_root(ad: Directory) -> Iterator[LdapConnector]:
    conn = connector("ad", base_dn=AD_ROOT, admin_groups=[])
    yield conn
    conn.close()


@pytest.fixture
def ol_root(openldap: Directory) -> Iterator[LdapConnector]:
    conn = connector(
        "corp", base_dn=OL_ROOT, admin_groups=[], user_attribute="cn", user_object_class="simpleSecurityObject"
    )
    yield conn
    conn.close()


def test_ad_service_account_cannot_reset_itself_at_the_domain_root(ad: Directory, ad_root: LdapConnector) -> None:
    """The issue's case: password-reset -p user=svc-firstline with the base DN at the domain root."""
    before = snapshot(ad.admin, AD_SVC)
    assert ad_root.run("account_status", {"user": "svc-firstline"}, timeout=30)["privileged"] is True
    refused(ad_root, "svc-firstline", password=SVC_SECRET["ad"]())
    assert snapshot(ad.admin, AD_SVC) == before
    # and the service account still works with its own password
    fresh = connector("ad", base_dn=AD_ROOT)
    assert fresh.run("account_status", {"user": "alice"}, timeout=30)["exists"] is True
    fresh.close()


@pytest.mark.parametrize(
    "bind_dn",
    [
        "cn=SVC-FIRSTLINE,cn=users,dc=EXAMPLE,dc=test",  # case
        "CN=svc-firstline, CN=Users, DC=example, DC=test",  # spaces after commas
        "CN=svc\\2Dfirstline,CN=Users,DC=example,DC=test",  # hex-escaped '-'
    ],
)
def test_ad_bind_dn_spellings_all_protect_the_service_account(ad: Directory, bind_dn: str) -> None:
    conn = connector("ad", base_dn=AD_ROOT, admin_groups=[], bind_dn=bind_dn)
    before = snapshot(ad.admin, AD_SVC)
    try:
        refused(conn, "svc-firstline", "reset_password", password=SVC_SECRET["ad"]())
    finally:
        conn.close()
    assert snapshot(ad.admin, AD_SVC) == before


@pytest.mark.parametrize("user", ["Administrator", "krbtgt"])
def test_ad_builtin_administrator_and_krbtgt_are_refused_without_admin_groups(
    ad: Directory, ad_root: LdapConnector, user: str
) -> None:
    dn = f"CN={user},CN=Users,DC=example,DC=test"
    before = snapshot(ad.admin, dn)
    assert ad_root.run("account_status", {"user": user}, timeout=30)["privileged"] is True
    refused(ad_root, user, "reset_password")
    assert snapshot(ad.admin, dn) == before


@pytest.fixture
def ad_groups(ad: Directory) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for group in reversed(made):
        ad.admin.delete(group)


def _ad_group(ad: Directory, made: list[str], *members: str) -> str:
    dn = f"CN=g{secrets.token_hex(4)},OU=People,DC=example,DC=test"
    assert ad.admin.add(dn, attributes={"objectClass": ["top", "group"]}), ad.admin.result
    made.append(dn)
    if members:
        assert ad.admin.modify(dn, {"member": [(MODIFY_ADD, list(members))]}), ad.admin.result
    return dn


@pytest.mark.parametrize(
    "protected",
    [
        "CN=Domain Admins,CN=Users,DC=example,DC=test",  # RID 512
        "CN=Backup Operators,CN=Builtin,DC=example,DC=test",  # S-1-5-32-551
        "CN=Print Operators,CN=Builtin,DC=example,DC=test",  # S-1-5-32-550
        "CN=Schema Admins,CN=Users,DC=example,DC=test",  # RID 518
    ],
)
def test_ad_user_nested_two_levels_into_a_protected_group_is_refused(
    ad: Directory, ad_root: LdapConnector, ad_groups: list[str], protected: str
) -> None:
    user, pw = ad.create_user()
    inner = _ad_group(ad, ad_groups, ad.dn(user))
    outer = _ad_group(ad, ad_groups, inner)
    assert ad.admin.modify(protected, {"member": [(MODIFY_ADD, [outer])]}), ad.admin.result
    try:
        before = ad.state_attrs(user)
        assert ad_root.run("account_status", {"user": user}, timeout=30)["privileged"] is True
        refused(ad_root, user)
        assert ad.state_attrs(user) == before and ad.bind_ok(user, pw)
    finally:
        ad.admin.modify(protected, {"member": [(MODIFY_DELETE, [outer])]})


def test_ad_protection_follows_the_sid_not_the_name(
    ad: Directory, ad_root: LdapConnector, ad_groups: list[str]
) -> None:
    """A renamed (localised) Domain Admins still protects; a group merely *named* like it does not."""
    user, _ = ad.create_user()
    decoy = f"CN=Domain Admins {secrets.token_hex(2)},OU=People,DC=example,DC=test"
    assert ad.admin.add(decoy, attributes={"objectClass": ["top", "group"], "member": [ad.dn(user)]}), ad.admin.result
    ad_groups.append(decoy)
    assert ad_root.run("account_status", {"user": user}, timeout=30)["privileged"] is False
    # an ordinary user in an ordinary group is not protected, and can be reset
    ad_root.run("reset_password", {"user": user, "new_password": new_password()}, timeout=30)


def _sid_of(ad: Directory, dn: str) -> str:
    assert ad.admin.search(dn, "(objectClass=*)", BASE, attributes=["objectSid"]), ad.admin.result
    found = [r for r in ad.admin.response or [] if r.get("type") == "searchResEntry"]
    return sid_to_str(bytes(found[0]["raw_attributes"]["objectSid"][0]))


@pytest.mark.parametrize("nested", [False, True], ids=["primary-group", "primary-group-nested"])
def test_ad_admin_through_the_primary_group_is_refused(ad: Directory, ad_groups: list[str], nested: bool) -> None:
    """AD keeps an account's primary group out of ``member``: an administrator whose primary
    group is the configured admin group (or a group nested in it) has no ``member`` link to it
    and was reset like anyone (found by a tester on the lab Samba DC)."""
    user, pw = ad.create_user()
    admins = _ad_group(ad, ad_groups)
    primary = _ad_group(ad, ad_groups) if nested else admins
    if nested:
        assert ad.admin.modify(admins, {"member": [(MODIFY_ADD, [primary])]}), ad.admin.result
    # AD needs the account in a group before it may be the primary one; the DC then drops the member value
    assert ad.admin.modify(primary, {"member": [(MODIFY_ADD, [ad.dn(user)])]}), ad.admin.result
    rid = _sid_of(ad, primary).rsplit("-", 1)[1]
    assert ad.admin.modify(ad.dn(user), {"primaryGroupID": [(MODIFY_REPLACE, [rid])]}), ad.admin.result
    conn = connector("ad", admin_groups=[admins])
    try:
        before = ad.state_attrs(user)
        assert conn.run("account_status", {"user": user}, timeout=30)["privileged"] is True
        refused(conn, user)
        assert ad.state_attrs(user) == before and ad.bind_ok(user, pw)
    finally:
        conn.close()
        # back to Domain Users, so the groups can be deleted
        ad.admin.modify(ad.dn(user), {"primaryGroupID": [(MODIFY_REPLACE, ["513"])]})


def test_ad_admin_count_alone_is_privileged(ad: Directory, ad_root: LdapConnector) -> None:
    user, _ = ad.create_user()
    ad.set(user, adminCount="1")
    refused(ad_root, user, "reset_password")


@pytest.mark.parametrize("flavor", ["active_directory", "openldap"])
def test_a_missing_admin_group_is_a_configuration_error_naming_it(
    ad: Directory, openldap: Directory, flavor: str
) -> None:
    d = ad if flavor == "active_directory" else openldap
    missing = (
        f"CN=No Such Group {secrets.token_hex(2)},CN=Users,DC=example,DC=test"
        if flavor == "active_directory"
        else f"cn=no-such-group-{secrets.token_hex(2)},ou=groups,dc=example,dc=org"
    )
    conn = connector(d.target, admin_groups=[missing])
    user, pw = d.create_user()
    before = d.state_attrs(user)
    try:
        for action in ("account_status", "reset_password", "unlock_account"):
            with pytest.raises(Rejected) as err:
                conn.run(action, {"user": user}, timeout=30)
            assert err.value.reason == "config" and missing in str(err.value) and "admin_groups" in str(err.value)
    finally:
        conn.close()
    assert d.state_attrs(user) == before and d.bind_ok(user, pw)


def test_openldap_service_account_cannot_reset_itself_at_the_root(openldap: Directory, ol_root: LdapConnector) -> None:
    before = snapshot(openldap.admin, OL_SVC)
    assert ol_root.run("account_status", {"user": "firstline"}, timeout=30)["privileged"] is True
    refused(ol_root, "firstline", password=SVC_SECRET["corp"]())
    assert snapshot(openldap.admin, OL_SVC) == before
    fresh = connector("corp")
    assert fresh.run("account_status", {"user": "alice"}, timeout=30)["exists"] is True  # still binds
    fresh.close()


@pytest.mark.parametrize(
    "bind_dn",
    [
        "CN=Firstline,OU=Services,DC=Example,DC=Org",
        "cn=firstline, ou=services, dc=example, dc=org",
        "cn=first\\6Cine,ou=services,dc=example,dc=org",
    ],
)
def test_openldap_bind_dn_spellings_all_protect_the_service_account(openldap: Directory, bind_dn: str) -> None:
    conn = connector(
        "corp",
        base_dn=OL_ROOT,
        admin_groups=[],
        user_attribute="cn",
        user_object_class="simpleSecurityObject",
        bind_dn=bind_dn,
    )
    before = snapshot(openldap.admin, OL_SVC)
    try:
        refused(conn, "firstline", "reset_password", password=SVC_SECRET["corp"]())
    finally:
        conn.close()
    assert snapshot(openldap.admin, OL_SVC) == before


@pytest.fixture
def ol_groups(openldap: Directory) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for group in reversed(made):
        openldap.admin.delete(group)


def test_openldap_nested_admin_groups_are_followed(openldap: Directory, ol_groups: list[str]) -> None:
    """user ∈ groupOfUniqueNames ∈ groupOfNames ∈ admin group (two levels of nesting, both kinds)."""
    user, pw = openldap.create_user()
    tag = secrets.token_hex(3)
    inner = f"cn=inner-{tag},ou=groups,dc=example,dc=org"
    middle = f"cn=middle-{tag},ou=groups,dc=example,dc=org"
    top = f"cn=top-{tag},ou=groups,dc=example,dc=org"
    for dn, cls, attr, member in (
        (inner, "groupOfUniqueNames", "uniqueMember", openldap.dn(user)),
        (middle, "groupOfNames", "member", inner),
        (top, "groupOfNames", "member", middle),
    ):
        assert openldap.admin.add(dn, attributes={"objectClass": [cls], "cn": dn[3:].split(",")[0], attr: member}), (
            openldap.admin.result
        )
        ol_groups.append(dn)
    conn = connector("corp", admin_groups=[top.upper().replace(",", ", ")])  # another spelling of the DN
    before = openldap.state_attrs(user)
    try:
        assert conn.run("account_status", {"user": user}, timeout=30)["privileged"] is True
        refused(conn, user)
    finally:
        conn.close()
    assert openldap.state_attrs(user) == before and openldap.bind_ok(user, pw)
    # without the nesting link the account is an ordinary one
    openldap.admin.modify(middle, {"member": [(MODIFY_REPLACE, [openldap.dn("alice")])]})
    conn = connector("corp", admin_groups=[top])
    try:
        assert conn.run("account_status", {"user": user}, timeout=30)["privileged"] is False
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("nested", "spelling"),
    [(False, str), (True, str), (False, str.upper), (True, str.upper)],
    ids=["posix-admin-group", "posix-group-nested", "posix-admin-group-upper", "posix-group-nested-upper"],
)
def test_openldap_posix_group_members_are_protected(
    openldap: Directory, ol_groups: list[str], nested: bool, spelling: Any
) -> None:
    """RFC 2307: a ``posixGroup`` names its members by ``uid`` in ``memberUid``, not by DN. An
    administrator listed so in the configured admin group (or in a posixGroup that the admin
    group holds) was unlocked and reset like anyone (found by a tester on the lab slapd). So was
    one listed in another case (``memberUid: ADMIN1`` for uid ``admin1``): ``memberUid`` is
    case-exact, but whether the hosts take it for the account depends on their NSS, so it counts."""
    user, _pw = openldap.create_user()
    tag = secrets.token_hex(3)
    posix = f"cn=posix-{tag},ou=groups,dc=example,dc=org"
    attrs = {"objectClass": ["posixGroup"], "cn": f"posix-{tag}", "gidNumber": "90001", "memberUid": [spelling(user)]}
    assert openldap.admin.add(posix, attributes=attrs), openldap.admin.result
    ol_groups.append(posix)
    admins = posix
    if nested:
        admins = f"cn=admins-{tag},ou=groups,dc=example,dc=org"
        add = {"objectClass": ["groupOfNames"], "cn": f"admins-{tag}", "member": [posix]}
        assert openldap.admin.add(admins, attributes=add), openldap.admin.result
        ol_groups.append(admins)
    conn = connector("corp", admin_groups=[admins])
    openldap.set(user, pwdAccountLockedTime="20260101000000Z")
    before = openldap.state_attrs(user)
    try:
        assert conn.run("account_status", {"user": user}, timeout=30)["privileged"] is True
        refused(conn, user)
    finally:
        conn.close()
    assert openldap.state_attrs(user) == before
    # another uid in the group: an ordinary account again
    openldap.admin.modify(posix, {"memberUid": [(MODIFY_REPLACE, ["someone-else"])]})
    conn = connector("corp", admin_groups=[admins])
    try:
        assert conn.run("account_status", {"user": user}, timeout=30)["privileged"] is False
    finally:
        conn.close()


def test_openldap_an_admin_by_primary_group_is_protected(openldap: Directory, ol_groups: list[str]) -> None:
    """RFC 2307: a posixAccount's primary group is its gidNumber, which the group's memberUid
    does not list. An administrator whose primary group is a posixGroup admin group was
    acted on (a tester's find, the OpenLDAP form of AD's primary group)."""
    user, _pw = openldap.create_user()
    tag = secrets.token_hex(3)
    gid = str(91000 + secrets.randbelow(8000))
    admins = f"cn=posix-primary-{tag},ou=groups,dc=example,dc=org"
    attrs = {"objectClass": ["posixGroup"], "cn": f"posix-primary-{tag}", "gidNumber": gid}
    assert openldap.admin.add(admins, attributes=attrs), openldap.admin.result
    ol_groups.append(admins)
    posix = {
        "objectClass": [(MODIFY_ADD, ["posixAccount"])],
        "uidNumber": [(MODIFY_ADD, [gid])],
        "gidNumber": [(MODIFY_ADD, [gid])],
        "homeDirectory": [(MODIFY_ADD, [f"/home/{user}"])],
    }
    assert openldap.admin.modify(openldap.dn(user), posix), openldap.admin.result
    openldap.set(user, pwdAccountLockedTime="20260101000000Z")
    before = openldap.state_attrs(user)
    conn = connector("corp", admin_groups=[admins])
    try:
        assert conn.run("account_status", {"user": user}, timeout=30)["privileged"] is True
        refused(conn, user)
    finally:
        conn.close()
    assert openldap.state_attrs(user) == before


def test_openldap_an_admin_group_firstline_cannot_read_is_a_configuration_error(
    openldap: Directory, ol_groups: list[str]
) -> None:
    """An ``organizationalRole`` named in admin_groups: its ``roleOccupant`` members were
    treated as ordinary accounts (a tester's find). A group of a class whose members
    Firstline does not read is refused as configuration, like a missing one."""
    user, pw = openldap.create_user()
    role = f"cn=role-{secrets.token_hex(3)},ou=groups,dc=example,dc=org"
    attrs = {"objectClass": ["organizationalRole"], "cn": role[3:].split(",")[0], "roleOccupant": [openldap.dn(user)]}
    assert openldap.admin.add(role, attributes=attrs), openldap.admin.result
    ol_groups.append(role)
    openldap.set(user, pwdAccountLockedTime="20260101000000Z")
    before = openldap.state_attrs(user)
    conn = connector("corp", admin_groups=[role])
    try:
        for action in ("account_status", "unlock_account", "reset_password"):
            with pytest.raises(Rejected) as err:
                conn.run(action, {"user": user}, timeout=30)
            assert err.value.reason == "config" and role in str(err.value), str(err.value)
        with pytest.raises(Rejected) as err:
            conn.check_connection(timeout=30)
        assert err.value.reason == "config" and "groupOfNames" in str(err.value)
    finally:
        conn.close()
    assert openldap.state_attrs(user) == before and not openldap.bind_ok(user, pw)  # still locked


def _nest(openldap: Directory, ol_groups: list[str], user: str, depth: int) -> str:
    """user ∈ g1 ∈ g2 ∈ ... ∈ g<depth>; returns the outermost group's DN."""
    tag = secrets.token_hex(3)
    inner = openldap.dn(user)
    for i in range(1, depth + 1):
        dn = f"cn=deep-{tag}-{i},ou=groups,dc=example,dc=org"
        ok = openldap.admin.add(
            dn, attributes={"objectClass": ["groupOfNames"], "cn": f"deep-{tag}-{i}", "member": inner}
        )
        assert ok, openldap.admin.result
        ol_groups.append(dn)
        inner = dn
    return inner


def test_openldap_admin_nested_deeper_than_firstline_looks_is_never_acted_on(
    openldap: Directory, ol_groups: list[str]
) -> None:
    """An administrator through MAX_NESTING groups is privileged; one group deeper is not
    "an ordinary account" but unknown: refused either way, the directory left as it was.
    (Before: the walk stopped after MAX_NESTING - 1 groups and answered "not privileged", so
    a nested administrator's password was reset.)"""
    from connectors.ldap_protect import MAX_NESTING

    at_limit, limit_pw = openldap.create_user()
    admin_group = _nest(openldap, ol_groups, at_limit, MAX_NESTING)
    deeper, deeper_pw = openldap.create_user()
    outer = _nest(openldap, ol_groups, deeper, MAX_NESTING + 1)
    top = f"cn=deep-admins-{secrets.token_hex(3)},ou=groups,dc=example,dc=org"
    ok = openldap.admin.add(
        top, attributes={"objectClass": ["groupOfNames"], "cn": top[3:].split(",")[0], "member": [admin_group, outer]}
    )
    assert ok, openldap.admin.result
    ol_groups.append(top)
    conn = connector("corp", admin_groups=[top])
    before = {u: openldap.state_attrs(u) for u in (at_limit, deeper)}
    try:
        assert conn.run("account_status", {"user": at_limit}, timeout=30)["privileged"] is True
        refused(conn, at_limit)
        for action in ("reset_password", "unlock_account"):
            inputs: dict[str, Any] = {"user": deeper}
            if action == "reset_password":
                inputs["new_password"] = new_password()
            with pytest.raises(Rejected) as err:
                conn.run(action, inputs, timeout=30)
            assert err.value.reason == "protection_unknown", (action, err.value.reason)
    finally:
        conn.close()
    for u, pw in ((at_limit, limit_pw), (deeper, deeper_pw)):
        assert openldap.state_attrs(u) == before[u] and openldap.bind_ok(u, pw)


def test_openldap_protected_accounts_are_refused(openldap: Directory) -> None:
    user, pw = openldap.create_user()
    spelled = openldap.dn(user).upper().replace(",", " , ")
    conn = connector("corp", protected_accounts=[spelled])
    before = openldap.state_attrs(user)
    try:
        refused(conn, user)
    finally:
        conn.close()
    assert openldap.state_attrs(user) == before and openldap.bind_ok(user, pw)


def test_the_connection_check_names_a_missing_admin_group(directory: Directory) -> None:
    """`firstline inventory check --connect` finds it before the first run does."""
    missing = (
        "cn=no-such-group,ou=groups,dc=example,dc=org"
        if directory.flavor == "openldap"
        else "CN=No Such Group,CN=Users,DC=example,DC=test"
    )
    conn = connector(directory.target, admin_groups=[missing])
    try:
        with pytest.raises(Rejected) as err:
            conn.check_connection(timeout=15)
        assert err.value.reason == "config" and missing in str(err.value) and "admin_groups" in str(err.value)
    finally:
        conn.close()
    conn = connector(directory.target)
    try:
        assert "admin group(s) found" in conn.check_connection(timeout=15)
    finally:
        conn.close()
