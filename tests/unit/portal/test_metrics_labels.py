"""Prometheus labels name the full route template, so a JSON route under ``/api/v1``
and the page of the same name are counted apart (``/api/v1/me`` is not ``/me``)."""

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


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        runbooks_dir=REPO / "runbooks",
        inventory=REPO / "lab" / "inventory.yaml",
    )
    application = create_app(settings)
    yield application
    application.state.portal.firstline.close()


def _count(text: str, route: str, status: int) -> float:
    m = re.search(
        rf'firstline_http_requests_total\{{method="GET",route="{re.escape(route)}",status="{status}"\}} (\S+)', text
    )
    return float(m.group(1)) if m else 0.0


def test_api_routes_are_labelled_with_their_prefix(app: FastAPI) -> None:
    # from loopback: /metrics answers this machine when no scrape token is set (portal/routes/health.py)
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000)) as c:
        before = c.get("/metrics").text
        assert c.get("/api/v1/me").status_code == 401
        assert c.get("/api/v1/tickets/mine/FL-000001").status_code == 401
        assert c.get("/me/tickets/FL-000001", follow_redirects=False).status_code == 303
        assert c.get("/no/such/page").status_code == 404
        after = c.get("/metrics").text
    assert _count(after, "/api/v1/me", 401) == _count(before, "/api/v1/me", 401) + 1
    assert (
        _count(after, "/api/v1/tickets/mine/{number}", 401) == _count(before, "/api/v1/tickets/mine/{number}", 401) + 1
    )
    assert _count(after, "/me/tickets/{number}", 303) == _count(before, "/me/tickets/{number}", 303) + 1
    assert _count(after, "unmatched", 404) == _count(before, "unmatched", 404) + 1
    # the prefix-less spellings are never produced
    assert _count(after, "/me", 401) == 0 and _count(after, "/tickets/mine/{number}", 401) == 0
