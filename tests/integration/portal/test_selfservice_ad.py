"""Forgotten password against the lab's Samba AD DC over HTTP: the login routes to AD in any
spelling, the code's snapshot is ``pwdLastSet`` (a password set by the administrator in
between invalidates it), privileged accounts get the same answer and no code."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.conftest import start_lab
from tests.integration.directory.helpers import new_password
from tests.integration.portal.test_selfservice import Anon, _normal, address, audit, wait_audit, wait_for_code
from tests.portal_support import PortalServer

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]


@pytest.fixture
def ad_users() -> Iterator[Any]:
    from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector

    start_lab("samba")
    admin, server = _admin("active_directory")
    d = Directory(
        "active_directory", "ad", connector("ad"), admin, server, FLAVORS["active_directory"][1], "sAMAccountName"
    )
    yield d
    d.cleanup()
    admin.unbind()


def test_ad_reset_with_a_code_and_snapshot(portal_with: Callable[..., PortalServer], ad_users: Any) -> None:
    server = portal_with()
    user, _old = ad_users.create_user()
    unknown = Anon(server, address())
    known = Anon(server, address())
    try:
        # the same answer for a known AD account, an unknown one and the domain's Administrator
        answers = [
            _normal(known.request_code(f"EXAMPLE\\{user}"), known.csrf),
            _normal(known.request_code("EXAMPLE\\nobody-here"), known.csrf),
            _normal(known.request_code("root-admin@example.test"), known.csrf),
        ]
        assert answers[0] == answers[1] == answers[2]
        code = wait_for_code(user)
        assert wait_audit(server, ("selfservice.code_not_sent",), "ad:root-admin", 1)
        assert {r[0] for r in audit(server, "selfservice.code_not_sent", "ad:root-admin")} == {"privileged"}
        # a reset by another path (the administrator) invalidates the outstanding code
        time.sleep(1.0)
        other = new_password()
        ad_users.set(user, unicodePwd=f'"{other}"'.encode("utf-16-le"))
        assert known.redeem(f"{user}@example.test", code, new_password()).status_code == 400
        assert [r[0] for r in audit(server, "selfservice.code_refused", f"ad:{user}")] == [
            "password_changed_since_issue"
        ]
        assert ad_users.bind_ok(user, other)
        # a fresh code works, once
        unknown.request_code(f"{user}@example.test")
        code = wait_for_code(user, count=2)
        new = new_password()
        done = unknown.redeem(f"EXAMPLE\\{user}", code, new)
        assert done.status_code == 200, done.text
        assert ad_users.bind_ok(user, new)  # (Samba accepts the previous password for a while: not checked)
        assert unknown.redeem(f"EXAMPLE\\{user}", code, new_password()).status_code == 400
        rows = server.query("SELECT requester, directory, state FROM ticket")
        assert rows == [(f"{user}@example.test", "ad", "resolved")]
        assert code.encode() not in server.stored_bytes() and new.encode() not in server.stored_bytes()
    finally:
        unknown.close()
        known.close()
