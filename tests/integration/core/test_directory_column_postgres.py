"""Ledger revision 0002 (ticket.directory, issue 7 item 10) on a real PostgreSQL: an
existing 0001 ledger with tickets is upgraded in place, and new tickets carry the
directory in the column and in the ticket.opened audit event."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, select, text

from runner.ledger import store, tickets
from runner.ledger.audit import Actor
from runner.ledger.store import transaction
from runner.ledger.tables import audit_event, ticket
from runner.service import Firstline
from runner.settings import Settings

pytestmark = pytest.mark.integration
ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"fl_dir_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not usable: {exc}")
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_0001_ledger_is_upgraded_and_tickets_name_their_directory(pg_url: str, tmp_path: Path) -> None:
    engine = create_engine(pg_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ticket (requester, subject, channel, category, type, runbook, runbook_sha256, params,"
                " state, impact, urgency, priority, correlation_id, opened_at, updated_at, deadline_at) VALUES"
                " ('old','old','cli','c','request','r','s','{}','resolved',3,2,4,'x','t','t','t')"
            )
        )
    engine.dispose()

    settings = Settings(
        environment="test",
        database_url=pg_url,
        runbooks_dir=tmp_path,
        inventory=tmp_path / "none.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "fl.log",
    )
    app = Firstline(settings, connectors={})  # upgrades to head
    try:
        with app.engine.connect() as conn:
            assert "directory" in {c["name"] for c in inspect(conn).get_columns("ticket")}
            assert "ix_ticket_directory" in {i["name"] for i in inspect(conn).get_indexes("ticket")}
            assert store._current_revision(conn) == store.HEAD_REVISION
        with transaction(app.engine) as conn:
            _, number = tickets.open_ticket(
                conn,
                app.audit,
                Actor("agent7", ("agent",)),
                tickets.NewTicket(
                    requester="agent7",
                    subject="bob",
                    channel="cli",
                    category="identity/account",
                    type="request",
                    runbook="account-status",
                    runbook_sha256="0" * 64,
                    params={"user": "bob", "directory": "ad"},
                    correlation_id=str(uuid.uuid4()),
                    timeout_s=60,
                    directory="ad",
                ),
            )
        assert [(t["subject"], t["directory"]) for t in app.list_tickets()] == [("bob", "ad"), ("old", None)]
        with app.engine.connect() as conn:
            (detail,) = conn.execute(
                select(audit_event.c.detail).where(
                    audit_event.c.ticket == number, audit_event.c.action == "ticket.opened"
                )
            ).scalars()
            assert json.loads(detail)["directory"] == "ad"
            assert conn.execute(select(ticket.c.directory).where(ticket.c.subject == "bob")).scalar_one() == "ad"
        assert app.verify_audit().ok
    finally:
        app.close()
