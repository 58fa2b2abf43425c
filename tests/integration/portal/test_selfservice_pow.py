"""Proof of work on the self-service request (security.md item 5) over HTTP, real portal + lab.

After ``reset_pow_after`` requests from one client address within the hour, the next one
needs a solved server-issued puzzle (runner/pow.py); the test solves it as the browser's
pow.js does. The answer without a solution is the same for known and unknown logins
(item 1); a solution works once; a forged, altered or foreign one is refused; other
addresses are not affected; the page says what to do without JavaScript.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runner.pow import solve
from tests.integration.portal.test_selfservice import Anon, address, audit, wait_audit, wait_for_code
from tests.portal_support import PortalServer

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
TOKEN = re.compile(r"v1\.[0-9a-f]{32}\.\d{1,2}\.\d{1,12}\.[0-9a-f]{32}")


def challenge_of(html: str) -> tuple[str, int]:
    found = re.search(r'data-pow-challenge="([^"]+)" data-pow-bits="(\d+)"', html)
    assert found, "the page carries no challenge"
    return found.group(1), int(found.group(2))


def normal(r: httpx.Response, csrf: str) -> tuple[int, str, dict[str, str]]:
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "content-length", "set-cookie")}
    return r.status_code, TOKEN.sub("CHALLENGE", r.text.replace(csrf, "CSRF")), headers


def codes_sent(server: PortalServer) -> int:
    return len(audit(server, "selfservice.code_sent")) + len(audit(server, "selfservice.code_not_sent"))


def test_puzzle_after_n_requests_per_address_same_for_every_login_and_single_use(
    portal_with: Callable[..., PortalServer], ldap_users: Any
) -> None:
    server = portal_with(reset_pow_after=2, reset_pow_bits=12)
    known, _ = ldap_users.create_user()
    other, _ = ldap_users.create_user()
    unknown = "nobody-pow-" + address().replace(".", "")
    a = Anon(server, address())
    try:
        page = a.client.get("/reset")
        assert "data-pow-challenge" not in page.text and "pow.js" not in page.text  # no puzzle at first
        assert a.request_code(known).status_code == 303
        assert a.request_code(unknown, "unlock").status_code == 303
        assert wait_audit(server, ("selfservice.code_sent", "selfservice.code_not_sent"), f"corp:{known}", 1)
        wait_for_code(known)
        # the third request from this address: a puzzle, the same answer whatever the login
        before = codes_sent(server)
        answers = {login: a.request_code(login) for login in (known, unknown, "root-admin", "*)(uid=*")}
        first = normal(answers[known], a.csrf)
        assert first[0] == 429
        for login, r in answers.items():
            assert normal(r, a.csrf) == first, login
        html = answers[known].text
        assert "pow.js" in html and 'name="pow_nonce"' in html
        assert re.search(r"<noscript>.*JavaScript.*service desk.*</noscript>", html, re.S)  # the no-JS way out
        assert ".invalid" not in html and "cdn" not in html.lower()
        # a GET of the form now carries a challenge too
        assert "data-pow-challenge" in a.client.get("/unlock").text
        # nothing was counted, looked up or sent for the refused requests
        assert codes_sent(server) == before
        assert len(server.query("SELECT 1 FROM selfservice_request WHERE key LIKE 'acct:%'")) == 2
        # solved: accepted and a code goes out
        token, bits = challenge_of(html)
        nonce = solve(token, bits)
        r = a.post("/reset", login=other, pow_challenge=token, pow_nonce=nonce)
        assert r.status_code == 303 and "a code is on its way" in a.follow(r).text
        wait_for_code(other)
        # the same solution again (any login): refused, nothing sent
        for login in (other, unknown):
            again = a.post("/reset", login=login, pow_challenge=token, pow_nonce=nonce)
            assert again.status_code == 429, login
        # forged / altered / wrong: refused
        fresh, fresh_bits = challenge_of(a.client.get("/reset").text)
        good = solve(fresh, fresh_bits)
        parts = fresh.split(".")
        easier = ".".join([*parts[:2], "1", *parts[3:]])
        for bad_token, bad_nonce in ((fresh, "x"), (easier, solve(easier, 1)), (fresh, "")):
            assert a.post("/reset", login=other, pow_challenge=bad_token, pow_nonce=bad_nonce).status_code == 429
        # a puzzle solved for this address does not work from another over-limit address
        b = Anon(server, address())
        try:
            for user in (unknown, unknown):
                assert b.request_code(user).status_code == 303
            assert b.post("/reset", login=other, pow_challenge=fresh, pow_nonce=good).status_code == 429
        finally:
            b.close()
        # and is still good once, here
        assert a.post("/reset", login=unknown, pow_challenge=fresh, pow_nonce=good).status_code == 303
        # other addresses are not affected
        c = Anon(server, address())
        try:
            assert c.request_code(unknown).status_code == 303
        finally:
            c.close()
        used = server.query("SELECT COUNT(*) FROM selfservice_request WHERE key LIKE 'pow:%'")[0][0]
        assert used == 2  # the replay records
    finally:
        a.close()


def test_api_puzzle_from_policy_same_refusal_for_every_login_and_single_use(
    portal_with: Callable[..., PortalServer], ldap_users: Any
) -> None:
    server = portal_with(reset_pow_after=1, reset_pow_bits=12)
    known, _ = ldap_users.create_user()
    a = Anon(server, address())
    try:
        hdr = {"X-CSRF-Token": a.csrf}
        assert a.client.get("/api/v1/reset/policy").json()["pow_challenge"] is None
        assert a.client.post("/api/v1/reset/request", json={"login": known}, headers=hdr).status_code == 202
        refusals = set()
        for login in (known, "nobody-api-pow", "root-admin"):
            r = a.client.post("/api/v1/reset/request", json={"login": login}, headers=hdr)
            assert r.status_code == 429
            assert r.json()["error"]["code"] == "proof_of_work_required"
            refusals.add(r.text)
        assert len(refusals) == 1
        policy = a.client.get("/api/v1/reset/policy").json()
        token, bits = policy["pow_challenge"], policy["pow_bits"]
        assert TOKEN.fullmatch(token) and bits == 12
        body = {"login": known, "pow_challenge": token, "pow_nonce": solve(token, bits)}
        assert a.client.post("/api/v1/reset/request", json=body, headers=hdr).status_code == 202
        assert a.client.post("/api/v1/reset/request", json=body, headers=hdr).status_code == 429  # replay
        wait_for_code(known, count=2)
    finally:
        a.close()
