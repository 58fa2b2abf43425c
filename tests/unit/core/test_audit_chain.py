"""The audit chain detects edits, deletions, insertions, reordering, truncation and rewrites."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.exc import OperationalError

from runner.errors import LedgerError
from runner.ledger.audit import Actor, chain_hash, sign
from runner.ledger.store import transaction, write_retrying
from runner.ledger.tables import audit_checkpoint, audit_event, audit_head, ticket
from runner.service import Firstline
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases


@pytest.fixture
def chained(app: Firstline) -> Firstline:
    with transaction(app.engine) as c:
        for i in range(10):
            app.audit.append(c, Actor("tester", ("agent",)), "test.event", outcome="success", target=f"t{i}")
    report = app.verify_audit()
    assert report.ok and report.events == 12  # 2 vetting events + 10
    return app


def _exec(app: Firstline, stmt: object) -> None:
    with app.engine.begin() as c:
        c.execute(stmt)  # type: ignore[call-overload]


def test_edit_is_detected_at_its_sequence(chained: Firstline) -> None:
    _exec(chained, update(audit_event).where(audit_event.c.seq == 7).values(actor="mallory"))
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq == 7 and "altered" in r.problem


def test_deletion_is_detected(chained: Firstline) -> None:
    _exec(chained, delete(audit_event).where(audit_event.c.seq == 4))
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq == 4


def test_insertion_is_detected(chained: Firstline) -> None:
    with chained.engine.begin() as c:
        c.execute(update(audit_event).where(audit_event.c.seq > 5).values(seq=audit_event.c.seq + 100))
        row = dict(c.execute(select(audit_event).where(audit_event.c.seq == 106)).mappings().one())
        row["seq"], row["actor"] = 6, "mallory"  # a forged event slipped in
        c.execute(audit_event.insert().values(**row))
        c.execute(update(audit_event).where(audit_event.c.seq > 100).values(seq=audit_event.c.seq - 99))
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq == 6


def test_reordering_is_detected(chained: Firstline) -> None:
    with chained.engine.begin() as c:
        c.execute(text("UPDATE audit_event SET seq = -1 WHERE seq = 8"))
        c.execute(text("UPDATE audit_event SET seq = 8 WHERE seq = 9"))
        c.execute(text("UPDATE audit_event SET seq = 9 WHERE seq = -1"))
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq == 8


def test_tail_truncation_is_detected(chained: Firstline) -> None:
    _exec(chained, delete(audit_event).where(audit_event.c.seq > 9))
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq == 10 and "missing" in r.problem


def test_truncation_with_head_rolled_back_is_caught_by_signed_checkpoint(chained: Firstline) -> None:
    # checkpoint_every=5: checkpoints at 5 and 10; drop 6.. and forge the head without the key
    _exec(chained, delete(audit_event).where(audit_event.c.seq > 5))
    with chained.engine.begin() as c:
        row = c.execute(select(audit_event).where(audit_event.c.seq == 5)).one()
        c.execute(update(audit_head).values(seq=5, hash=row.hash, mac=sign(b"not-the-key" * 4, 5, row.hash)))
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq == 6


def test_recomputed_chain_is_detected_by_signatures(chained: Firstline) -> None:
    """An attacker with database access edits event 3 and recomputes every hash after it."""
    with chained.engine.begin() as c:
        rows = [dict(r) for r in c.execute(select(audit_event).order_by(audit_event.c.seq)).mappings()]
        rows[2]["actor"] = "mallory"
        prev = rows[1]["hash"]
        for r in rows[2:]:
            r["prev_hash"] = prev
            r["hash"] = chain_hash(prev, r)
            prev = r["hash"]
            c.execute(
                update(audit_event)
                .where(audit_event.c.seq == r["seq"])
                .values(prev_hash=r["prev_hash"], hash=r["hash"])
            )
        c.execute(update(audit_head).values(hash=prev))
        c.execute(delete(audit_checkpoint))
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq is not None and r.first_bad_seq <= 5


def test_checkpoints_are_written_outside_the_database(chained: Firstline) -> None:
    assert chained.audit.checkpoint_file is not None
    lines = chained.audit.checkpoint_file.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 5, 10]  # the first event, then every 5th


def _append(app: Firstline, c: Connection, n: int) -> None:
    for i in range(n):
        app.audit.append(c, Actor("tester", ("agent",)), "test.event", outcome="success", target=f"r{i}")


def test_a_rolled_back_checkpoint_leaves_no_line_in_the_file(chained: Firstline) -> None:
    """A transaction that made checkpoint 15 and rolled back must not leave its signed line:
    the event that really gets seq 15 has another hash, and ``verify`` would report a
    tampered chain for ever after."""
    path = chained.audit.checkpoint_file
    assert path is not None
    before = path.read_text()
    with pytest.raises(RuntimeError), transaction(chained.engine) as c:
        _append(chained, c, 3)  # 13, 14, 15 (checkpoint)
        raise RuntimeError("the request failed after its audit events")
    assert path.read_text() == before
    with transaction(chained.engine) as c:
        _append(chained, c, 3)  # 13..15 for real
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [1, 5, 10, 15]
    r = chained.verify_audit()
    assert r.ok and r.events == 15, r


def test_a_write_retried_after_a_lost_connection_checkpoints_the_hash_it_committed(chained: Firstline) -> None:
    """``write_retrying`` runs the work again when the connection is lost before the commit
    (a PostgreSQL restart): the first try's checkpoint line must not survive it."""
    tries = []

    def work(c: Connection) -> None:
        _append(chained, c, 3)  # 13, 14, 15 (checkpoint); another ts on the second try
        tries.append(1)
        if len(tries) == 1:
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    write_retrying(chained.engine, work, seconds=5)
    assert len(tries) == 2
    path = chained.audit.checkpoint_file
    assert path is not None
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [1, 5, 10, 15]
    r = chained.verify_audit()
    assert r.ok and r.events == 15, r


