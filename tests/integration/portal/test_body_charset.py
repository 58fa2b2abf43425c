"""A body is read only as UTF-8, and an address with a final ``/`` is never redirected to the
``Host`` the client named (``portal.security.body_not_utf8``, ``RouteTable.slashless``).

Found by a tester: ``POST /api/v1/reset/confirm`` with ``Content-Type: application/json;
charset=latin-1`` and the Latin-1 bytes of ``Zebra-Ã©-Lamp`` answered "the password was
reset" — to ``Zebra-é-Lamp``, which the client never sent (the JSON parser reads UTF-8
whatever is declared, and guesses UTF-16 from NUL bytes). And ``POST /api/v1/runs/`` with
``Host: evil.example.com`` answered 307 to ``http://evil.example.com/api/v1/runs``: a client
following it with its token and body (a new password, a code) sent them there.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from ldap3 import Connection

from tests.integration.portal.test_selfservice import Anon, good_password, wait_for_code
from tests.portal_support import PortalServer, SignedIn

pytestmark = [pytest.mark.integration]

JSON_REFUSAL = "The request body could not be read: it was not sent as UTF-8 text"


def _tickets(portal: PortalServer) -> int:
    return int(portal.query("SELECT COUNT(*) FROM ticket")[0][0])


def _post_run(person: SignedIn, body: bytes, content_type: str) -> httpx.Response:
    answer: httpx.Response = person.post(
        "/api/v1/runs",
        content=body,
        headers={"Content-Type": content_type, "X-CSRF-Token": person.csrf},
    )
    return answer


RUN = {"runbook": "account-status", "params": {}}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps(RUN).encode("latin-1"), "application/json; charset=latin-1"),
        (json.dumps(RUN).encode("latin-1"), "application/json; charset=ISO-8859-1"),
        (json.dumps(RUN).encode("utf-16"), "application/json; charset=utf-16"),
        (json.dumps(RUN).encode("utf-16"), "application/json"),  # with its BOM
        (json.dumps(RUN).encode("utf-16-le"), "application/json"),  # without: NUL bytes
        (json.dumps(RUN).encode("utf-32"), "application/json"),
        (b'{"runbook": "account-status", "params": {}, "x": "\xe9"}', "application/json"),
        (json.dumps(RUN).encode(), 'application/json; Charset="windows-1252"'),
        (json.dumps(RUN).encode("utf-16-le"), ""),  # no Content-Type at all
    ],
)
def test_a_json_body_that_is_not_utf8_is_refused_and_starts_nothing(
    portal: PortalServer, signed_in: Any, body: bytes, content_type: str
) -> None:
    employee: SignedIn = signed_in("employee")
    before = _tickets(portal)
    answer = _post_run(employee, body, content_type)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_input"
    assert answer.json()["error"]["message"].startswith(JSON_REFUSAL)
    assert _tickets(portal) == before
    dutch = employee.post(
        "/api/v1/runs",
        content=body,
        headers={"Content-Type": content_type, "X-CSRF-Token": employee.csrf, "Accept-Language": "nl"},
    )
    assert dutch.status_code == 422 and "niet als UTF-8-tekst verstuurd" in dutch.json()["error"]["message"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/json;charset=UTF8"]
)
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_utf8_json_with_or_without_a_byte_order_mark_is_read(
    portal: PortalServer, signed_in: Any, content_type: str, bom: bytes
) -> None:
    employee: SignedIn = signed_in("employee")
    answer = _post_run(employee, bom + json.dumps(RUN).encode(), content_type)
    assert answer.status_code == 201, answer.text


def test_a_latin1_password_is_not_set_as_if_it_were_utf8(portal: PortalServer, ldap_users: Any) -> None:
    """The tester's case, end to end: the code stays usable, the password unchanged."""
    user, password = ldap_users.create_user()
    anon = Anon(portal)
    assert anon.request_code(user).status_code == 303
    code = wait_for_code(user)
    typed = "Zebra-Ã©-Lamp-42-river"  # what the client means, sent as Latin-1
    body = json.dumps(
        {"login": user, "code": code, "purpose": "reset", "new_password": typed}, ensure_ascii=False
    ).encode("latin-1")
    answer = anon.client.post(
        "/api/v1/reset/confirm",
        content=body,
        headers={"Content-Type": "application/json; charset=latin-1", "X-CSRF-Token": anon.csrf},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["message"].startswith(JSON_REFUSAL)
    assert ldap_users.bind_ok(user, password)  # unchanged
    misread = Connection(ldap_users.server, ldap_users.dn(user), "Zebra-é-Lamp-42-river".encode())
    assert not misread.bind()
    new = good_password()
    again = anon.client.post(
        "/api/v1/reset/confirm",
        json={"login": user, "code": code, "purpose": "reset", "new_password": new},
        headers={"X-CSRF-Token": anon.csrf},
    )
    assert again.status_code == 200, again.text  # the code was not spent by the refused body
    assert ldap_users.bind_ok(user, new)


def test_a_form_that_declares_another_charset_is_refused(portal: PortalServer, signed_in: Any) -> None:
    employee: SignedIn = signed_in("employee")
    answer = employee.post(
        "/lang",
        content=f"csrf_token={employee.csrf}&lang=nl".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=iso-8859-1"},
    )
    assert answer.status_code == 422
    assert "The form could not be read: it was not sent as UTF-8 text" in answer.text


def test_a_page_with_a_final_slash_is_sent_on_from_the_public_url_never_the_host(
    portal: PortalServer, signed_in: Any
) -> None:
    auditor: SignedIn = signed_in("auditor")
    for path, query in (("/kpi/", ""), ("/audit/events/", "actor=x"), ("/api/v1/me/", "")):
        answer = auditor.get(
            path + (f"?{query}" if query else ""), headers={"Host": "evil.example.com"}, follow_redirects=False
        )
        assert answer.status_code == 308, (path, answer.status_code, answer.text[:200])
        expected = portal.base_url + path.rstrip("/") + (f"?{query}" if query else "")
        assert answer.headers["location"] == expected
        assert "evil.example.com" not in answer.text


def test_any_other_method_with_a_final_slash_is_not_found_and_sent_nowhere(
    portal: PortalServer, signed_in: Any
) -> None:
    agent: SignedIn = signed_in("agent")
    before = _tickets(portal)
    for path in ("/api/v1/runs/", "/api/v1/fixes/account-unlock/", "/api/v1/tokens/"):
        answer = agent.post(
            path,
            json={"runbook": "account-status", "params": {}},
            headers={"Host": "evil.example.com", "X-CSRF-Token": agent.csrf},
            follow_redirects=False,
        )
        assert answer.status_code == 404, (path, answer.text)
        assert "location" not in answer.headers
        assert f"did you mean {path.rstrip('/')}, without the final /" in answer.json()["error"]["message"]
    assert _tickets(portal) == before
    unknown = agent.get("/no-such-page/", follow_redirects=False)
    assert unknown.status_code == 404


def test_a_number_past_pythons_digit_limit_gets_a_sentence(portal: PortalServer, signed_in: Any) -> None:
    employee: SignedIn = signed_in("employee")
    body = b'{"runbook": "account-status", "params": {"n": ' + b"9" * 5000 + b"}}"
    answer = _post_run(employee, body, "application/json")
    assert 400 <= answer.status_code < 500
    assert "more than 4300 digits" in answer.json()["error"]["message"]
