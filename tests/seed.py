"""Crafted ledgers for the query and KPI tests: tickets inserted row by row with chosen
times, audit events appended through the real ``AuditLog`` (so the chain verifies) with
chosen timestamps. Works on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select, text

from runner.ledger import audit as audit_mod
from runner.ledger.audit import Actor, AuditLog
from runner.ledger.store import make_engine, transaction, upgrade
from runner.ledger.tables import audit_head, ticket
from runner.timeparse import stored

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
PG_BASE = "postgresql+psycopg2://postgres@127.0.0.1:5432/"
KEY = b"k" * 32
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh, uniquely named database on 127.0.0.1:5432 (trust auth), dropped afterwards."""
    import pytest

    name = f"fl_h2_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 (database 'test') is not usable: {exc}")
    try:
        yield PG_BASE + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def ticket_row(opened: datetime = T0, *, ended_after: timedelta = timedelta(seconds=30), **kw: Any) -> dict[str, Any]:
    """One ``ticket`` row as the runner writes it (default: ``alice``'s resolved unlock
    opened at *opened*); *ended_after* sets closed_at for a final state, resolved_at too for
    ``resolved`` (as close_ticket); any column can be given in *kw*."""
    state = kw.pop("state", "resolved")
    requester = kw.get("requester", "alice")
    row: dict[str, Any] = {
        "requester": "alice",
        "subject": "alice",
        "channel": "portal",
        "category": "identity/account",
        "type": "incident",
        "runbook": "unlock-account",
        "runbook_sha256": "0" * 64,
        "params": json.dumps({"user": "alice"}),
        "state": state,
        "impact": 3,
        "urgency": 2,
        "priority": 4,
        "correlation_id": str(uuid.uuid4()),
        "opened_at": stored(opened),
        "updated_at": stored(opened),
        "deadline_at": stored(opened + timedelta(minutes=5)),
        "opened_by": requester,
        "resolution_code": "solved_by_automation" if state == "resolved" else None,
        "assignment_group": "service-desk-l2" if state == "escalated" else None,
    }
    ended = stored(opened + ended_after) if state in ("resolved", "escalated", "closed") else None
    row.update(closed_at=ended, resolved_at=ended if state == "resolved" else None)  # same keys in every row
    row.update(kw)
    return row


@dataclass
class Ledger:
    engine: Engine
    audit: AuditLog
    checkpoint_file: Path | None

    def ticket(self, opened: datetime = T0, **kw: Any) -> int:
        """Insert one ticket; *opened* sets opened_at; ``resolve_after`` (timedelta) sets when it
        ended: closed_at for every final state, resolved_at too for ``resolved`` (as close_ticket)."""
        after = kw.pop("resolve_after", None)
        row = ticket_row(opened, ended_after=after if after is not None else timedelta(seconds=30), **kw)
        with self.engine.begin() as conn:
            key = conn.execute(ticket.insert().values(**row)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def event(self, ts: datetime = T0, actor: str = "alice", action: str = "ticket.opened", **kw: Any) -> int:
        """Append one audit event at *ts* through the real chain."""
        real = audit_mod.now
        audit_mod.now = lambda: stored(ts)
        try:
            with transaction(self.engine) as conn:  # as the product writes: the checkpoint file after the commit
                self.audit.append(
                    conn,
                    Actor(actor, tuple(kw.pop("roles", ("employee",))), kw.pop("on_behalf_of", None)),
                    action,
                    outcome=kw.pop("outcome", "success"),
                    **kw,
                )
            with self.engine.connect() as conn:  # written at the commit: its seq is the head's now
                return int(conn.execute(select(audit_head.c.seq)).scalar_one())
        finally:
            audit_mod.now = real


def open_ledger(url: str, checkpoint_file: Path | None = None) -> Ledger:
    engine = make_engine(url)
    upgrade(engine)
    audit = AuditLog(KEY, 1000, checkpoint_file)
    audit.ensure_head(engine)
    return Ledger(engine, audit, checkpoint_file)


def portal_ledger(data_dir: Path, database: Path | str) -> Ledger:
    """The ledger of a running test portal (``tests.portal_support.PortalServer``), appending
    through the real chain with that portal's own audit key, so its verification holds.
    *database*: the portal's ``database_url``, or the path of its SQLite file."""
    from runner.settings import Settings

    settings = Settings(environment="test", data_dir=data_dir)
    engine = make_engine(database if isinstance(database, str) else f"sqlite:///{database}")
    audit = AuditLog(settings.audit_secret(), settings.checkpoint_every, data_dir / "audit-checkpoints.jsonl")
    return Ledger(engine, audit, audit.checkpoint_file)
