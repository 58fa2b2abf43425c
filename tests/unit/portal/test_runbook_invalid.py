"""A runbook that does not load (a malformed edit, or files newer than the running code)
is a refusal the operator can act on, not an internal error: 409 ``runbook_invalid``
with the plain "not approved in its current form" text (never the file path), and its
``file:line`` problems in the operational log."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from portal import errors
from runner import oplog
from runner.errors import NotVetted, RunbookError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PROBLEM = "/srv/runbooks/account-unlock.yaml:63: action 'notify' has no input 'link'"


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "firstline.log"
    oplog.configure(path)
    yield path
    oplog.configure(None)


def _app(exc: Exception) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise exc

    return app


def test_a_runbook_that_does_not_load_is_a_409_with_its_problems_in_the_log(log_file: Path) -> None:
    with TestClient(_app(RunbookError([PROBLEM]))) as c:
        r = c.get("/api/v1/boom")
    assert r.status_code == 409
    body = r.json()["error"]
    assert body["code"] == "runbook_invalid"
    assert "not approved in its current form" in body["message"]
    assert "/srv/runbooks" not in r.text and "notify" not in r.text
    events = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    logged = [e for e in events if e.get("event") == "portal.runbook_invalid"]
    assert logged and PROBLEM in logged[0]["problems"]


def test_not_vetted_keeps_its_own_code() -> None:
    with TestClient(_app(NotVetted(["changed"]))) as c:
        r = c.get("/api/v1/boom")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_vetted"
