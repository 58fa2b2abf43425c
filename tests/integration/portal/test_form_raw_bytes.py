"""A raw byte that is not UTF-8 in a URL-encoded form gets the same answer as its %-escape.

``csrf_token=<valid>&lang=n%FF`` was refused 422 "not sent as UTF-8" (``form_not_utf8``),
but the same form with the byte sent raw (``lang=n\\xff``) got 403 ``csrf_failed`` "This
form has expired or did not come from this site": the CSRF check decoded the whole body as
UTF-8 to find its token, failed, and took the token for missing. Reloading the page, as that
answer says, cannot help. Now the token is found and the form is refused 422 as not UTF-8.
"""

from __future__ import annotations

import pytest

from tests.integration.portal.test_selfservice import Anon, address, code_mails
from tests.portal_support import PortalServer

pytestmark = [pytest.mark.integration]

URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}
REFUSAL = "The form could not be read: it was not sent as UTF-8 text. Nothing was changed."


@pytest.mark.parametrize("byte", [b"\xff", b"\xe9", b"\xc3"])
def test_a_raw_byte_that_is_not_utf8_is_refused_as_not_utf8_not_as_an_expired_form(
    portal: PortalServer, byte: bytes
) -> None:
    a = Anon(portal, address())
    try:
        for body in (b"csrf_token=" + a.csrf.encode() + b"&lang=n" + byte, f"csrf_token={a.csrf}&lang=n%FF".encode()):
            r = a.client.post("/lang", content=body, headers=URLENCODED)
            assert r.status_code == 422, (body, r.status_code, r.text[-300:])
            assert REFUSAL in r.text and "fl_lang" not in r.headers.get("set-cookie", "")
        nl = a.client.post(
            "/lang",
            content=b"csrf_token=" + a.csrf.encode() + b"&lang=n" + byte,
            headers={**URLENCODED, "Accept-Language": "nl"},
        )
        assert nl.status_code == 422 and "Het formulier kon niet worden gelezen" in nl.text
        # a self-service form the same way: refused before the route, nothing is asked
        login = "tnobody" + byte.hex()
        r = a.client.post(
            "/reset", content=b"csrf_token=" + a.csrf.encode() + b"&login=" + login.encode() + byte, headers=URLENCODED
        )
        assert r.status_code == 422 and REFUSAL in r.text, r.status_code
        assert code_mails(login, wait=0) == []
    finally:
        a.close()


def test_a_raw_byte_in_the_token_itself_is_still_a_csrf_failure(portal: PortalServer) -> None:
    a = Anon(portal, address())
    try:
        forged = a.csrf[:-1].encode() + b"\xff"
        r = a.client.post("/lang", content=b"csrf_token=" + forged + b"&lang=nl", headers=URLENCODED)
        assert r.status_code == 403 and "This form has expired" in r.text, r.status_code
        assert "fl_lang" not in r.headers.get("set-cookie", "")
    finally:
        a.close()