def test_a_checkpoint_line_left_out_by_a_dead_process_is_written_by_the_next_sync(chained: Firstline) -> None:
    path = chained.audit.checkpoint_file
    assert path is not None
    with chained.engine.begin() as c:  # committed, but nobody wrote the file afterwards
        _append(chained, c, 3)
    assert len(path.read_text().splitlines()) == 3
    assert chained.audit.sync_file(chained.engine) == 1
    assert chained.audit.sync_file(chained.engine) == 0
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [1, 5, 10, 15]
    assert chained.verify_audit().ok


def test_appends_in_one_transaction_read_the_head_once_and_savepoints_stay_linear(app: Firstline) -> None:
    """A transaction's appends are written together at its end, after the rest of its work
    (one ``SELECT ... FOR UPDATE`` of the head, right before the commit, so the lock that
    serialises every writer is held that long only); an append inside a savepoint is
    written at once and forgotten when the savepoint rolls back, and the chain stays
    linear and verified."""
    from sqlalchemy import event

    statements: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_a: object) -> None:
        statements.append(" ".join(statement.split()[:3]).upper())

    who = Actor("tester", ("agent",))
    head_read = "SELECT AUDIT_HEAD.SEQ, AUDIT_HEAD.HASH"
    event.listen(app.engine, "before_cursor_execute", seen)
    try:
        with transaction(app.engine) as c:
            app.audit.append(c, who, "test.one", outcome="success")
            c.execute(text("SELECT 1"))  # the transaction's other work
            app.audit.append(c, who, "test.two", outcome="success")
            app.audit.append(c, who, "test.three", outcome="success")
            c.execute(text("SELECT 2"))
        assert statements.count(head_read) == 1
        assert statements.index("SELECT 2") < statements.index(head_read), "the head was locked before the end"
        statements.clear()
        with transaction(app.engine) as c:
            app.audit.append(c, who, "test.before", outcome="success")
            nested = c.begin_nested()
            app.audit.append(c, who, "test.undone", outcome="success")
            nested.rollback()
            app.audit.append(c, who, "test.after", outcome="success")
            app.audit.append(c, who, "test.last", outcome="success")
        assert statements.count(head_read) == 2  # the savepoint's own, then the deferred ones'
    finally:
        event.remove(app.engine, "before_cursor_execute", seen)
    with app.engine.connect() as c:
        rows = c.execute(select(audit_event.c.seq, audit_event.c.action).order_by(audit_event.c.seq)).all()
    expected = ["test.one", "test.two", "test.three", "test.before", "test.after", "test.last"]
    assert [r.action for r in rows][-6:] == expected
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    report = app.verify_audit()
    assert report.ok, report.problem


@pytest.mark.parametrize("junk", [b"{garbage\n", b"\x00\xff\n", b'{"seq": "x"}\n'], ids=["json", "bytes", "fields"])
def test_an_altered_checkpoint_file_is_broken_not_an_internal_error(chained: Firstline, junk: bytes) -> None:
    path = chained.audit.checkpoint_file
    assert path is not None
    path.write_bytes(path.read_bytes() + junk)
    r = chained.verify_audit()
    assert not r.ok and "has a line that is no checkpoint (line 4)" in r.problem


