"""The audit chain's stored form (revision 0011) and the auditor's indexes (issue 9).

Verification hashes the stored canonical record of each event and checks every column
against it; old rows (before 0011) are backfilled by the migration, or verified from their
columns when they have no record. Each test runs on SQLite and on the machine's
PostgreSQL (a database created for the test, dropped afterwards)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, delete, event, select, text, update

from runner import queries
from runner.ledger import audit, store
from runner.ledger.audit import canonical, chain_hash, sign, sign_head
from runner.ledger.tables import audit_checkpoint, audit_event, audit_head, audit_target
from tests.seed import KEY, T0, Ledger, open_ledger, pg_database

pytestmark = pytest.mark.integration

SEARCHED = ("actor", "on_behalf_of", "action", "target", "outcome", "runbook", "ticket", "ts", "detail", "reason")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with pg_database() as pg:
        yield pg


@pytest.fixture
def chained(url: str, tmp_path: Path) -> Iterator[Ledger]:
    """12 events, a checkpoint every 5th (table and file), all verifying."""
    led = open_ledger(url, tmp_path / "cp.jsonl")
    led.audit.checkpoint_every = 5
    for i in range(12):
        led.event(
            T0 + timedelta(minutes=i),
            actor=f"agent{i % 3}",
            action="ticket.opened",
            on_behalf_of=f"user{i}",
            target=f"corp:user{i}",
            ticket=f"FL-{i + 1:06d}",
            runbook="account-unlock",
            detail={"n": i, "note": "é\n\"quoted\""},
        )
    yield led
    led.engine.dispose()


def verify(led: Ledger) -> audit.VerifyReport:
    return audit.verify(led.engine, KEY, led.checkpoint_file)


def fast(led: Ledger) -> int | None:
    cps, ext, problem = audit._signed_checkpoints(led.engine, KEY, led.checkpoint_file)
    assert problem is None
    return audit._fast_ok(led.engine, KEY, cps, ext)


def run(led: Ledger, sql: Any, params: dict[str, Any] | None = None) -> None:
    with led.engine.begin() as c:
        c.execute(text(sql) if isinstance(sql, str) else sql, params or {})


# -- the stored form and the fast path ----------------------------------------------------
def test_each_event_stores_the_record_its_hash_covers_and_verifies_on_the_fast_path(chained: Ledger) -> None:
    with chained.engine.connect() as c:
        rows = [dict(r) for r in c.execute(select(audit_event).order_by(audit_event.c.seq)).mappings()]
    assert len(rows) == 12
    for row in rows:
        assert row["canonical"] == canonical(row).decode()  # the columns say what the record says
        assert row["hash"] == chain_hash(row["prev_hash"], row)
    assert fast(chained) == 12  # the fast pass says "all holds" on its own (no fallback walk)
    report = verify(chained)
    assert report.ok and report.events == 12


# -- what verify must find ----------------------------------------------------------------
def test_an_edited_byte_of_a_stored_record_is_found_at_its_sequence(chained: Ledger) -> None:
    with chained.engine.connect() as c:
        record = c.execute(select(audit_event.c.canonical).where(audit_event.c.seq == 7)).scalar_one()
    run(chained, update(audit_event).where(audit_event.c.seq == 7).values(canonical=record.replace("agent0", "agent9")))
    assert fast(chained) is None
    r = verify(chained)
    assert not r.ok and r.first_bad_seq == 7 and "hash mismatch" in r.problem


@pytest.mark.parametrize("column", SEARCHED)
def test_an_edited_column_is_found_although_the_record_and_its_hash_still_hold(chained: Ledger, column: str) -> None:
    """What an attacker would do to hide an event from a search (or pin it on someone
    else): change the searched column only. The record and the chain are intact."""
    value: Any = {"ts": "2026-01-01T00:00:00.000000+00:00", "detail": '{"n":0}'}.get(column, "mallory")
    run(chained, update(audit_event).where(audit_event.c.seq == 8).values({column: value}))
    assert fast(chained) is None
    r = verify(chained)
    assert not r.ok and r.first_bad_seq == 8 and "altered" in r.problem and column in r.problem


def test_a_deleted_event_is_found(chained: Ledger) -> None:
    run(chained, delete(audit_event).where(audit_event.c.seq == 4))
    assert fast(chained) is None
    r = verify(chained)
    assert not r.ok and r.first_bad_seq == 4


def test_a_truncated_tail_with_a_replayed_signed_head_is_found(chained: Ledger) -> None:
    """Events 6.. and their checkpoint rows deleted, the head set back to checkpoint 5's
    (seq, hash, mac): a checkpoint's signature is not a head's (``sign_head``), and the
    checkpoint file outside the database still reaches 10."""
    with chained.engine.begin() as c:
        cp = c.execute(select(audit_checkpoint).where(audit_checkpoint.c.seq == 5)).mappings().one()
        c.execute(delete(audit_event).where(audit_event.c.seq > 5))
        c.execute(delete(audit_checkpoint).where(audit_checkpoint.c.seq > 5))
        c.execute(update(audit_head).values(seq=5, hash=cp["hash"], mac=cp["mac"]))
    assert fast(chained) is None
    r = verify(chained)
    assert not r.ok and r.first_bad_seq == 6 and "signature" in r.problem


def test_a_chain_rewritten_with_its_records_is_caught_by_the_signed_head(chained: Ledger) -> None:
    """Without the key: event 3's column and record rewritten alike, every hash after it
    recomputed over the new records, the head's hash moved, checkpoints (table and file)
    removed. Every row holds; only the head's HMAC tells."""
    with chained.engine.begin() as c:
        rows = [dict(r) for r in c.execute(select(audit_event).order_by(audit_event.c.seq)).mappings()]
        rows[2]["actor"] = "mallory"
        rows[2]["canonical"] = canonical(rows[2]).decode()
        prev = rows[1]["hash"]
        for r in rows[2:]:
            r["prev_hash"], r["hash"] = prev, chain_hash(prev, r)
            prev = r["hash"]
            c.execute(
                update(audit_event)
                .where(audit_event.c.seq == r["seq"])
                .values(actor=r["actor"], canonical=r["canonical"], prev_hash=r["prev_hash"], hash=r["hash"])
            )
        c.execute(update(audit_head).values(hash=prev))
        c.execute(delete(audit_checkpoint))
    assert chained.checkpoint_file is not None
    chained.checkpoint_file.write_text("")
    assert fast(chained) is None
    r = verify(chained)
    assert not r.ok and "signature" in r.problem and r.first_bad_seq is not None and r.first_bad_seq <= 3


