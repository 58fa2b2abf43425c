"""Times typed into the auditor's and the KPI filters, over HTTP (TestClient: the real app,
its routes, error handlers and catalogues): nanoseconds are cut to microseconds and
accepted, the last instant of year 9999 is accepted (also where the KPI range adds days to
it), and a year, month, day or instant out of range is refused with a message that names
what is wrong and the format expected — in English and in Dutch (``runner.timeparse``)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.app import create_app
from portal.deps import allow
from portal.timetexts import TIME_TEXTS
from runner.settings import Settings
from runner.timeparse import EXAMPLES, MESSAGES
from tests.seed import T0, Ledger
from tests.unit.portal.test_auditor_pages import principal

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[3]
NL = {"Accept-Language": "nl"}

PAGES = ("/audit/events", "/audit/tickets", "/kpi")
API = ("/api/v1/audit/events", "/api/v1/tickets", "/api/v1/kpi")
EXPORTS = ({"kind": "events", "format": "csv"}, {"kind": "tickets", "format": "jsonl"})

ACCEPTED = {
    "until": [
        "9999-12-31T23:59:59.999999999Z",  # nanoseconds, the last instant there is
        "2026-11-30T07:34:12.123456789+01:00",
        "9999-12-31",
    ],
    "since": ["2026-11-30T07:34:12.123456789+01:00", "0001-01-01T00:00:00.000000001Z"],
}
# value -> (what the English message must say, what the Dutch one must say)
REFUSED = {
    "10000-01-01": ("the year 10000 is out of range (years 0001 to 9999", "het jaar 10000 kan niet"),
    "2026-13-01": ("there is no month 13 (months 01 to 12)", "maand 13 bestaat niet"),
    "2026-02-30": ("there is no day 30 in month 02 of 2026 (it has 28 days)", "heeft geen dag 30"),
    "2026-11-30T24:00": ("24:00 is not a time of day", "24:00 is geen tijdstip"),
    "9999-12-31T23:00-05:00": ("outside the times that can be stored", "valt buiten de tijden"),
    "2026-11-30T03:22+24:00": ("the offset +24:00 is out of range", "het tijdverschil +24:00 kan niet"),
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        environment="test", data_dir=tmp_path, runbooks_dir=REPO / "runbooks", inventory=REPO / "lab" / "inventory.yaml"
    )
    app = create_app(settings)
    for role in ("auditor", "employee"):
        app.dependency_overrides[allow(role)] = lambda role=role: principal("auditor")
    fl = app.state.portal.firstline
    led = Ledger(fl.engine, fl.audit, fl.audit.checkpoint_file)
    led.ticket(requester="carol")
    led.event(ts=T0, actor="agent7")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def test_every_message_is_marked_for_the_catalogues() -> None:
    assert set(TIME_TEXTS) == {EXAMPLES, *MESSAGES.values()}


@pytest.mark.parametrize("field", ["since", "until"])
def test_nanoseconds_and_the_edges_of_the_calendar_are_accepted_everywhere(client: TestClient, field: str) -> None:
    for value in ACCEPTED[field]:
        for path in (*PAGES, *API):
            r = client.get(path, params={field: value})
            # a KPI range from year 1 to now is too long: refused for its length, not as a time
            if path.endswith("kpi") and value.startswith("0001"):
                assert r.status_code == 422 and "too long" in r.text, (path, value, r.text[:300])
                continue
            assert r.status_code == 200, (path, value, r.text[:500])
        for params in EXPORTS:
            r = client.get("/api/v1/audit/export", params={**params, field: value})
            assert r.status_code == 200, (params, value, r.text[:300])


def test_the_kpi_range_at_the_ends_of_the_calendar_is_not_an_internal_error(client: TestClient) -> None:
    """The KPI range adds 7 days past until (repeats) and lists every day: at 9999-12-31 that
    overflowed (500); before day 30 of year 1, the default since (until - 30 days) did too."""
    last = client.get("/api/v1/kpi", params={"since": "9999-12-30", "until": "9999-12-31T23:59:59.999999999Z"})
    assert last.status_code == 200, last.text[:300]
    assert [d["day"] for d in last.json()["per_day"]] == ["9999-12-30", "9999-12-31"]
    first = client.get("/api/v1/kpi", params={"until": "0001-01-02"})
    assert first.status_code == 200, first.text[:300]
    assert first.json()["since"].startswith("0001-01-01T00:00:00")
    assert client.get("/kpi", params={"until": "0001-01-02"}).status_code == 200


@pytest.mark.parametrize("value", list(REFUSED))
def test_impossible_times_are_refused_saying_what_is_wrong_in_english_and_dutch(client: TestClient, value: str) -> None:
    english, dutch = REFUSED[value]
    for path in PAGES:
        en = client.get(path, params={"since": value})
        assert en.status_code == 422, (path, value)
        assert english in en.text and "2026-11-27T08:55+01:00" in en.text, (path, en.text[:2000])
        assert "is not a date or time" not in en.text
        nl = client.get(path, params={"since": value}, headers=NL)
        assert nl.status_code == 422 and dutch in nl.text, (path, nl.text[:2000])
        assert "08:55:30Z of 2026" in nl.text and english not in nl.text
    for path in API:
        r = client.get(path, params={"until": value})
        assert r.status_code == 422, (path, value)
        body = r.json()["error"]
        assert body["code"] == "invalid_input" and english in body["message"], body
    r = client.get("/api/v1/audit/export", params={"kind": "tickets", "format": "csv", "since": value})
    assert r.status_code == 422 and english in r.json()["error"]["message"]
