"""Portal roles from deeply nested groups on the lab slapd: the connector follows group nesting
8 levels; an agent group 9 levels up is beyond that. Such a sign-in must not pass as a plain,
complete one: the person gets only the roles proven (employee), and the audit says
``roles_unknown`` (runner/auth.py, connectors/ldap.py ``_groups_of``)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.api import open_app
from runner.auth import AuthService
from runner.ledger.audit import iter_events
from runner.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
REPO = Path(__file__).resolve().parents[3]
GROUPS = "ou=groups,dc=example,dc=org"


@pytest.fixture
def chain(ldap_users: Any) -> Iterator[Any]:
    """``chain(login, depth)`` → the DN of a group *depth* levels above *login*: the account is a
    member of the first group, each group a member of the next. Removed afterwards."""
    made: list[str] = []

    def make(login: str, depth: int) -> str:
        member = ldap_users.dn(login)
        tag = secrets.token_hex(3)
        for level in range(1, depth + 1):
            dn = f"cn=nest-{tag}-{level},{GROUPS}"
            ok = ldap_users.admin.add(
                dn, attributes={"objectClass": ["groupOfNames"], "cn": f"nest-{tag}-{level}", "member": member}
            )
            assert ok, ldap_users.admin.result
            made.append(dn)
            member = dn
        return str(member)

    yield make
    for dn in reversed(made):
        ldap_users.admin.delete(dn)


def _auth(tmp_path: Path, database_url: str, agent_group: str) -> Any:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=database_url,
        inventory=REPO / "lab" / "inventory.yaml",
        runbooks_dir=REPO / "runbooks",
        agent_groups={"corp": [agent_group]},
        signin_min_seconds=0,
    )
    return open_app(settings)


@pytest.mark.parametrize(
    ("depth", "roles", "reason"), [(8, {"agent", "employee"}, None), (9, {"employee"}, "roles_unknown")]
)
def test_an_agent_group_beyond_the_walk_gives_only_proven_roles_and_says_so(
    tmp_path: Path, database_url: str, ldap_users: Any, chain: Any, depth: int, roles: set[str], reason: str | None
) -> None:
    login, password = ldap_users.create_user()
    top = chain(login, depth)
    fl = _auth(tmp_path, database_url, top)
    try:
        principal, _token = AuthService(fl).sign_in(login, password, client_ip="192.0.2.44", user_agent="pytest")
        assert set(principal.roles) == roles
        events = [e for e in iter_events(fl.engine) if e["action"] == "portal.sign_in"]
    finally:
        fl.close()
    assert [(e["outcome"], e["reason"]) for e in events] == [("success", reason)]
    assert sorted(events[0]["actor_roles"].split(",")) == sorted(roles)


def test_the_connector_reports_an_incomplete_walk(ldap_users: Any, chain: Any) -> None:
    login, password = ldap_users.create_user()
    deep = chain(login, 9)
    out = ldap_users.conn.run("authenticate", {"user": login, "password": password}, timeout=10)
    assert out["groups_complete"] is False
    assert deep.lower() not in {g.lower() for g in out["groups"]} and len(out["groups"]) == 8
    login2, password2 = ldap_users.create_user()
    chain(login2, 8)
    out = ldap_users.conn.run("authenticate", {"user": login2, "password": password2}, timeout=10)
    assert out["groups_complete"] is True and len(out["groups"]) == 8


@pytest.mark.parametrize("how", ["memberUid", "gidNumber"])
def test_a_posix_group_named_as_a_role_group_gives_the_role(
    tmp_path: Path, database_url: str, ldap_users: Any, how: str
) -> None:
    """A posixGroup in FIRSTLINE_AGENT_GROUPS silently gave no role (its members are named by
    memberUid, or hold it as their primary gidNumber, never by DN): a tester's find."""
    login, password = ldap_users.create_user()
    cn = f"posix-agents-{secrets.token_hex(3)}"
    group = f"cn={cn},{GROUPS}"
    gid = str(70000 + secrets.randbelow(20000))
    attrs: dict[str, Any] = {"objectClass": ["posixGroup"], "cn": cn, "gidNumber": gid}
    if how == "memberUid":
        attrs["memberUid"] = login.upper()  # memberUid is case-exact; the match is not
    ok = ldap_users.admin.add(group, attributes=attrs)
    assert ok, ldap_users.admin.result
    try:
        if how == "gidNumber":
            assert ldap_users.admin.modify(
                ldap_users.dn(login),
                {
                    "objectClass": [("MODIFY_ADD", ["posixAccount"])],
                    "uidNumber": [("MODIFY_ADD", [gid])],
                    "gidNumber": [("MODIFY_ADD", [gid])],
                    "homeDirectory": [("MODIFY_ADD", [f"/home/{login}"])],
                },
            ), ldap_users.admin.result
        fl = _auth(tmp_path, database_url, group)
        try:
            principal, _token = AuthService(fl).sign_in(login, password, client_ip="192.0.2.45", user_agent="pytest")
        finally:
            fl.close()
        assert set(principal.roles) == {"agent", "employee"}
        other, other_pw = ldap_users.create_user()
        fl = _auth(tmp_path, database_url, group)
        try:
            someone, _t = AuthService(fl).sign_in(other, other_pw, client_ip="192.0.2.45", user_agent="pytest")
        finally:
            fl.close()
        assert set(someone.roles) == {"employee"}  # not a member: no role
    finally:
        ldap_users.admin.delete(group)
