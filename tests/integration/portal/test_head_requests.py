"""HEAD is answered like GET on every GET route, without a body (RFC 9110 9.3.2): the role ×
endpoint matrix of test_role_matrix (generated from the route table), each GET route asked
with HEAD as anonymous, employee, agent and auditor on the real portal, gets the status,
redirect, content type, length and security headers GET gets. It answered 405 (FastAPI
routes take no HEAD), so monitors and link checkers that probe with HEAD saw every page as
broken."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from portal.security import SECURITY_HEADERS
from tests.integration.portal.test_role_matrix import ROLES, TABLE
from tests.portal_support import PortalServer, SignedIn, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

GETS = sorted({path for method, path, _policy in TABLE if method == "GET"})
SAME = ("location", "content-type", "cache-control", "vary", "allow", *(name for name, _ in SECURITY_HEADERS))


@pytest.fixture(scope="module")
def people(portal: PortalServer) -> Any:
    made = {role: sign_in(portal, role, address=f"192.0.2.{210 + i}") for i, role in enumerate(ROLES[1:])}
    yield made
    for s in made.values():
        s.client.close()


def _ask(portal: PortalServer, who: SignedIn | None, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
    if who is not None:
        return who.client.request(method, url, headers=headers)
    with portal.client("192.0.2.251") as client:
        return client.request(method, url, headers=headers)


def test_every_get_route_is_in_the_table() -> None:
    assert len(GETS) > 30 and {"/", "/signin", "/healthz", "/api/v1/me", "/api/v1/tokens"} <= set(GETS)


@pytest.mark.parametrize("path", GETS)
def test_head_answers_as_get_without_a_body(portal: PortalServer, people: dict[str, SignedIn], path: str) -> None:
    url = re.sub(r"\{[^}]+\}", "999999", path)
    headers = {"Accept": "application/json"} if path.startswith("/api/") else {}
    for role in ROLES:
        who = None if role == "anonymous" else people[role]
        got = _ask(portal, who, "GET", url, headers)
        head = _ask(portal, who, "HEAD", url, headers)
        assert head.status_code == got.status_code, (role, path, head.status_code, got.status_code)
        assert head.content == b"", (role, path)
        for name in SAME:
            assert head.headers.get(name) == got.headers.get(name), (role, path, name)
        if path != "/metrics":  # the metrics text grows with each request
            assert head.headers.get("content-length") == got.headers.get("content-length"), (role, path)
        assert (
            head.headers["x-frame-options"] == "DENY"
            and "default-src 'none'" in head.headers["content-security-policy"]
        )


def test_head_on_a_static_file_and_an_unknown_address(portal: PortalServer) -> None:
    with portal.client("192.0.2.252") as c:
        css = c.head("/static/portal.css")
        assert css.status_code == 200 and css.content == b"" and int(css.headers["content-length"]) > 0
        missing = c.head("/no-such-page")
        assert missing.status_code == 404 and missing.content == b""
        post_only = c.head("/lang")
        assert post_only.status_code == 405 and post_only.headers["allow"] == "POST"
        assert post_only.headers["x-content-type-options"] == "nosniff"



def test_a_head_of_a_stream_is_answered_at_once_and_frees_the_connection(portal: PortalServer, people: Any) -> None:
    """A HEAD of a streamed answer (the progress stream of a ticket still running, an
    export) gets the GET's headers and an empty body, and the stream stops there: the
    keep-alive connection answers the next request at once. The progress stream used to keep
    polling the ledger for its full 300 s after the headers, holding the connection (the next
    request on it waited that long), and an export ran to its end for nobody."""
    from datetime import UTC, datetime, timedelta

    from tests.seed import portal_ledger

    employee: SignedIn = people["employee"]
    auditor: SignedIn = people["auditor"]
    account = employee.client.get("/api/v1/me").json()["account"]
    now = datetime.now(UTC)
    ledger = portal_ledger(portal.data_dir, portal.database_url)
    try:
        ticket_id = ledger.ticket(
            now,
            state="running",
            requester=account,
            subject=account,
            opened_by=account,
            deadline_at=(now + timedelta(hours=1)).isoformat(timespec="microseconds"),  # not swept meanwhile
        )
    finally:
        ledger.engine.dispose()
    cases = [
        (employee, f"/me/tickets/FL-{ticket_id:06d}/events", "text/event-stream"),
        (auditor, "/api/v1/audit/export?kind=events&format=jsonl", "application/x-ndjson"),
        (auditor, "/api/v1/audit/export?kind=tickets&format=csv", "text/csv"),
    ]
    for who, url, media in cases:
        one = httpx.Client(
            base_url=portal.base_url,
            cookies=who.client.cookies,
            headers=dict(who.client.headers),
            limits=httpx.Limits(max_connections=1),  # the next request goes on the same connection
            timeout=20,
        )
        try:
            head = one.head(url)
            assert head.status_code == 200, (url, head.status_code)
            assert head.headers["content-type"].startswith(media), (url, head.headers)
            assert head.content == b""
            try:
                after = one.get("/healthz")
            except httpx.TimeoutException:
                pytest.fail(f"the connection stayed busy after HEAD {url}: the stream went on")
            assert after.status_code == 200
        finally:
            one.close()
