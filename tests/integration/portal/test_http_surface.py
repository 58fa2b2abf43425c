"""The portal's HTTP surface on a real server: a method an address does not take is 405 with
``Allow`` before any CSRF check; unknown body and form fields are refused with 422 before
anything runs; ``/metrics`` is for this machine or the scrape token only; error messages
that carry a value are Dutch when the portal speaks Dutch."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.portal_support import PortalServer, SignedIn, cookie_value, set_cookie_values, sign_in, start_anonymous

pytestmark = pytest.mark.integration

ERROR_TEXT = re.compile(r'notice-error" role="alert"><p>(.*?)</p>', re.S)


def _address() -> str:
    return f"192.0.2.{secrets.randbelow(250) + 1}"


@pytest.fixture(scope="module")
def people(portal: PortalServer) -> Iterator[dict[str, SignedIn]]:
    made = {role: sign_in(portal, role, address=_address()) for role in ("employee", "agent")}
    yield made
    for s in made.values():
        s.client.close()


def _tickets(portal: PortalServer) -> int:
    return int(portal.query("SELECT count(*) FROM ticket")[0][0])


def _reset_client(portal: PortalServer) -> tuple[httpx.Client, dict[str, str]]:
    """An anonymous client with the pre-session cookie and CSRF header of ``/api/v1/reset/policy``."""
    client = portal.client(_address())
    policy = client.get("/api/v1/reset/policy")
    for name, header in set_cookie_values(policy).items():
        client.cookies.set(name, cookie_value(header))  # Secure: httpx keeps it from http by itself
    return client, {"X-CSRF-Token": policy.json()["csrf_token"]}


def _page_error(html: str) -> str:
    found = ERROR_TEXT.search(html)
    assert found, html[:2000]
    return found.group(1)


# --- 1. a method the address does not take: 405 + Allow, before the CSRF check -------------

WRONG_METHODS = [
    ("PUT", "/signin", "GET, HEAD, POST"),
    ("DELETE", "/signin", "GET, HEAD, POST"),
    ("PATCH", "/signin", "GET, HEAD, POST"),
    ("PUT", "/lang", "POST"),
    ("DELETE", "/reset/code", "GET, HEAD, POST"),
    ("POST", "/healthz", "GET, HEAD"),
    ("POST", "/metrics", "GET, HEAD"),
    ("PUT", "/api/v1/me", "GET, HEAD"),
    ("PATCH", "/api/v1/tokens", "GET, HEAD, POST"),
    ("GET", "/api/v1/tokens/1", "DELETE"),
    ("HEAD", "/api/v1/tokens/1", "DELETE"),
    ("HEAD", "/lang", "POST"),
    ("PUT", "/api/v1/reset/confirm", "POST"),
    ("DELETE", "/api/v1/fixes/account-unlock", "POST"),
    ("PUT", "/fix/account-unlock", "GET, HEAD, POST"),
    ("PATCH", "/agent/fixes/account-unlock", "POST"),
    ("POST", "/static/portal.css", "GET, HEAD"),
]


@pytest.mark.parametrize(("method", "path", "allow"), WRONG_METHODS)
def test_a_method_the_address_does_not_take_is_405_with_allow(
    portal: PortalServer, method: str, path: str, allow: str
) -> None:
    with closing(portal.client(_address())) as c:  # no cookie, no CSRF token
        r = c.request(method, path, content=b"x=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 405, (method, path, r.status_code, r.text[:300])
    assert r.headers["allow"] == allow
    if method == "HEAD":  # the same answer, without its body
        assert r.content == b"" and r.headers["content-type"].startswith(("text/html", "application/json"))
        return
    message = f"This address does not accept {method} requests; it accepts {allow}."
    if path.startswith("/api/") or path == "/metrics":  # /metrics answers scrapers in JSON
        assert r.json() == {"error": {"code": "method_not_allowed", "message": message}}
    else:
        assert "text/html" in r.headers["content-type"]
        assert message in r.text and "<h1" in r.text


def test_every_address_of_the_api_document_answers_405_for_a_method_it_does_not_take(portal: PortalServer) -> None:
    schema = httpx.get(portal.base_url + "/openapi.json").json()
    checked = 0
    with closing(portal.client(_address())) as c:
        for template, operations in schema["paths"].items():
            path = re.sub(r"\{[^}]+\}", "1", template)
            taken = {m.upper() for m in operations}
            taken |= {"HEAD"} if "GET" in taken else set()  # answered wherever GET is
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                if method in taken:
                    continue
                r = c.request(method, path)
                assert r.status_code == 405, (method, path, r.status_code, r.text[:200])
                assert set(r.headers["allow"].split(", ")) == taken, (method, path)
                checked += 1
    assert checked > 50


def test_a_wrong_method_changes_nothing_even_signed_in(portal: PortalServer, people: dict[str, SignedIn]) -> None:
    employee = people["employee"]
    before = employee.get("/api/v1/tokens").json()
    for method in ("PUT", "PATCH"):  # with a valid CSRF token as well: still not a way to create one
        r = employee.request(method, "/api/v1/tokens", json={"label": "x"}, headers={"X-CSRF-Token": employee.csrf})
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    r = employee.request("PUT", "/me/tokens", data={"label": "x"})
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    assert employee.get("/api/v1/tokens").json() == before


def test_a_method_the_address_takes_keeps_its_csrf_check(portal: PortalServer, people: dict[str, SignedIn]) -> None:
    with closing(portal.client(_address())) as c:
        r = c.post("/signin", data={"username": "demo-employee", "password": "x"})
        assert r.status_code == 403 and "This form has expired" in r.text
    employee = people["employee"]
    r = employee.post("/api/v1/tokens", json={"label": "forged"})  # cookie, no X-CSRF-Token
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = employee.post("/api/v1/tokens", json={"label": "forged"}, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = employee.delete("/api/v1/tokens/1")
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = employee.post("/me/tokens", data={"label": "forged", "csrf_token": "0" * 64})
    assert r.status_code == 403
    assert all(t["label"] != "forged" for t in employee.get("/api/v1/tokens").json())


def test_an_address_no_route_serves_is_404_whatever_the_method(portal: PortalServer) -> None:
    with closing(portal.client(_address())) as c:
        for method in ("POST", "PUT", "DELETE"):
            r = c.request(method, "/api/v1/no-such")
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", method
            assert c.request(method, "/no-such-page").status_code == 404


def test_the_405_message_is_dutch_when_the_portal_speaks_dutch(portal: PortalServer) -> None:
    with closing(portal.client(_address(), headers={"Accept-Language": "nl"})) as c:
        r = c.put("/api/v1/me")
        assert r.json()["error"]["message"] == "Dit adres neemt geen PUT-verzoeken aan; het neemt GET, HEAD aan."
        c.cookies.set("fl_lang", "nl")
        assert "Dit adres neemt geen DELETE-verzoeken aan; het neemt GET, HEAD, POST aan." in c.delete("/signin").text


# --- 2. unknown fields are refused, before anything runs -----------------------------------


def test_a_misspelt_field_of_a_one_click_fix_is_refused_before_a_ticket(
    portal: PortalServer, people: dict[str, SignedIn]
) -> None:
    agent = people["agent"]
    before = _tickets(portal)
    body = {"reason": "x", "user": "demo-employee", "directory": "corp", "userr": "typo"}
    r = agent.post("/api/v1/fixes/account-unlock", json=body, headers={"X-CSRF-Token": agent.csrf})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == {
        "code": "invalid_input",
        "message": "userr: is not a field of this request (did you mean user?); "
        "the fields it takes: reason, user, directory, choice, on_behalf_of",
    }
    assert _tickets(portal) == before


@pytest.mark.parametrize(
    ("role", "path", "body", "named"),
    [
        ("employee", "/api/v1/runs", {"runbook": "account-unlock", "params": {}, "parms": {}}, "parms"),
        ("employee", "/api/v1/tokens", {"label": "ok", "lable": "typo"}, "lable"),
        ("agent", "/api/v1/fixes/printer-queue-clear", {"reason": "x", "choice": "office-1", "choise": "a"}, "choise"),
        (None, "/api/v1/reset/request", {"login": "demo-employee", "purpose": "unlock", "purpse": "x"}, "purpse"),
        (
            None,
            "/api/v1/reset/confirm",
            {"login": "demo-employee", "code": "1", "purpose": "unlock", "cod": "1"},
            "cod",
        ),
    ],
)
def test_every_json_body_refuses_unknown_fields(
    portal: PortalServer, people: dict[str, SignedIn], role: str | None, path: str, body: dict[str, Any], named: str
) -> None:
    tickets, tokens = _tickets(portal), portal.query("SELECT count(*) FROM portal_api_token")
    if role is None:
        client, headers = _reset_client(portal)
    else:
        client, headers = people[role].client, {"X-CSRF-Token": people[role].csrf}
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith(f"{named}: is not a field of this request (did you mean "), message
    assert "the fields it takes: " in message
    assert _tickets(portal) == tickets
    assert portal.query("SELECT count(*) FROM portal_api_token") == tokens
    if role is None:
        client.close()


def test_an_unknown_key_that_resembles_no_field_is_not_shown_back(portal: PortalServer) -> None:
    secret = "Hunter2Secret" + secrets.token_hex(4)
    client, headers = _reset_client(portal)
    with closing(client):
        r = client.post("/api/v1/reset/request", json={"login": "demo-employee", secret: "x"}, headers=headers)
        many = {"login": "demo-employee", **{f"{secret}{n}": "x" for n in range(500)}}
        again = client.post("/api/v1/reset/request", json=many, headers=headers)
    assert r.status_code == 422
    assert secret not in r.text
    assert r.json()["error"]["message"] == (
        "?: is not a field of this request; the fields it takes: login, purpose, pow_challenge, pow_nonce"
    )
    assert again.status_code == 422 and again.json()["error"]["message"].count("is not a field") == 1  # said once


def test_the_api_document_says_no_request_body_takes_other_fields(portal: PortalServer) -> None:
    schema = httpx.get(portal.base_url + "/openapi.json").json()
    bodies = []
    for operations in schema["paths"].values():
        for op in operations.values():
            media = op.get("requestBody", {}).get("content", {}).get("application/json")
            if media is not None:  # forms: the fix forms check their fields themselves (test above)
                bodies.append(media["schema"]["$ref"].rsplit("/", 1)[1])
    assert len(bodies) >= 5
    for name in bodies:
        assert schema["components"]["schemas"][name].get("additionalProperties") is False, name


def test_the_fix_forms_refuse_unknown_fields(portal: PortalServer, people: dict[str, SignedIn]) -> None:
    before = _tickets(portal)
    agent = people["agent"]
    r = agent.post(
        "/agent/fixes/printer-queue-clear",
        data={"csrf_token": agent.csrf, "reason": "stuck", "choise": "office-1"},
    )
    assert r.status_code == 422
    assert _page_error(r.text) == (
        "choise: is not a field of this request (did you mean choice?); "
        "the fields it takes: reason, user, directory, choice, on_behalf_of"
    )
    employee = people["employee"]
    r = employee.post("/fix/printer-queue-clear", data={"csrf_token": employee.csrf, "printr": "office-1"})
    assert r.status_code == 422
    assert _page_error(r.text) == (
        "printr: is not a field of this request (did you mean printer?); the fields it takes: printer"
    )
    assert _tickets(portal) == before


# --- 3. /metrics: this machine, or the scrape token ----------------------------------------


def test_metrics_are_for_this_machine_when_no_token_is_set(portal: PortalServer) -> None:
    with closing(portal.client()) as local:  # the test talks from 127.0.0.1 itself
        assert local.get("/metrics").status_code == 200
    with closing(portal.client("127.0.0.1")) as via_proxy:  # a trusted proxy says: loopback
        assert via_proxy.get("/metrics").status_code == 200
    with closing(portal.client(_address())) as remote:
        r = remote.get("/metrics")
        assert r.status_code == 403
        assert r.json()["error"]["message"].startswith("The metrics are served to this machine only.")
        assert "firstline_" not in r.text
        assert remote.get("/healthz").status_code == 200  # these stay open
        assert remote.get("/readyz").status_code == 200
        for lang in ("nl",):
            r = remote.get("/metrics", headers={"Accept-Language": lang})
            assert r.json()["error"]["message"].startswith("De metrics zijn alleen voor deze machine.")


def test_a_client_cannot_pass_for_loopback(portal: PortalServer, portal_with: Any) -> None:
    # behind the trusted proxy, a remote client's own "127.0.0.1" is left of the hop the proxy adds
    with closing(portal.client("127.0.0.1, 203.0.113.9")) as c:
        assert c.get("/metrics").status_code == 403
    server = portal_with(trusted_proxies=[])  # no trusted proxy: the header is not believed at all
    with closing(server.client("203.0.113.9")) as c:
        assert c.get("/metrics").status_code == 200  # the peer itself is loopback


def test_metrics_need_the_token_when_one_is_set(portal_with: Any) -> None:
    token = "mt-" + secrets.token_urlsafe(24)
    server = portal_with(metrics_token=token)
    with closing(server.client()) as local, closing(server.client(_address())) as remote:
        for c in (local, remote):  # with a token set, loopback is no exception
            r = c.get("/metrics")
            assert r.status_code == 401, r.text
            assert r.headers["www-authenticate"] == 'Bearer realm="metrics"'
            assert r.json()["error"]["message"] == (
                "The metrics need the scrape token: send it as Authorization: Bearer <token>."
            )
            for wrong in ("Bearer " + token[:-1], "Bearer " + token + "x", "Basic " + token, token):
                assert c.get("/metrics", headers={"Authorization": wrong}).status_code == 401, wrong
            for right in ("Bearer " + token, "bearer " + token):
                r = c.get("/metrics", headers={"Authorization": right})
                assert r.status_code == 200 and "firstline_http_requests_total" in r.text
            assert c.get("/healthz").status_code == 200
    server.stop()
    assert token not in server.log.read_text()
    assert token.encode() not in server.stored_bytes()


def test_a_metrics_token_too_short_to_be_safe_stops_the_start(portal_with: Any) -> None:
    with pytest.raises(RuntimeError, match=r"(?i)metrics_token") as refused:
        portal_with(metrics_token="tooShortToken")
    assert "tooShortToken" not in str(refused.value)


# --- 4. messages that carry a value are Dutch in Dutch --------------------------------------


def test_runner_messages_with_values_are_dutch(portal: PortalServer, people: dict[str, SignedIn]) -> None:
    agent, employee = people["agent"], people["employee"]
    nl = {"Accept-Language": "nl"}
    r = agent.post("/api/v1/fixes/no-such", json={"reason": "x"}, headers={"X-CSRF-Token": agent.csrf, **nl})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == (
        "Er is geen oplossing met één klik met die naam. De oplossingen zijn: "
        "account-unlock, password-reset, printer-queue-clear, service-restart, disk-cleanup."
    )
    body = {"reason": "x", "user": "nobody-" + secrets.token_hex(3), "directory": "corp"}
    r = agent.post("/api/v1/fixes/account-unlock", json=body, headers={"X-CSRF-Token": agent.csrf, **nl})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "Er is geen account met die naam in Example Org (OpenLDAP)"
    r = agent.post(
        "/api/v1/fixes/printer-queue-clear",
        json={"reason": "x", "choice": "nope"},
        headers={"X-CSRF-Token": agent.csrf, **nl},
    )
    assert r.json()["error"]["message"].startswith("Kies een van de aangeboden mogelijkheden (")
    r = employee.post(
        "/api/v1/runs",
        json={"runbook": "printer-queue-clear", "params": {"printer": "nope"}},
        headers={"X-CSRF-Token": employee.csrf, **nl},
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("parameter 'printer' moet een van de aangeboden keuzes zijn: ")
    r = employee.post(
        "/api/v1/runs",
        json={"runbook": "account-unlock", "params": {"bogus": "1"}},
        headers={"X-CSRF-Token": employee.csrf, **nl},
    )
    assert r.json()["error"]["message"].startswith("onbekende parameter(s): bogus; dit runbook neemt: ")
    r = agent.post(
        "/api/v1/fixes/account-unlock",
        json={"reason": "x", "userr": "a", "user": "a", "directory": "corp"},
        headers={"X-CSRF-Token": agent.csrf, **nl},
    )
    assert r.json()["error"]["message"].startswith("userr: is geen veld van dit verzoek (bedoelt u user?); ")


def test_pages_show_runner_messages_with_values_in_dutch(portal: PortalServer) -> None:
    agent = sign_in(portal, "agent", address=_address())
    employee = sign_in(portal, "employee", address=_address())
    try:
        for s in (agent, employee):
            s.client.cookies.set("fl_lang", "nl")
        r = agent.post(
            "/agent/fixes/printer-queue-clear",
            data={"csrf_token": agent.csrf, "reason": "vast", "choice": "office-1", "on_behalf_of": "not valid!"},
        )
        assert r.status_code == 422
        assert _page_error(r.text).startswith("Namens is geen geldige accountnaam (letters, cijfers")
        r = employee.post("/fix/printer-queue-clear", data={"csrf_token": employee.csrf, "printer": "nope"})
        assert r.status_code == 422
        assert _page_error(r.text).startswith("parameter &#39;printer&#39; moet een van de aangeboden keuzes zijn")
        r = agent.get("/kpi?since=2025-01-01T00:00Z&until=2026-11-30T00:00Z")
        assert "de periode is te lang: hoogstens 366 dagen" in r.text
    finally:
        agent.client.close()
        employee.client.close()


def test_an_anonymous_form_with_dutch_cookie_gets_dutch_405(portal: PortalServer) -> None:
    client, _csrf = start_anonymous(portal, _address())
    with closing(client):
        client.cookies.set("fl_lang", "nl")
        r = client.patch("/reset")
        assert r.status_code == 405
        assert "Dit adres neemt geen PATCH-verzoeken aan; het neemt GET, HEAD, POST aan." in r.text


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_the_tokens_page_shows_the_header_with_its_placeholder(people: dict[str, SignedIn], lang: str) -> None:
    """``<token>`` in the message was sent as an HTML tag: "Authorization: Bearer ." on screen."""
    page = people["employee"].get("/me/tokens", headers={"Accept-Language": lang})
    assert page.status_code == 200
    assert "Authorization: Bearer &lt;token&gt;." in page.text and "<token>" not in page.text
