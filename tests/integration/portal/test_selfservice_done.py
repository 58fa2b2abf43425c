"""The self-service outcome is POST/redirect/GET, over HTTP on the real portal, slapd and SMTP sink.

Redeeming a code (``POST /reset/code``, ``POST /unlock/code``) answers ``303`` to
``GET /reset/done`` / ``GET /unlock/done`` with a short-lived signed ``fl_done`` cookie: a
reload (or back/forward) of the outcome shows the same page and redeems nothing again; no
password or code is in the address, the cookie or the page; another browser, or a cookie
changed by hand, gets the code form instead of someone's outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.directory.helpers import mails_to
from tests.integration.portal.test_selfservice import Anon, address, anon, good_password, wait_for_code
from tests.portal_support import PortalServer, cookie_value, set_cookie_values

pytestmark = pytest.mark.both_databases

__all__ = ["anon"]  # the fixture, imported for its use here

NOTICE = {"reset": "password_reset", "unlock": "account_unlock"}


def _ledger(portal: PortalServer, login: str, ip: str) -> tuple[int, int]:
    """(tickets for *login*, audit events from the browser's address)."""
    tickets = portal.query("SELECT COUNT(*) FROM ticket WHERE requester = :r", r=f"{login}@example.org")
    events = portal.query("SELECT COUNT(*) FROM audit_event WHERE client_ip = :ip", ip=ip)
    return int(tickets[0][0]), int(events[0][0])


def _settled(portal: PortalServer, login: str, ip: str, purpose: str) -> tuple[int, int]:
    """The ledger counts once the run's after-work (the confirmation mail) is done."""
    deadline = time.monotonic() + 15
    while NOTICE[purpose] not in [str(m["X-Firstline-Kind"]) for m in mails_to(f"{login}@example.org", wait=0.2)]:
        assert time.monotonic() < deadline, "no confirmation mail"
        time.sleep(0.1)
    time.sleep(0.5)
    return _ledger(portal, login, ip)


@pytest.mark.parametrize("purpose", ["reset", "unlock"])
def test_the_outcome_is_a_get_page_that_a_reload_does_not_redeem_again(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon], purpose: str
) -> None:
    user, old = ldap_users.create_user()
    if purpose == "unlock":
        ldap_users.lock(user)
    ip = address()
    a = anon(addr=ip)
    a.ask(user, purpose)
    code = wait_for_code(user)
    new = good_password() if purpose == "reset" else None
    secrets_typed = [code, f"{code[:4]} {code[4:]}"] + ([new] if new else [])

    answer = a.confirm(user, code, new)
    assert answer.status_code == 303, answer.text[:500]
    assert answer.headers["location"] == f"/{purpose}/done" and answer.text == ""
    assert answer.headers["referrer-policy"] == "no-referrer" and answer.headers["cache-control"] == "no-store"
    done = next(h for n, h in set_cookie_values(answer).items() if n.endswith("fl_done"))
    assert "HttpOnly" in done and "SameSite=Lax" in done and f"Path=/{purpose}/done;" in done and "Max-Age=" in done
    for secret in secrets_typed:
        assert secret not in answer.headers["location"] and secret not in done
    assert user not in done  # only the purpose, the ticket id, an expiry and a signature

    page = a.follow(answer)
    assert page.status_code == 200, page.text[:500]
    number = f"FL-{int(cookie_value(done).split('.')[1]):06d}"
    assert f"<strong>{number}</strong>" in page.text and "<h1>Fixed</h1>" in page.text
    assert ("Your new password is set" if purpose == "reset" else "Your account can be used again") in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    for secret in secrets_typed:
        assert secret not in page.text and secret not in str(page.url)
    if new:
        assert ldap_users.bind_ok(user, new) and not ldap_users.bind_ok(user, old)
    else:
        assert ldap_users.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False

    ledger = _settled(portal, user, ip, purpose)
    assert ledger[0] == 1
    directory = ldap_users.state_attrs(user)
    # reload (twice), and the same page in Dutch: nothing is redeemed, run or spent again
    for _ in range(2):
        again = a.client.get(f"/{purpose}/done")
        assert again.status_code == 200 and again.text == page.text
    nl = a.client.get(f"/{purpose}/done", headers={"Accept-Language": "nl"})
    assert nl.status_code == 200 and "<h1>Opgelost</h1>" in nl.text and f"<strong>{number}</strong>" in nl.text
    time.sleep(1.0)
    assert _ledger(portal, user, ip) == ledger
    assert ldap_users.state_attrs(user) == directory
    kinds = [str(m["X-Firstline-Kind"]) for m in mails_to(f"{user}@example.org")]
    assert kinds.count(NOTICE[purpose]) == 1 and kinds.count(f"code_{purpose}") == 1

    # nobody else reads it: another browser, this cookie in another browser, a changed ticket id
    other = anon()
    assert other.client.get(f"/{purpose}/done").status_code == 303
    other.client.cookies.set("fl_done", cookie_value(done))
    other.client.cookies.set("__Secure-fl_done", cookie_value(done))
    stolen = other.client.get(f"/{purpose}/done")
    assert stolen.status_code == 303 and stolen.headers["location"] == f"/{purpose}/code" and number not in stolen.text
    kind, ticket, expires, mac = cookie_value(done).split(".")
    done_name = next(n for n in set_cookie_values(answer) if n.endswith("fl_done"))
    for odd in (f"{kind}.{ticket}.\u00b2.{mac}", f"{kind}.\u00b9.{expires}.{mac}"):
        # "²".isdigit() is true and int() refuses it: was a 500; sent as the raw bytes a browser would
        jar = "; ".join(f"{c.name}={c.value}" for c in a.client.cookies.jar if c.name != done_name)
        raw = f"{jar}; {done_name}={odd}".encode("latin-1")
        b = portal.client(ip)
        assert b.get(f"/{purpose}/done", headers={"Cookie": raw}).status_code == 303
        b.close()
    for forged in (f"{kind}.{int(ticket) - 1}.{expires}.{mac}", f"{kind}.{ticket}.{int(expires) + 999}.{mac}"):
        b = portal.client(ip, cookies=a.client.cookies)
        b.cookies.set(next(n for n in set_cookie_values(answer) if n.endswith("fl_done")), forged)
        assert b.get(f"/{purpose}/done").status_code == 303
        b.close()
    other_purpose = "unlock" if purpose == "reset" else "reset"
    assert a.client.get(f"/{other_purpose}/done").status_code == 303


def test_a_form_with_an_error_still_answers_at_the_post_address(
    portal: PortalServer, ldap_users: Any, anon: Callable[..., Anon]
) -> None:
    user, _ = ldap_users.create_user()
    a = anon()
    a.ask(user)
    code = wait_for_code(user)
    wrong = a.confirm(user, "00000000", good_password())
    assert wrong.status_code == 400 and "not valid" in wrong.text and 'id="new_password"' in wrong.text
    weak = a.confirm(user, code, "Qzvw7Jx")
    assert weak.status_code == 422 and 'id="new_password"' in weak.text and "Qzvw7Jx" not in weak.text
    assert a.confirm(user, code, good_password()).status_code == 303  # the code was kept
