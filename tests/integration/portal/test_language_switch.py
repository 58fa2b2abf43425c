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


@pytest.mark.parametrize(
    "value",
    ["xx", "nl-NL", "", "n" * 5000, "ｎｌ", "nł", "nl ", "en;nl"],
    ids=["unknown", "region", "empty", "very-long", "full-width", "non-ascii", "trailing-space", "two"],
)
def test_a_language_the_portal_does_not_offer_is_refused_with_a_sentence(portal: PortalServer, value: str) -> None:
    """Any value but a code the switch offers answers 422 with a readable page; the cookie stays."""
    client, csrf = start_anonymous(portal)
    with closing(client):
        r = client.post("/lang", data={"lang": value, "next": "/signin", "csrf_token": csrf})
        assert r.status_code == 422
        assert "That is not a language this portal offers; choose one of: English (en), Nederlands (nl)." in r.text
        assert "fl_lang" not in r.headers.get("set-cookie", "")
        client.cookies.set("fl_lang", "nl")
        dutch = client.post("/lang", data={"lang": value, "next": "/signin", "csrf_token": csrf})
        assert dutch.status_code == 422 and "Die taal biedt dit portaal niet aan" in dutch.text
        api = client.post("/lang", data={"lang": value, "csrf_token": csrf}, headers={"Accept": "application/json"})
        assert api.status_code == 422 and api.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(("value", "stored"), [("nl", "nl"), ("NL", "nl"), ("En", "en")])
def test_a_language_code_is_read_without_regard_to_case(portal: PortalServer, value: str, stored: str) -> None:
    client, csrf = start_anonymous(portal)
    with closing(client):
        r = client.post("/lang", data={"lang": value, "next": "/signin", "csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/signin"
        assert f"fl_lang={stored};" in r.headers["set-cookie"]
