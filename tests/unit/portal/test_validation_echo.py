"""A 422 names the field and the rule, never the value sent (portal/errors.py): a password
typed into the wrong field, sent with the wrong type, too long, as a key, or in broken JSON
is not shown back, on the API and on the pages."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from portal.app import create_app
from runner.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[3]
SECRET = "Hunter2Secret"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        runbooks_dir=REPO / "runbooks",
        inventory=REPO / "lab" / "inventory.yaml",
        session_cookie_secure=False,
    )
    app: FastAPI = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
    app.state.portal.firstline.close()


@pytest.mark.parametrize(
    "body",
    [
        {"login": "alice", "code": "1", "new_password": {"nested": SECRET}},
        {"login": "alice", "code": "1", "new_password": [SECRET]},
        {"login": "alice", "code": "1", "new_password": SECRET * 100},
        {"login": "alice", "code": {SECRET: 1}},
        {"login": "alice", "code": "1", "purpose": SECRET},
        {"login": SECRET * 30, "code": "1"},
    ],
)
def test_api_422_does_not_echo_the_value(client: TestClient, body: dict[str, object]) -> None:
    token = client.get("/api/v1/reset/policy").json()["csrf_token"]
    r = client.post("/api/v1/reset/confirm", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input"
    assert SECRET not in r.text and SECRET.lower() not in r.text.lower()


def test_broken_json_and_chosen_keys_are_not_echoed(client: TestClient) -> None:
    token = client.get("/api/v1/reset/policy").json()["csrf_token"]
    raw = '{"login": "alice", "code": "1", "new_password": "' + SECRET + '", '
    r = client.post(
        "/api/v1/reset/confirm", content=raw, headers={"X-CSRF-Token": token, "Content-Type": "application/json"}
    )
    assert r.status_code == 422 and SECRET not in r.text
    r = client.post(
        "/api/v1/reset/request", json={"login": "alice", "purpose": {SECRET: SECRET}}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 422 and SECRET not in r.text


def test_page_422_does_not_echo_the_value(client: TestClient) -> None:
    page = client.get("/reset/code")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token
    data = {"csrf_token": token.group(1), "login": "alice", "code": "1", "new_password": SECRET * 100}
    r = client.post("/reset/code", data={**data, "new_password_again": SECRET * 100})
    assert r.status_code == 422 and "new_password" in r.text
    assert SECRET not in r.text


def test_keys_the_client_chose_and_custom_validator_texts_are_not_shown() -> None:
    from fastapi.exceptions import RequestValidationError

    from portal.errors import _validation_message

    exc = RequestValidationError(
        [
            {"type": "extra_forbidden", "loc": ("body", SECRET), "msg": "Extra inputs are not permitted", "input": 1},
            {"type": "int_type", "loc": ("body", "params", SECRET, 0), "msg": "Input should be a valid integer"},
            {"type": "value_error", "loc": ("body", "reason"), "msg": f"Value error, {SECRET} is not allowed"},
            {"type": "json_invalid", "loc": ("body", 12), "msg": f"JSON decode error near {SECRET}"},
        ]
    )
    text = _validation_message(exc, frozenset({"params", "reason"}))
    assert SECRET not in text
    assert text.startswith(
        "?: is not a field of this request; the fields it takes: params, reason; params.?.0: must be a whole number"
    )
    assert "reason: is not valid" in text


def test_a_body_that_is_not_json_is_named_as_such() -> None:
    from fastapi.exceptions import RequestValidationError

    from portal.errors import _validation_message

    exc = RequestValidationError([{"type": "json_invalid", "loc": ("body", 1), "msg": "JSON decode error"}])
    assert _validation_message(exc, frozenset()) == "request: the body is not valid JSON"


def test_an_unknown_key_is_named_only_as_a_near_miss_of_a_field() -> None:
    from fastapi.exceptions import RequestValidationError

    from portal.errors import _validation_message

    def message(key: str) -> str:
        exc = RequestValidationError([{"type": "extra_forbidden", "loc": ("body", key), "msg": "Extra", "input": 1}])
        return _validation_message(exc, frozenset({"login", "code"}), ["login", "code"])

    assert (
        message("logni")
        == "logni: is not a field of this request (did you mean login?); the fields it takes: login, code"
    )
    assert message(SECRET) == "?: is not a field of this request; the fields it takes: login, code"
    assert SECRET not in message(SECRET + "login")
