"""A request that fails validation (a JSON body, a query, a path, a form) is answered in the
request's language on the real portal: the field and the limit are named in a sentence of
ours (portal.validation), never in pydantic's English ("Field required", "String should have
at most 64 characters"), whether the language comes from Accept-Language or the fl_lang
cookie, on the API (422 JSON) and on the pages (the error page)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.portal_support import PortalServer, SignedIn, cookie_value, set_cookie_values, sign_in

pytestmark = pytest.mark.integration

ERROR_TEXT = re.compile(r'notice-error" role="alert">\s*<p>(.*?)</p>', re.S)
# pydantic's own wording: none of it may reach a person, in either language
PYDANTIC = ("Field required", "Input should", "should have", "should be", "valid dictionary", "JSON decode")
EN = {"Accept-Language": "en"}
NL = {"Accept-Language": "nl"}


def _address() -> str:
    return f"192.0.2.{secrets.randbelow(250) + 1}"


@pytest.fixture(scope="module")
def employee(portal: PortalServer) -> Iterator[SignedIn]:
    signed = sign_in(portal, "employee", address=_address())
    yield signed
    signed.client.close()


def _message(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text[:500]
    error = r.json()["error"]
    assert error["code"] == "invalid_input"
    message: str = error["message"]
    assert not any(phrase in message for phrase in PYDANTIC), message
    return message


def _both(send: Any) -> tuple[str, str]:
    """The message of one bad request in English and in Dutch (Accept-Language)."""
    return _message(send(EN)), _message(send(NL))


def test_a_json_body_field_that_is_too_long_or_missing_is_named_with_its_limit(employee: SignedIn) -> None:
    def token(body: dict[str, Any]) -> Any:
        return lambda lang: employee.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": employee.csrf, **lang})

    assert _both(token({"label": "x" * 65})) == (
        "label: is too long (at most 64 characters)",
        "label: is te lang (hoogstens 64 tekens)",
    )
    assert _both(token({"label": ""})) == ("label: must not be empty", "label: mag niet leeg zijn")
    assert _both(token({})) == ("label: is required", "label: is verplicht")
    assert _both(token({"label": 7})) == ("label: must be text", "label: moet tekst zijn")


def test_a_query_out_of_range_or_not_a_number_is_named_with_its_limit(employee: SignedIn) -> None:
    def mine(limit: str) -> Any:
        return lambda lang: employee.get("/api/v1/tickets/mine", params={"limit": limit}, headers=lang)

    assert _both(mine("500")) == ("limit: must be at most 200", "limit: mag hoogstens 200 zijn")
    assert _both(mine("0")) == ("limit: must be at least 1", "limit: moet minstens 1 zijn")
    assert _both(mine("many")) == ("limit: must be a whole number", "limit: moet een geheel getal zijn")


def test_a_choice_a_union_and_broken_json_are_explained(portal: PortalServer, employee: SignedIn) -> None:
    def runs(body: Any) -> Any:
        return lambda lang: employee.post("/api/v1/runs", json=body, headers={"X-CSRF-Token": employee.csrf, **lang})

    assert _both(runs({"runbook": "account-unlock", "params": {"user": ["a"]}})) == (
        "params.user: must be text, a whole number or a yes/no value (true or false)",
        "params.user: moet tekst, een geheel getal of een ja/nee-waarde (true of false) zijn",
    )
    assert _both(runs({"runbook": "account-unlock", "params": {str(i): 1 for i in range(51)}})) == (
        "params: has too many entries (at most 50)",
        "params: heeft te veel onderdelen (hoogstens 50)",
    )
    assert _both(
        lambda lang: employee.post(
            "/api/v1/runs",
            content=b'{"runbook": ',
            headers={"X-CSRF-Token": employee.csrf, "Content-Type": "application/json", **lang},
        )
    ) == ("request: the body is not valid JSON", "verzoek: de inhoud is geen geldige JSON")
    assert _both(runs([1])) == ("request: must be a JSON object", "verzoek: moet een JSON-object zijn")
    with closing(portal.client(_address())) as anonymous:
        policy = anonymous.get("/api/v1/reset/policy")
        for name, header in set_cookie_values(policy).items():
            anonymous.cookies.set(name, cookie_value(header))
        csrf = {"X-CSRF-Token": policy.json()["csrf_token"]}
        assert _both(
            lambda lang: anonymous.post(
                "/api/v1/reset/request", json={"login": "demo-employee", "purpose": "x"}, headers={**csrf, **lang}
            )
        ) == ("purpose: must be one of: reset, unlock", "purpose: moet een van deze zijn: reset, unlock")


def test_the_language_cookie_wins_over_the_browser_for_a_422(portal: PortalServer) -> None:
    signed = sign_in(portal, "employee", address=_address())
    try:
        signed.client.cookies.set("fl_lang", "nl")
        r = signed.post("/api/v1/tokens", json={"label": "x" * 65}, headers={"X-CSRF-Token": signed.csrf, **EN})
        assert _message(r) == "label: is te lang (hoogstens 64 tekens)"
        signed.client.cookies.set("fl_lang", "en")
        r = signed.post("/api/v1/tokens", json={"label": "x" * 65}, headers={"X-CSRF-Token": signed.csrf, **NL})
        assert _message(r) == "label: is too long (at most 64 characters)"
    finally:
        signed.client.close()


def test_a_form_and_a_path_that_fail_validation_show_the_error_page_in_the_language(employee: SignedIn) -> None:
    for lang, too_long, not_number in (
        (EN, "label: is too long (at most 64 characters)", "token_id: must be a whole number"),
        (NL, "label: is te lang (hoogstens 64 tekens)", "token_id: moet een geheel getal zijn"),
    ):
        page = employee.post("/me/tokens", data={"csrf_token": employee.csrf, "label": "x" * 65}, headers=lang)
        assert page.status_code == 422 and "<html" in page.text
        found = ERROR_TEXT.search(page.text)
        assert found and found.group(1) == too_long, page.text[:2000]
        page = employee.post("/me/tokens/first/revoke", data={"csrf_token": employee.csrf}, headers=lang)
        assert page.status_code == 422
        found = ERROR_TEXT.search(page.text)
        assert found and found.group(1) == not_number, page.text[:2000]
