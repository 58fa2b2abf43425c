"""security.md item 36 end to end: after a self-service reset and unlock the notification goes
to every address the directory holds for the account (OpenLDAP: all ``mail`` values), with
the time and a "wasn't you?" line; never the password or the code."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from ldap3 import MODIFY_ADD, MODIFY_REPLACE

from tests.integration.directory.helpers import MAILDIR, mails_to
from tests.integration.portal.test_selfservice import Anon, address, anon, good_password, wait_for_code
from tests.portal_support import PortalServer

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
__all__ = ["anon"]  # the fixture, shared with test_selfservice


def notifications(to: str, kind: str, wait: float = 15.0) -> list[Any]:
    import time

    deadline = time.monotonic() + wait
    while True:
        found = [m for m in mails_to(to, wait=0.2) if str(m["X-Firstline-Kind"]) == kind]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def two_addresses(ldap_users: Any, user: str) -> tuple[str, str]:
    first, second = f"{user}@example.org", f"{user}.private{secrets.token_hex(2)}@example.net"
    ok = ldap_users.admin.modify(ldap_users.dn(user), {"mail": [(MODIFY_ADD, [second])]})
    assert ok, ldap_users.admin.result
    return first, second


def test_reset_and_unlock_notify_every_registered_address(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, _ = ldap_users.create_user()
    first, second = two_addresses(ldap_users, user)
    client = address()
    a = anon(portal, client)
    a.request_code(user)
    code = wait_for_code(user)
    new = good_password()
    assert a.redeem(user, code, new).status_code == 200
    for to in (first, second):
        (msg,) = notifications(to, "password_reset")
        body = msg.get_content()
        assert "This wasn't you? Contact" in body and "Was u dit niet?" in body
        assert " UTC " in body
        assert new not in body and code not in body
    # unlock
    ldap_users.lock(user)
    a.request_code(user, "unlock")
    code = wait_for_code(user, count=2)
    assert a.redeem(user, code).status_code == 200
    for to in (first, second):
        assert len(notifications(to, "account_unlock")) == 1
    # the code mails went to the first address the directory holds, never elsewhere; no password anywhere
    raw = [p.read_bytes() for p in MAILDIR.glob("*.eml") if user.encode() in p.read_bytes()]
    assert not any(new.encode() in m for m in raw)


def test_notification_names_the_client_address_and_the_public_link(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, _ = ldap_users.create_user()
    client = address()
    a = anon(portal, client, Host="evil.example", **{"X-Forwarded-Host": "evil.example"})
    ldap_users.lock(user)
    a.request_code(user, "unlock")
    code = wait_for_code(user)
    assert a.redeem(user, code).status_code == 200
    (msg,) = notifications(f"{user}@example.org", "account_unlock")
    body = msg.get_content()
    assert "evil.example" not in body
    assert f"network address {client}." in body
    assert f"(or see {portal.base_url})" in body


def test_an_address_change_between_code_and_notification_is_followed(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    """The notification uses the addresses read right before it is sent (security.md item 6)."""
    user, _ = ldap_users.create_user()
    a = anon(portal)
    a.request_code(user)
    code = wait_for_code(user)
    moved = f"{user}.moved@example.net"
    assert ldap_users.admin.modify(ldap_users.dn(user), {"mail": [(MODIFY_REPLACE, [moved])]})
    assert a.redeem(user, code, good_password()).status_code == 200
    assert len(notifications(moved, "password_reset")) == 1
    assert not notifications(f"{user}@example.org", "password_reset", wait=1.0)