def test_a_row_without_a_stored_record_is_verified_from_its_columns(chained: Ledger) -> None:
    """A row written by a process older than revision 0011: no record; the hash covers the
    columns, so it verifies (on the fast path), and an edit of it is still found."""
    run(chained, update(audit_event).where(audit_event.c.seq == 3).values(canonical=None))
    assert fast(chained) == 12
    assert verify(chained).ok
    run(chained, update(audit_event).where(audit_event.c.seq == 3).values(target="elsewhere"))
    assert fast(chained) is None
    r = verify(chained)
    assert not r.ok and r.first_bad_seq == 3 and "hash mismatch" in r.problem


# -- the migration ------------------------------------------------------------------------
def _old_ledger(url: str, cp_file: Path, n: int) -> Engine:
    """A ledger at revision 0010 with *n* events written the old way (no stored record),
    a checkpoint every 4th (table and file) and a signed head."""
    engine = store.make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
    prev = audit.GENESIS
    with engine.begin() as conn:
        for seq in range(1, n + 1):
            row = {k: None for k in audit.FIELDS} | {
                "seq": seq,
                "ts": f"2026-10-01T08:00:{seq:02d}.000000+00:00",
                "actor": f"agent{seq % 2}",
                "actor_roles": "agent",
                "on_behalf_of": f"user{seq}",
                "action": "ticket.opened",
                "target": f"ü-{seq}\t",
                "outcome": "success",
                "detail": json.dumps({"seq": seq}),
            }
            row["prev_hash"], row["hash"] = prev, chain_hash(prev, row)
            prev = row["hash"]
            names = ", ".join(row)
            conn.execute(text(f"INSERT INTO audit_event ({names}) VALUES ({', '.join(':' + k for k in row)})"), row)
            if seq % 4 == 0:
                mac = sign(KEY, seq, prev)
                conn.execute(
                    text("INSERT INTO audit_checkpoint (seq, ts, hash, mac) VALUES (:s, :t, :h, :m)"),
                    {"s": seq, "t": row["ts"], "h": prev, "m": mac},
                )
                with cp_file.open("a") as fh:
                    fh.write(json.dumps({"seq": seq, "ts": row["ts"], "hash": prev, "mac": mac}) + "\n")
        conn.execute(
            text("INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, :s, :h, :m)"),
            {"s": n, "h": prev, "m": sign_head(KEY, n, prev)},
        )
    return engine


