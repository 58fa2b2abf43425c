"""security.md item 7: the portal shows no destination (not even masked) before the proof,
and none after it either; only "the e-mail address on file". Pages and API, reset and unlock."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.portal.test_selfservice import Anon, anon, good_password, wait_for_code
from tests.portal_support import PortalServer

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
__all__ = ["anon"]  # the fixture, shared with test_selfservice
HINT = "alice@example.org"  # the request form's example login, not an address of anyone


def shows_no_destination(r: httpx.Response, login: str) -> None:
    text = r.text.replace(HINT, "")
    for needle in (f"{login}@", "@example.org", "example.org", f"{login[:2]}*", "***"):
        assert needle not in text, (r.request.url.path, needle)
    assert not re.search(r"[\w.*]+\*+[\w.*]*@", text), r.request.url.path  # a masked address in any spelling


def test_no_destination_before_or_after_the_proof(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    login, _ = ldap_users.create_user()
    a = anon()
    for path in ("/reset", "/unlock", "/reset/code", "/unlock/code"):
        shows_no_destination(a.client.get(path), login)
    shows_no_destination(a.ask(login), login)
    code = wait_for_code(login)
    shows_no_destination(a.redeem(login, "00000000", good_password()), login)  # wrong code
    shows_no_destination(a.redeem(login, code, "short"), login)  # refused password
    done = a.redeem(login, code, good_password())
    assert done.status_code == 200 and "We sent a confirmation to your e-mail address." in done.text
    shows_no_destination(done, login)
    # unlock, and the JSON twins
    ldap_users.lock(login)
    hdr = {"X-CSRF-Token": a.csrf}
    r = a.client.post("/api/v1/reset/request", json={"login": login, "purpose": "unlock"}, headers=hdr)
    assert r.status_code == 202
    shows_no_destination(r, login)
    shows_no_destination(a.client.get("/api/v1/reset/policy"), login)
    code = wait_for_code(login, count=2)
    r = a.client.post("/api/v1/reset/confirm", json={"login": login, "code": code, "purpose": "unlock"}, headers=hdr)
    assert r.status_code == 200, r.text
    shows_no_destination(r, login)