def test_a_torn_last_checkpoint_line_is_the_crash_it_looks_like(chained: Firstline) -> None:
    path = chained.audit.checkpoint_file
    assert path is not None
    path.write_bytes(path.read_bytes() + b'{"seq": 15, "ha')  # a crash while the line was written
    assert chained.verify_audit().ok


@pytest.mark.parametrize("events", [2, 3, 4], ids=["two", "three", "just-before-the-first-regular"])
def test_a_wiped_ledger_before_the_first_regular_checkpoint_does_not_verify(app: Firstline, events: int) -> None:
    """Someone with write access to the database deletes every audit event, the head and the
    checkpoints before the 5th event (``checkpoint_every=5``) — or replaces the database with
    an empty one — and Firstline makes a new genesis head at its next start. The file outside
    the database holds the first event's checkpoint, so this is not "ok, 0 events"; nor
    after new events are chained from the new genesis."""
    with transaction(app.engine) as c:
        _append(app, c, events - 2)  # the fixture's two vetting events, then these
    report = app.verify_audit()
    assert report.ok and report.events == events
    with app.engine.begin() as c:
        for table in (audit_event, audit_head, audit_checkpoint):
            c.execute(delete(table))
    app.audit.ensure_head(app.engine)  # as at the next start
    r = app.verify_audit()
    assert not r.ok and r.first_bad_seq == 1 and "missing" in r.problem, r
    with transaction(app.engine) as c:
        _append(app, c, 3)  # a new chain from the new genesis: its event 1 is not the signed one
    r = app.verify_audit()
    assert not r.ok and r.first_bad_seq == 1 and "rewritten" in r.problem, r


def test_the_checkpoint_file_deleted_is_not_verified(chained: Firstline) -> None:
    """The file outside the database is what a rewrite of the database cannot reach: gone, the
    chain verified "ok" (a tester's find) — and the next start wrote it anew from the table."""
    path = chained.audit.checkpoint_file
    assert path is not None
    path.unlink()
    r = chained.verify_audit()
    assert not r.ok and "checkpoint file" in r.problem and "missing" in r.problem, r
    assert chained.audit.sync_file(chained.engine) == 0 and not path.exists()  # not written anew
    chained.audit.ensure_head(chained.engine)  # what a start does
    assert not path.exists() and not chained.verify_audit().ok


def test_a_wiped_chain_beside_tickets_is_not_verified(chained: Firstline) -> None:
    """Events, head, checkpoints and the file all deleted: "ok, 0 events" while tickets remain."""
    FakeConnector.script = {"account_status": [{"exists": True, "locked": True}]}
    assert chained.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"}).ticket_number
    with chained.engine.begin() as c:
        for table in (audit_event, audit_checkpoint, audit_head):
            c.execute(delete(table))
    assert chained.audit.checkpoint_file is not None
    chained.audit.checkpoint_file.unlink()
    chained.audit.ensure_head(chained.engine)  # a restart makes a new genesis head
    r = chained.verify_audit()
    assert not r.ok and "empty" in r.problem and "tickets" in r.problem, r


def test_a_new_ledger_verifies(app: Firstline) -> None:
    """No false alarm before the first event, with no file yet."""
    with app.engine.begin() as c:
        for table in (audit_event, audit_checkpoint, audit_head):
            c.execute(delete(table))
    if app.audit.checkpoint_file is not None and app.audit.checkpoint_file.exists():
        app.audit.checkpoint_file.unlink()
    app.audit.ensure_head(app.engine)
    r = app.verify_audit()
    assert r.ok and r.events == 0, r


def test_a_tail_cut_with_a_checkpoint_copied_into_the_head_is_not_verified(chained: Firstline) -> None:
    """Events after 5 deleted, the table's checkpoints after 5 too, the checkpoint file cut to
    match, and checkpoint 5's row copied into the head: with one signature formula for
    checkpoints and the head this verified "ok, 5 events" (a tester's find). A head is signed
    with its own label now."""
    with chained.engine.begin() as c:
        cp = c.execute(select(audit_checkpoint).where(audit_checkpoint.c.seq == 5)).mappings().one()
        c.execute(delete(audit_event).where(audit_event.c.seq > 5))
        c.execute(delete(audit_checkpoint).where(audit_checkpoint.c.seq > 5))
        c.execute(update(audit_head).values(seq=5, hash=cp["hash"], mac=cp["mac"]))
    path = chained.audit.checkpoint_file
    assert path is not None
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines() if json.loads(line)["seq"] <= 5))
    r = chained.verify_audit()
    assert not r.ok and "signature" in r.problem, r


