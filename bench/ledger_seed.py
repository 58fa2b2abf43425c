"""Seeding a large ledger quickly for bench/audit_verify.py and bench/auditor_search.py.

The schema comes from Firstline's own migrations (``runner.ledger.store.upgrade``); rows go
in with the driver's bulk path (``executemany`` on SQLite, ``COPY`` on PostgreSQL), with a
valid hash chain, signed checkpoints (table and file) and a signed head, exactly as
``runner.ledger.audit.AuditLog.append`` writes them. Values are deterministic (seeded
random) and shaped like a busy first-line desk: 20,000 people, 50 agents, three events per
ticket, eleven months of time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runner.ledger.audit import FIELDS, GENESIS, canonical, sign, sign_head  # noqa: E402

EVENT_COLUMNS = (*FIELDS, "prev_hash", "hash", "canonical")
TICKET_COLUMNS = (
    "id", "requester", "subject", "channel", "category", "type", "runbook", "runbook_sha256", "params", "state",
    "impact", "urgency", "priority", "correlation_id", "opened_at", "updated_at", "resolved_at", "deadline_at",
    "directory", "opened_by", "closed_at",
)  # fmt: skip
USERS = 20_000
AGENTS = 50
RUNBOOKS = (
    "account-unlock", "password-reset", "password-change", "printer-queue-clear", "service-restart",
    "mailbox-quota", "vpn-reset", "mfa-reset", "group-access", "disk-cleanup", "home-restore", "shared-drive",
)  # fmt: skip
ACTIONS = ("ticket.opened", "step.started", "step.finished", "ticket.resolved", "ldap.unlock_account")
OUTCOMES = ("success",) * 17 + ("failure", "failure", "refused")
CHANNELS = ("portal",) * 12 + ("api",) * 4 + ("agent",) * 3 + ("cli",)
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SPAN = 11 * 30 * 86_400.0  # eleven months


def stamp(t: float) -> str:
    """The stored time form (``runner.timeparse.stored``) of a POSIX time."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def user(i: int) -> str:
    return f"user{i:05d}"


def events(n: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """*n* audit events (seq 1..n) with their canonical text, prev_hash and hash."""
    rnd = random.Random(seed)
    prev = GENESIS
    sha = hashlib.sha256
    step = SPAN / max(n, 1)
    for seq in range(1, n + 1):
        who = user(rnd.randrange(USERS))
        agent = rnd.random() < 0.3
        row: dict[str, Any] = {
            "seq": seq,
            "ts": stamp(START + seq * step),
            "actor": f"agent{rnd.randrange(AGENTS):02d}" if agent else who,
            "actor_roles": "agent" if agent else "employee",
            "on_behalf_of": who,
            "action": ACTIONS[rnd.randrange(len(ACTIONS))],
            "target": f"corp:{who}",
            "ticket": f"FL-{(seq + 2) // 3:06d}",
            "runbook": RUNBOOKS[rnd.randrange(len(RUNBOOKS))],
            "runbook_sha256": "5e" * 32,
            "outcome": OUTCOMES[rnd.randrange(len(OUTCOMES))],
            "reason": None,
            "client_ip": f"198.51.100.{rnd.randrange(1, 255)}",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "correlation_id": str(uuid.UUID(int=rnd.getrandbits(128))),
            "detail": '{"state":"queued"}',
        }
        record = canonical(row)
        row["prev_hash"] = prev
        prev = row["hash"] = sha(prev.encode() + record).hexdigest()
        row["canonical"] = record.decode()
        yield row


def tickets(n: int, seed: int = 2) -> Iterator[dict[str, Any]]:
    """*n* tickets (id 1..n), three events each in ``events``' numbering."""
    rnd = random.Random(seed)
    step = SPAN / max(n, 1)
    for i in range(1, n + 1):
        who = user(rnd.randrange(USERS))
        opened = START + i * step
        resolved = rnd.random() < 0.9
        row: dict[str, Any] = {
            "id": i,
            "requester": who,
            "subject": who,
            "channel": CHANNELS[rnd.randrange(len(CHANNELS))],
            "category": "identity/account",
            "type": "incident",
            "runbook": RUNBOOKS[rnd.randrange(len(RUNBOOKS))],
            "runbook_sha256": "5e" * 32,
            "params": json.dumps({"user": who}),
            "state": "resolved" if resolved else ("escalated" if rnd.random() < 0.7 else "queued"),
            "impact": 3,
            "urgency": 3,
            "priority": 4,
            "correlation_id": str(uuid.UUID(int=rnd.getrandbits(128))),
            "opened_at": stamp(opened),
            "updated_at": stamp(opened + 4),
            "resolved_at": stamp(opened + 4) if resolved else None,
            "deadline_at": stamp(opened + 3600),
            "directory": "corp",
            "opened_by": f"agent{rnd.randrange(AGENTS):02d}" if rnd.random() < 0.3 else who,
        }
        row["closed_at"] = None if row["state"] == "queued" else stamp(opened + 4)  # any final state
        yield row


def insert_rows(engine: Any, table: str, columns: tuple[str, ...], rows: Iterator[dict[str, Any]], batch: int) -> None:
    """Bulk insert: ``executemany`` on SQLite, ``COPY ... FROM STDIN`` (CSV) on PostgreSQL."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        chunk: list[dict[str, Any]] = []

        def flush() -> None:
            if engine.dialect.name == "sqlite":
                cur.execute("BEGIN")
                cur.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [tuple(r[c] for c in columns) for r in chunk],
                )
                cur.execute("COMMIT")
            else:
                buf = io.StringIO()
                w = csv.writer(buf)
                for r in chunk:
                    w.writerow(["\\N" if r[c] is None else r[c] for c in columns])
                buf.seek(0)
                cur.copy_expert(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf
                )
                raw.commit()
            chunk.clear()

        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                flush()
        if chunk:
            flush()
    finally:
        raw.close()


def sign_chain(engine: Any, key: bytes, checkpoint_file: Path, every: int) -> int:
    """Write the signed head, the first and every *every*-th checkpoint (table and file) for the events
    in the database, as the ledger does while appending; return the last seq."""
    from sqlalchemy import text

    with engine.connect() as conn:
        last, head = conn.execute(text("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")).one()
        cps = conn.execute(
            text("SELECT seq, ts, hash FROM audit_event WHERE seq % :n = 0 OR seq = 1 ORDER BY seq"), {"n": every}
        ).all()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoint"))
        conn.execute(text("DELETE FROM audit_head"))
        conn.execute(
            text("INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, :s, :h, :m)"),
            {"s": last, "h": head, "m": sign_head(key, last, head)},
        )
        rows = [{"s": s, "t": t, "h": h, "m": sign(key, s, h)} for s, t, h in cps]
        if rows:
            conn.execute(text("INSERT INTO audit_checkpoint (seq, ts, hash, mac) VALUES (:s, :t, :h, :m)"), rows)
    with checkpoint_file.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({"seq": r["s"], "ts": r["t"], "hash": r["h"], "mac": r["m"]}) + "\n")
    return int(last)
