"""Forgotten password with an Active Directory sign-in name (UPN) whose name part is not the
account name, over HTTP against the lab Samba DC: the code goes to the account the UPN belongs
to, any spelling of that account redeems it, and the run acts on that account by its name.
Before, ``first.last@example.test`` was looked up as the account named ``first.last``: no code
was sent (or it went to another account of that name)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import start_lab
from tests.integration.directory.helpers import new_password
from tests.integration.directory.test_upn_names import _alt_inventory
from tests.integration.portal.test_selfservice import Anon, address, audit, code_mails, wait_audit, wait_for_code
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


@pytest.mark.parametrize("redeem_as", ["upn", "netbios"])
def test_a_reset_requested_with_a_upn_resets_that_account(
    portal_with: Callable[..., PortalServer], ad_users: Any, redeem_as: str
) -> None:
    server = portal_with()
    upn = f"first.last.{secrets.token_hex(3)}@example.test"
    user, _old = ad_users.create_user(userPrincipalName=upn)
    anon = Anon(server, address())
    try:
        assert anon.request_code(upn.upper()).status_code == 303
        code = wait_for_code(user)
        assert wait_audit(server, ("selfservice.code_sent",), f"ad:{user}", 1) == 1
        new = new_password()
        done = anon.redeem(upn if redeem_as == "upn" else f"EXAMPLE\\{user}", code, new)
        assert done.status_code == 200, done.text
        assert ad_users.bind_ok(user, new)
        rows = server.query("SELECT requester, directory, state FROM ticket")
        assert rows == [(f"{user}@example.test", "ad", "resolved")]
        assert audit(server, "selfservice.code_redeemed", f"ad:{user}")
    finally:
        anon.close()


def test_a_reset_requested_with_the_name_under_an_alternate_suffix_sends_no_code(
    portal_with: Callable[..., PortalServer], ad_users: Any, tmp_path: Path
) -> None:
    """``name@alt.example`` (alt.example declared for the AD directory) when no account has that
    UPN is no account: AD's implicit UPN is ``name@example.test`` only. Before, the code went to
    the account named ``name``, which the person had not named."""
    server = portal_with(inventory=_alt_inventory(tmp_path))
    user, _old = ad_users.create_user(userPrincipalName=f"first.last.{secrets.token_hex(3)}@example.test")
    anon = Anon(server, address())
    try:
        assert anon.request_code(f"{user}@ALT.example").status_code == 303
        reasons: list[Any] = []
        for _ in range(150):  # the request is handled in the background: its audit event, within 15 s
            reasons = [r[0] for r in audit(server, "selfservice.code_not_sent")] + [
                r[1] for r in audit(server, "selfservice.code_sent")
            ]
            if reasons:
                break
            time.sleep(0.1)
        assert reasons == ["unknown_account"], reasons
        assert code_mails(user, wait=0.5) == []
    finally:
        anon.close()
