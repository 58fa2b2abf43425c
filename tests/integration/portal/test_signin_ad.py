"""Sign-in against the lab's Samba AD DC: the name routes to the AD directory, roles come
from nested groups and from the primary group (tokenGroups), refusals look the same."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import start_lab
from tests.portal_support import REPO, post_signin, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]


@pytest.fixture
def ad_users() -> Iterator[Any]:
    from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector

    start_lab("samba")
    admin, server = _admin("active_directory")
    d = Directory(
        "active_directory", "ad", connector("ad"), admin, server, FLAVORS["active_directory"][1], "sAMAccountName"
    )
    groups: list[str] = []
    d.groups = groups  # type: ignore[attr-defined]
    yield d
    for g in groups:
        admin.delete(g)
    for user in d.created:
        admin.delete(d.dn(user))
    admin.unbind()


def _group(d: Any, *members: str) -> str:
    name = f"g{secrets.token_hex(4)}"
    dn = f"CN={name},OU=People,DC=example,DC=test"
    ok = d.admin.add(dn, attributes={"objectClass": ["top", "group"], "sAMAccountName": name, "member": list(members)})
    assert ok, d.admin.result
    d.groups.insert(0, dn)
    return dn


def test_ad_roles_from_nested_and_primary_groups(portal_with: Any, ad_users: Any) -> None:
    login, password = ad_users.create_user()
    inner = _group(ad_users, ad_users.dn(login))
    outer = _group(ad_users, inner)  # agent through a nested group
    server = portal_with(
        agent_groups={"ad": [outer.upper()]},  # another spelling of the same DN
        auditor_groups={"ad": ["CN=Domain Users,CN=Users,DC=example,DC=test"], "corp": [outer]},
    )
    for spelling in (f"{login}@example.test", f"EXAMPLE\\{login}", f"example\\{login.upper()}"):
        s = sign_in(server, spelling, password, address="192.0.2.90")
        me = s.get("/api/v1/me").json()
        assert me["account"] == f"{login}@example.test" and me["directory"] == "ad"
        assert me["roles"] == ["agent", "auditor", "employee"]
        s.client.close()
    # a bare name goes to the default directory (OpenLDAP), where this account does not exist
    assert post_signin(server, login, password, address="192.0.2.91").status_code == 401


def test_ad_refusals_look_the_same(portal_with: Any, ad_users: Any) -> None:
    server = portal_with()
    login, password = ad_users.create_user()
    users = json.loads((REPO / "var/lab/samba/secrets/users.json").read_text())
    texts = set()
    for name, pw in (
        (f"{login}@example.test", password + "x"),
        (f"nobody-{secrets.token_hex(3)}@example.test", password),
        ("frozen@example.test", users["frozen"]),  # disabled / locked in the lab AD
        ("gone@example.test", users["gone"]),  # expired
        ("eve@example.test", users["eve"]),  # outside the base OU
    ):
        r = post_signin(server, name, pw, address="192.0.2.92")
        assert r.status_code == 401, name
        texts.add(r.text.split('id="signin-error">', 1)[1].split("</p>", 1)[0].strip())
    assert texts == {"<p>The user name or password is not correct."}