def test_upgrade_from_0010_backfills_old_events_and_their_chain_still_verifies(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    migration = importlib.import_module("runner.ledger.migrations.versions.0011_audit_canonical")
    monkeypatch.setattr(migration, "BACKFILL_BATCH", 3)  # several batches on a small ledger
    cp_file = tmp_path / "cp.jsonl"
    engine = _old_ledger(url, cp_file, 10)
    store.upgrade(engine)
    with engine.connect() as c:
        rows = [dict(r) for r in c.execute(select(audit_event).order_by(audit_event.c.seq)).mappings()]
    assert [r["seq"] for r in rows] == list(range(1, 11))
    assert all(r["canonical"] == canonical(r).decode() for r in rows)
    with engine.connect() as c:  # revision 0014: the distinct targets of the old events
        assert set(c.execute(select(audit_target.c.value)).scalars()) == {r["target"] for r in rows}
    found = queries.page_events(engine, queries.EventFilter.from_params({"target": "Ü-1"}))
    assert [e["seq"] for e in found.items] == [10, 1]
    led = Ledger(engine, audit.AuditLog(KEY, 4, cp_file), cp_file)
    assert fast(led) == 10
    assert verify(led).ok
    led.event(T0, actor="agent7")  # new events chain on to the old ones
    assert verify(led).ok and verify(led).events == 11
    run(led, update(audit_event).where(audit_event.c.seq == 6).values(on_behalf_of="someone-else"))
    r = verify(led)
    assert not r.ok and r.first_bad_seq == 6 and "on_behalf_of" in r.problem
    engine.dispose()


# -- streaming ----------------------------------------------------------------------------
def test_the_cli_export_reads_in_bounded_batches(chained: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """``firstline audit export`` (audit.export): keyset batches of EXPORT_BATCH rows, each
    a statement of its own, never one result holding every event; the record text is not
    part of the output."""
    monkeypatch.setattr(audit, "EXPORT_BATCH", 5)
    statements: list[str] = []
    listener: Callable[..., None] = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(chained.engine, "before_cursor_execute", listener)
    try:
        lines = list(audit.export(chained.engine, "jsonl"))
    finally:
        event.remove(chained.engine, "before_cursor_execute", listener)
    assert [json.loads(x)["seq"] for x in lines] == list(range(1, 13))
    assert "canonical" not in json.loads(lines[0])
    reads = [s for s in statements if "FROM audit_event" in s and "LIMIT" in s.upper()]
    assert len(reads) == 3  # 5 + 5 + 2


# -- the auditor's indexes (SQLite's plans) -----------------------------------------------
EVENT_PLANS = {
    "actor": ({"actor": "agent1"}, "ix_audit_event_actor_seq"),
    "on_behalf_of": ({"on_behalf_of": "user1"}, "ix_audit_event_on_behalf_of_seq"),
    "action": ({"action": "ticket.opened"}, "ix_audit_event_action_seq"),
    "outcome": ({"outcome": "refused"}, "ix_audit_event_outcome_seq"),
    "runbook": ({"runbook": "account-unlock"}, "ix_audit_event_runbook_seq"),
    "ticket": ({"ticket": "FL-000003"}, "ix_audit_event_ticket"),
    "channel": ({"channel": "cli"}, "SEARCH ticket USING INTEGER PRIMARY KEY"),
    "time range": ({"since": "2026-11-02", "until": "2026-11-03"}, "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
}
TICKET_PLANS = {
    "actor": ({"actor": "agent1"}, "ix_ticket_opened_by_id"),
    "actor, old tickets": ({"actor": "agent1"}, "ix_ticket_requester_id"),
    "on_behalf_of": ({"on_behalf_of": "alice"}, "ix_ticket_requester_id"),
    "runbook": ({"runbook": "unlock-account"}, "ix_ticket_runbook_id"),
    "channel": ({"channel": "cli"}, "ix_ticket_channel_id"),
    "state": ({"state": "queued"}, "ix_ticket_state_id"),
    "time range": ({"since": "2026-11-02", "until": "2026-11-03"}, "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
}
SHAPES = [("events", k) for k in EVENT_PLANS] + [("tickets", k) for k in TICKET_PLANS]


@pytest.mark.parametrize(("kind", "shape"), SHAPES)
def test_each_main_search_page_walks_an_index_newest_first(tmp_path: Path, kind: str, shape: str) -> None:
    """The statement a page really sends (captured), explained: it names the index and
    needs no sort (the index gives the page order, so a page reads about one page of rows)."""
    led = open_ledger(f"sqlite:///{tmp_path / 'plans.db'}")
    led.ticket(T0)
    led.event(T0, ticket="FL-000001")
    params, expected = (EVENT_PLANS if kind == "events" else TICKET_PLANS)[shape]
    sent: list[tuple[str, Any]] = []
    listener: Callable[..., None] = lambda *a: sent.append((a[2], a[3]))  # noqa: E731
    event.listen(led.engine, "before_cursor_execute", listener)
    try:
        if kind == "events":
            queries.page_events(led.engine, queries.EventFilter.from_params(params))
        else:
            queries.page_tickets(led.engine, queries.TicketFilter.from_params(params))
    finally:
        event.remove(led.engine, "before_cursor_execute", listener)
    statement, values = sent[-1]  # the page (a time range first reads its key bounds)
    with led.engine.connect() as c:
        plan = " | ".join(str(r[-1]) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, values))
    assert expected in plan, plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    led.engine.dispose()


@pytest.mark.parametrize("kind", ["events", "tickets"])
def test_a_part_of_search_can_use_the_trigram_index_on_postgresql(kind: str, tmp_path: Path) -> None:
    """Revision 0011 on PostgreSQL: ``target`` (events) / ``target`` as part of the subject
    (tickets) are served by pg_trgm GIN indexes on ``lower(...)`` — the expression the
    filter compares: what a target matching more than ``TARGET_VALUES`` distinct values
    reads. (Sequential scans are switched off and the btree on (column, key) of revision
    0014 left out, in a transaction rolled back, so a tiny table shows the choice.)"""
    with pg_database() as pg:
        led = open_ledger(pg)
        if kind == "events":
            f: Any = queries.EventFilter.from_params({"target": "user0123"})
            q = select(audit_event.c.seq).where(*f.conditions())
            index, btree = "ix_audit_event_target_trgm", "ix_audit_event_target_seq"
        else:
            f = queries.TicketFilter.from_params({"target": "user0123"})
            q = select(queries.ticket.c.id).where(*f.conditions())
            index, btree = "ix_ticket_subject_trgm", "ix_ticket_subject_id"
        sql = str(q.compile(led.engine, compile_kwargs={"literal_binds": True}))
        with led.engine.connect() as c, c.begin() as tx:
            c.exec_driver_sql("SET LOCAL enable_seqscan = off")
            c.exec_driver_sql(f"DROP INDEX {btree}")
            plan = " ".join(str(r[0]) for r in c.exec_driver_sql("EXPLAIN " + sql))
            tx.rollback()
        assert index in plan, plan
        led.engine.dispose()
