"""The language switch in the header comes back to the same page, query string included
(an auditor's filter, the sign-in page's destination), so switching loses nothing."""

from __future__ import annotations

import re
from contextlib import closing

import pytest

from tests.portal_support import PortalServer, start_anonymous

pytestmark = pytest.mark.integration

LANG_NEXT = re.compile(r'action="/lang".*?name="next" value="([^"]*)"', re.S)


def test_the_language_switch_keeps_the_query_string(portal: PortalServer) -> None:
    client, csrf = start_anonymous(portal)
    with closing(client):
        page = client.get("/signin?next=%2Fme%2Ftickets")
        found = LANG_NEXT.search(page.text)
        assert found and found.group(1) == "/signin?next=%2Fme%2Ftickets"
        r = client.post("/lang", data={"lang": "nl", "next": "/signin?next=%2Fme%2Ftickets", "csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fme%2Ftickets"


def test_a_query_too_long_to_come_back_to_leaves_the_path(portal: PortalServer) -> None:
    client, _ = start_anonymous(portal)
    with closing(client):
        page = client.get("/signin?next=/" + "a" * 600)
        found = LANG_NEXT.search(page.text)
        assert found and found.group(1) == "/signin"