def test_an_older_head_replayed_with_the_tail_cut_is_not_verified(chained: Firstline) -> None:
    """An older head row (from a backup: signed as a head) put back after the newest events
    were deleted and the checkpoint file cut to match: everything left is consistent and
    signed. Every ticket is opened with an event written after it, so a ticket opened after
    the chain's last event (here an hour after: beyond the clock-skew allowance) tells."""
    with chained.engine.connect() as c:
        old_head = dict(c.execute(select(audit_head)).mappings().one())
    path = chained.audit.checkpoint_file
    assert path is not None
    old_file = path.read_text()
    FakeConnector.script = {"account_status": [{"exists": True, "locked": True}]}
    number = chained.run("fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"}).ticket_number
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="microseconds")
    with chained.engine.begin() as c:
        c.execute(delete(audit_event).where(audit_event.c.seq > old_head["seq"]))
        c.execute(delete(audit_checkpoint).where(audit_checkpoint.c.seq > old_head["seq"]))
        c.execute(update(audit_head).values(seq=old_head["seq"], hash=old_head["hash"], mac=old_head["mac"]))
        c.execute(update(ticket).where(ticket.c.id == int(number[3:])).values(opened_at=later))
    path.write_text(old_file)
    r = chained.verify_audit()
    assert not r.ok and number in r.problem and "last event" in r.problem, r


def test_a_head_signed_the_old_way_is_signed_again_at_start(chained: Firstline) -> None:
    """Heads written before heads had their own signature are re-signed by ``ensure_head``."""
    with chained.engine.begin() as c:
        head = c.execute(select(audit_head)).mappings().one()
        c.execute(update(audit_head).values(mac=sign(chained.audit.key, head["seq"], head["hash"])))
    assert not chained.verify_audit().ok
    chained.audit.ensure_head(chained.engine)
    assert chained.verify_audit().ok


def _rewrite_from(app: Firstline, first: int) -> None:
    """Edit event *first* and recompute every hash after it (no key needed), leaving the head."""
    with app.engine.begin() as c:
        rows = [dict(r) for r in c.execute(select(audit_event).order_by(audit_event.c.seq)).mappings()]
        rows[first - 1]["actor"] = "mallory"
        prev = rows[first - 2]["hash"]
        for r in rows[first - 1 :]:
            r["prev_hash"], r["hash"] = prev, chain_hash(prev, r)
            prev = r["hash"]
            c.execute(
                update(audit_event)
                .where(audit_event.c.seq == r["seq"])
                .values(actor=r["actor"], prev_hash=r["prev_hash"], hash=r["hash"], canonical=None)
            )


def test_a_rewrite_after_the_last_checkpoint_is_blamed_on_the_events_after_it(chained: Firstline) -> None:
    """The head still names the real last event; the events since checkpoint 10 were rewritten
    with recomputed hashes. Verify said "events after the signed head 12 were added outside the
    ledger" at 13, a sequence that did not exist (a tester's find)."""
    _rewrite_from(chained, 11)
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq == 11 and "rewritten" in r.problem, r
    assert "added outside" not in r.problem


def test_an_event_appended_after_a_rewrite_is_not_blamed(chained: Firstline) -> None:
    """The portal goes on appending to the signed head: the new event links to the real event 12,
    so verify blamed the genuine new event ("event 13 does not link to event 12")."""
    _rewrite_from(chained, 11)
    with transaction(chained.engine) as c:
        chained.audit.append(c, Actor("tester", ("agent",)), "test.after", outcome="success")
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq == 11 and "rewritten" in r.problem, r
    assert "13 does not link" not in r.problem


def test_a_deleted_head_is_not_made_again_over_existing_events(chained: Firstline) -> None:
    """With the head row deleted, the next start made a fresh genesis head; verify then said
    "events after the signed head 0 were added outside the ledger" at 1, a genuine event."""
    _exec(chained, delete(audit_head))
    chained.audit.ensure_head(chained.engine)  # as every start does
    with chained.engine.connect() as c:
        assert c.execute(select(audit_head)).first() is None
    r = chained.verify_audit()
    assert not r.ok and r.first_bad_seq == 11 and "head is missing" in r.problem, r
    with pytest.raises(LedgerError, match="head is missing"), transaction(chained.engine) as c:
        chained.audit.append(c, Actor("tester", ("agent",)), "test.after", outcome="success")
