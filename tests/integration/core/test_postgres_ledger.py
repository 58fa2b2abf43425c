"""The ledger on a real PostgreSQL (the machine's server on 127.0.0.1:5432): migrations,
tickets, concurrent audit appends under row locks, verification."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text, update

from runner.ledger import tickets
from runner.ledger.audit import Actor
from runner.ledger.store import transaction
from runner.ledger.tables import audit_event
from runner.service import Firstline
from runner.settings import Settings

pytestmark = pytest.mark.integration
ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"fl_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the machine kind starts PostgreSQL; say so plainly if it is not there
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not usable: {exc}")
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_ledger_works_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(
        environment="test",
        database_url=pg_url,
        runbooks_dir=tmp_path,
        inventory=tmp_path / "none.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "fl.log",
        checkpoint_every=7,
    )
    app = Firstline(settings, connectors={})
    actor = Actor("agent7", ("agent",))

    def one(i: int) -> str:
        with transaction(app.engine) as conn:
            tid, number = tickets.open_ticket(
                conn,
                app.audit,
                actor,
                tickets.NewTicket(
                    requester="alice",
                    subject="alice",
                    channel="cli",
                    category="identity/account",
                    type="incident",
                    runbook="account-unlock",
                    runbook_sha256="0" * 64,
                    params={"user": "alice"},
                    correlation_id=str(uuid.uuid4()),
                    timeout_s=60,
                ),
            )
        with transaction(app.engine) as conn:
            tickets.close_ticket(
                conn,
                app.audit,
                actor,
                tid,
                state="resolved",
                resolution_code="solved_by_automation",
                note="ok",
                reason=None,
                message="ok",
                assignment_group=None,
                meta={},
            )
        return number

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(one, range(30)))
    assert len(set(numbers)) == 30
    assert {t["state"] for t in app.list_tickets(limit=100)} == {"resolved"}
    report = app.verify_audit()
    assert report.ok and report.events == 60
    with app.engine.begin() as c:
        c.execute(update(audit_event).where(audit_event.c.seq == 17).values(outcome="failure"))
    report = app.verify_audit()
    assert not report.ok and report.first_bad_seq == 17
    app.close()


def test_time_filters_and_closed_tickets_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """Item 14 on PostgreSQL: --since / --until select by instant whatever offset is typed
    (the stored text compares correctly under the server's collation); item 18: a closed
    ticket (requester must act) fits the state column and is never swept."""
    import json
    from datetime import datetime, timedelta, timezone

    settings = Settings(
        environment="test",
        database_url=pg_url,
        runbooks_dir=tmp_path,
        inventory=tmp_path / "none.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "fl.log",
    )
    app = Firstline(settings, connectors={})
    actor = Actor("agent7", ("agent",), on_behalf_of="alice")
    for state in ("resolved", "closed", "escalated"):
        with transaction(app.engine) as conn:
            tid, _ = tickets.open_ticket(
                conn,
                app.audit,
                actor,
                tickets.NewTicket(
                    requester="alice",
                    subject="alice",
                    channel="cli",
                    category="identity/account",
                    type="incident",
                    runbook="account-unlock",
                    runbook_sha256="0" * 64,
                    params={},
                    correlation_id=str(uuid.uuid4()),
                    timeout_s=60,
                    opened_by="agent7",
                ),
            )
        with transaction(app.engine) as conn:
            tickets.close_ticket(
                conn,
                app.audit,
                actor,
                tid,
                state=state,
                resolution_code="requester_action_needed" if state == "closed" else None,
                note=None,
                reason="too_short" if state == "closed" else None,
                message="m",
                assignment_group=None,
                meta={},
            )
    events = [json.loads(line) for line in app.export_audit("jsonl")]
    times = [datetime.fromisoformat(e["ts"]) for e in events]
    pivot = times[3]
    for tz in (timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(0))):
        spelled = pivot.astimezone(tz).isoformat()
        got = [json.loads(line)["seq"] for line in app.export_audit("jsonl", since=spelled)]
        assert got == [e["seq"] for e, t in zip(events, times, strict=True) if t >= pivot]
        got = [json.loads(line)["seq"] for line in app.export_audit("jsonl", until=spelled)]
        assert got == [e["seq"] for e, t in zip(events, times, strict=True) if t < pivot]
    closed = app.list_tickets(state="closed")
    assert len(closed) == 1 and closed[0]["resolution_code"] == "requester_action_needed"
    assert closed[0]["opened_by"] == "agent7"
    with app.engine.begin() as c:
        c.execute(update(tickets.ticket).values(deadline_at="2000-01-01T00:00:00.000000+00:00"))
    assert app.sweep() == []
    assert app.verify_audit().ok
    app.close()
