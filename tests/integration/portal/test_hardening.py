"""Portal hardening on a real server: security headers on every answer, CSRF on forms and
cookie-authenticated API calls, body size limit, languages, health and metrics, API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.portal_support import PortalServer, SignedIn, cookie_value, set_cookie_values, sign_in, start_anonymous

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]


def _address() -> str:
    return f"192.0.2.{secrets.randbelow(250) + 1}"


@pytest.fixture
def employee(portal: PortalServer) -> SignedIn:
    s = sign_in(portal, "employee", address=_address())
    yield s  # type: ignore[misc]
    s.client.close()


PAGES = [
    "/",
    "/me",
    "/me/tokens",
    "/signin",
    "/docs",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/me",
    "/api/v1/tokens",
    "/no-such-page",
    "/api/v1/no-such",
    "/static/portal.css",
    "/openapi.json",
]


@pytest.mark.parametrize("signed", [True, False], ids=["signed-in", "anonymous"])
def test_security_headers_on_every_answer(portal: PortalServer, signed: bool) -> None:
    s = sign_in(portal, "employee", address=_address()) if signed else None
    client = s.client if s else portal.client(_address())
    try:
        for path in PAGES:
            r = client.get(path)
            h = r.headers
            csp = h["content-security-policy"]
            assert "frame-ancestors 'none'" in csp, path
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
            assert "style-src 'self'" in csp, path
            assert h["x-frame-options"] == "DENY", path
            assert h["x-content-type-options"] == "nosniff", path
            assert h["referrer-policy"] == "no-referrer", path
            if not path.startswith("/static/"):
                assert h["cache-control"] == "no-store", path
            assert "server" not in h, path
            if "text/html" in h.get("content-type", ""):
                # no inline script or style anywhere (the CSP would block them)
                assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), path
                assert not re.search(r"\sstyle=", r.text), path
                assert "<style" not in r.text, path
                assert "Traceback" not in r.text
    finally:
        client.close()


def test_errors_are_json_under_api_and_pages_elsewhere(portal: PortalServer, employee: SignedIn) -> None:
    r = employee.get("/api/v1/no-such")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": "There is no page at this address."}}
    page = employee.get("/no-such-page")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "There is no page at this address." in page.text
    bad = employee.delete("/api/v1/tokens/not-a-number", headers={"X-CSRF-Token": employee.csrf})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_input"
    assert "not-a-number" not in bad.text  # the refused value is never echoed
    wrong_method = employee.put("/api/v1/me", headers={"X-CSRF-Token": employee.csrf})
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def _token_rows(portal: PortalServer, label: str) -> int:
    rows = portal.query("SELECT count(*) FROM portal_api_token WHERE label = :label", label=label)
    return int(rows[0][0])


@pytest.mark.parametrize(
    "forgery",
    ["missing", "wrong", "other-session", "pre-session", "twice", "header-wrong"],
)
def test_forged_csrf_is_refused_and_changes_nothing(portal: PortalServer, employee: SignedIn, forgery: str) -> None:
    label = f"forged-{forgery}-{secrets.token_hex(3)}"
    data: dict[str, Any] = {"label": label}
    headers: dict[str, str] = {}
    if forgery == "wrong":
        data["csrf_token"] = hashlib.sha256(b"guess").hexdigest()
    elif forgery == "other-session":
        other = sign_in(portal, "agent", address=_address())
        data["csrf_token"] = other.csrf
        other.client.close()
    elif forgery == "pre-session":
        anon, pre_csrf = start_anonymous(portal, _address())
        anon.close()
        data["csrf_token"] = pre_csrf
    elif forgery == "twice":
        data["csrf_token"] = [employee.csrf, "x"]
    elif forgery == "header-wrong":
        headers["X-CSRF-Token"] = "0" * 64
    r = employee.post("/me/tokens", data=data, headers=headers)
    assert r.status_code == 403
    assert "did not come from this site" in r.text
    assert _token_rows(portal, label) == 0
    api = employee.post("/api/v1/tokens", json={"label": label}, headers=headers)
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "csrf_failed"
    assert _token_rows(portal, label) == 0
    # the genuine token works (so the refusals above were about the token)
    ok = employee.post("/me/tokens", data={"label": label, "csrf_token": employee.csrf})
    assert ok.status_code == 201
    assert _token_rows(portal, label) == 1


def test_cross_site_form_without_cookies_is_refused(portal: PortalServer) -> None:
    with closing(portal.client(_address())) as c:
        r = c.post("/lang", data={"lang": "nl", "next": "/"})
        assert r.status_code == 403
        assert "fl_lang" not in r.headers.get("set-cookie", "")


def test_oversized_bodies_get_413_with_a_readable_message(portal: PortalServer, employee: SignedIn) -> None:
    big = "x" * (70 * 1024)
    r = employee.post("/me/tokens", data={"label": big, "csrf_token": employee.csrf})
    assert r.status_code == 413
    assert "The request is too large. At most 64 KB can be sent." in r.text
    api = employee.post("/api/v1/tokens", json={"label": big}, headers={"X-CSRF-Token": employee.csrf})
    assert api.status_code == 413
    assert api.json()["error"]["code"] == "too_large"
    assert _token_rows(portal, big) == 0

    # no Content-Length (chunked): counted as it arrives
    def chunks() -> Any:
        for _ in range(80):
            yield b"a" * 1024

    chunked = employee.post(
        "/api/v1/tokens", content=chunks(), headers={"X-CSRF-Token": employee.csrf, "Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    # a lying Content-Length is refused before the body is read
    with socket.create_connection(("127.0.0.1", int(portal.base_url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(b"POST /signin HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_wrong_types_and_hostile_strings_are_4xx(portal: PortalServer, employee: SignedIn) -> None:
    h = {"X-CSRF-Token": employee.csrf}
    for body in ({"label": 5}, {"label": ""}, {}, [], {"label": "a\u202eb"}, {"label": "x\x00y"}):
        r = employee.post("/api/v1/tokens", json=body, headers=h)
        assert r.status_code == 422, body
        assert set(r.json()["error"]) == {"code", "message"}
    r = employee.post("/api/v1/tokens", content=b"{not json", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422


def test_language_from_browser_switch_and_cookie(portal: PortalServer) -> None:
    with closing(portal.client(_address())) as c:
        assert ">Sign in</h1>" in c.get("/signin").text
        nl = c.get("/signin", headers={"Accept-Language": "nl-BE,nl;q=0.9,en;q=0.5"})
        assert ">Aanmelden</h1>" in nl.text and '<html lang="nl">' in nl.text
        assert ">Sign in</h1>" in c.get("/signin", headers={"Accept-Language": "de, en;q=0.5, nl;q=0.4"}).text
    client, csrf = start_anonymous(portal, _address())
    with closing(client):
        r = client.post("/lang", data={"lang": "nl", "next": "/signin", "csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/signin"
        header = set_cookie_values(r)["fl_lang"]
        assert "max-age=" in header.lower() and "samesite=lax" in header.lower()
        client.cookies.set("fl_lang", cookie_value(header))
        page = client.get("/signin", headers={"Accept-Language": "en"})  # the remembered choice wins
        assert ">Aanmelden</h1>" in page.text
        ignored = client.post("/lang", data={"lang": "xx", "next": "/signin", "csrf_token": csrf})
        assert "fl_lang" not in set_cookie_values(ignored)
    s = sign_in(portal, "employee", address=_address())
    s.client.cookies.set("fl_lang", "nl")
    home = s.get("/")
    assert "<h1>Wat is er aan de hand?</h1>" in home.text
    assert "Afmelden" in home.text
    s.client.close()


def test_health_readiness_and_metrics(portal: PortalServer) -> None:
    with closing(portal.client()) as c:  # from this machine: /metrics needs no token (test_http_surface.py)
        assert "set-cookie" not in c.get("/metrics").headers  # scrapers get no pre-session cookie
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "checks": {"database": "ok", "dispatcher": "ok"}}
        c.get("/signin")
        metrics = c.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        assert re.search(r'firstline_http_requests_total\{method="GET",route="/signin",status="200"\} \d', text)
        for name in ("firstline_runs_total", "firstline_run_duration_seconds", "firstline_queue_depth"):
            assert f"# TYPE {name.removesuffix('_total')}" in text


def test_readyz_reports_a_database_that_is_not_ready(portal_with: Any) -> None:
    server = portal_with()
    server.execute("UPDATE alembic_version SET version_num = 'elsewhere'")
    with closing(server.client()) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["database"] == "not ready (schema is not at the current revision)"
        assert c.get("/healthz").status_code == 200  # alive, just not ready
        server.execute("DROP TABLE alembic_version")
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["database"].startswith("not ready (")


def test_api_tokens_shown_once_stored_hashed_and_revocable(portal: PortalServer, employee: SignedIn) -> None:
    created = employee.post("/api/v1/tokens", json={"label": "my script"}, headers={"X-CSRF-Token": employee.csrf})
    assert created.status_code == 201
    token = created.json()["token"]
    token_id = created.json()["id"]
    assert token.startswith("fl_") and len(token) > 40
    listed = employee.get("/api/v1/tokens").json()
    assert token not in str(listed)
    assert any(t["id"] == token_id and not t["revoked"] for t in listed)
    assert token.encode() not in portal.stored_bytes()
    assert portal.query(
        "SELECT count(*) FROM portal_api_token WHERE token_sha256 = :digest",
        digest=hashlib.sha256(token.encode()).hexdigest(),
    ) == [(1,)]
    with closing(portal.client(_address(), headers={"Authorization": f"Bearer {token}"})) as bot:
        me = bot.get("/api/v1/me").json()
        assert me["account"] == "demo-employee@example.org" and me["via"] == "token"
        # Bearer calls need no CSRF token, but a token cannot mint tokens
        assert bot.post("/api/v1/tokens", json={"label": "child"}).status_code == 403
        # somebody else's token number: not found, and nothing revoked
        other = sign_in(portal, "agent", address=_address())
        assert other.delete(f"/api/v1/tokens/{token_id}", headers={"X-CSRF-Token": other.csrf}).status_code == 404
        other.client.close()
        assert bot.get("/api/v1/me").status_code == 200
        revoked = employee.delete(f"/api/v1/tokens/{token_id}", headers={"X-CSRF-Token": employee.csrf})
        assert revoked.status_code == 204
        gone = bot.get("/api/v1/me")
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_token"  # RFC 6750 3.1
    # a bad bearer never falls back to the session cookie
    bad = employee.get("/api/v1/me", headers={"Authorization": "Bearer fl_nonsense"})
    assert bad.status_code == 401
    # the page shows the new token once, then only its prefix
    page = employee.post("/me/tokens", data={"label": "page token", "csrf_token": employee.csrf})
    shown = re.search(r'id="new-token" type="text" readonly value="(fl_[^"]+)"', page.text)
    assert shown
    again = employee.get("/me/tokens").text
    assert shown.group(1) not in again and shown.group(1)[:10] in again
    events = {r[0] for r in portal.query("SELECT action FROM audit_event WHERE actor = 'demo-employee@example.org'")}
    assert {"portal.api_token_created", "portal.api_token_revoked"} <= events


def test_an_api_token_opens_no_page_and_cannot_make_its_successor_there(
    portal: PortalServer, employee: SignedIn
) -> None:
    """A token is for /api/v1: on the pages it counts for nothing, so it cannot open the token
    page and make itself a successor with a fresh expiry (renewing itself for ever)."""
    created = employee.post("/api/v1/tokens", json={"label": "script"}, headers={"X-CSRF-Token": employee.csrf})
    token = created.json()["token"]

    def made() -> int:
        return int(portal.query("SELECT count(*) FROM portal_api_token")[0][0])

    before = made()
    with closing(portal.client(_address(), headers={"Authorization": f"Bearer {token}"})) as bot:
        assert bot.get("/api/v1/me").json()["via"] == "token"  # the API still takes it
        minted = bot.post("/me/tokens", data={"label": "minted-by-token"})
        assert minted.status_code == 403 and "fl_" not in minted.text  # no CSRF exemption on a page
        for page in ("/me/tokens", "/me", "/kpi"):
            shown = bot.get(page)
            assert shown.status_code == 303 and shown.headers["location"].startswith("/signin"), page
    # a session and a token together: the page goes by the session, and still wants its CSRF token
    both = employee.post("/me/tokens", data={"label": "no-csrf"}, headers={"Authorization": f"Bearer {token}"})
    assert both.status_code == 403 and "did not come from this site" in both.text
    assert made() == before


def test_agent_only_route_gives_403_with_reason(portal: PortalServer, employee: SignedIn) -> None:
    # /api/v1/me is for everyone; the role check itself is unit-tested over the route table
    assert employee.get("/api/v1/me").status_code == 200
    anon = httpx.get(portal.base_url + "/api/v1/me")
    assert anon.status_code == 401
    assert anon.json()["error"] == {"code": "signin_required", "message": "Sign in first."}


def test_queue_depth_counts_queued_runs_at_each_scrape(portal_with: Any) -> None:
    server = portal_with()
    with closing(server.client()) as c:
        assert re.search(r"^firstline_queue_depth 0\.0$", c.get("/metrics").text, re.M)
        now = "2026-11-30T05:00:00.000000+00:00"
        for n in range(2):
            server.execute(
                "INSERT INTO ticket (requester, subject, channel, category, type, runbook, runbook_sha256, params, "
                "state, impact, urgency, priority, correlation_id, opened_at, updated_at, deadline_at) "
                "VALUES ('alice', 's', 'portal', 'c', 'request', 'account-unlock', :sha, '{}', 'queued', 3, 3, 4, "
                ":correlation, :now, :now, :now)",
                sha="0" * 64,
                correlation=f"00000000-0000-0000-0000-00000000000{n}",
                now=now,
            )
        assert re.search(r"^firstline_queue_depth 2\.0$", c.get("/metrics").text, re.M)


def _multipart(fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = "fl" + secrets.token_hex(8)
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("token", ["right", "wrong", "twice", "none"])
def test_a_form_sent_as_multipart_is_checked_by_its_csrf_field(
    portal: PortalServer, employee: SignedIn, token: str
) -> None:
    """A page form sent as ``multipart/form-data`` (as ``curl -F`` or a script sends one)
    with its ``csrf_token`` field: the field was only looked for in URL-encoded forms, so the
    right token was refused as "did not come from this site"; now it is read, and a wrong,
    repeated or missing one is still refused with nothing changed."""
    label = f"multipart-{token}-{secrets.token_hex(3)}"
    fields = [("label", label)]
    if token == "right":
        fields.append(("csrf_token", employee.csrf))
    elif token == "wrong":
        fields.append(("csrf_token", hashlib.sha256(b"guess").hexdigest()))
    elif token == "twice":
        fields += [("csrf_token", employee.csrf), ("csrf_token", employee.csrf)]
    body, kind = _multipart(fields)
    r = employee.post("/me/tokens", content=body, headers={"Content-Type": kind})
    if token == "right":
        assert r.status_code == 201, (r.status_code, r.text[:300])  # the token is shown once
        assert _token_rows(portal, label) == 1
    else:
        assert r.status_code == 403 and "did not come from this site" in r.text
        assert _token_rows(portal, label) == 0


URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_form_field_sent_twice_is_refused_not_the_last_one_taken(portal: PortalServer, employee: SignedIn) -> None:
    """``lang=nl&lang=en`` switched to English, ``label=first&label=second`` named the token
    "second", ``login=a&login=b`` asked a code for b: the form parser keeps the last value.
    Now each is 422 with nothing done."""
    label = f"twice-{secrets.token_hex(3)}"
    made = employee.post(
        "/me/tokens", content=f"csrf_token={employee.csrf}&label={label}&label=other".encode(), headers=URLENCODED
    )
    assert made.status_code == 422 and "Each field may be sent once" in made.text
    assert _token_rows(portal, label) == 0 and _token_rows(portal, "other") == 0
    switched = employee.post(
        "/lang", content=f"csrf_token={employee.csrf}&lang=nl&lang=en".encode(), headers=URLENCODED
    )
    assert switched.status_code == 422 and not any(n.endswith("fl_lang") for n in set_cookie_values(switched))
    anon, csrf = start_anonymous(portal, _address())
    try:
        for path, fields in (
            ("/reset", "login=alice&login=bob"),
            ("/unlock", "login=alice&login=bob"),
            ("/reset/code", "login=alice&code=1&code=2&new_password=x&new_password_again=x"),
        ):
            r = anon.post(path, content=f"csrf_token={csrf}&{fields}".encode(), headers=URLENCODED)
            assert r.status_code == 422 and "Each field may be sent once" in r.text, (path, r.status_code)
    finally:
        anon.close()
    once = employee.post("/me/tokens", data={"csrf_token": employee.csrf, "label": label})
    assert once.status_code == 201 and _token_rows(portal, label) == 1  # sent once, it works
