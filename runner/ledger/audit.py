"""The audit chain: append-only, hash-linked, with HMAC-signed head and checkpoints.

``hash(n) = SHA-256(prev_hash || canonical(n))`` where ``canonical(n)`` is the UTF-8 of the
event's canonical JSON (``FIELDS``, sorted keys, no spaces). Since ledger revision 0011 each
row stores that text in ``audit_event.canonical``, written in the same insert as its hash,
so verification hashes what was stored instead of rebuilding it; the other columns are an
index of the record (searched and shown), and verification checks that every one of them
still says what the chained record says. The head row, the first event and every
``checkpoint_every``-th event are signed with an HMAC key kept outside the database;
checkpoints are also appended
to an external file. Together they detect edits, deletions, insertions, reordering,
truncation and re-computed chains.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from runner.errors import LedgerError
from runner.ledger import prepared
from runner.ledger.store import after_commit, before_commit, reading, transaction
from runner.ledger.tables import audit_checkpoint, audit_event, audit_head, ticket
from runner.oplog import get_logger

GENESIS = "0" * 64
FIELDS = (
    "seq",
    "ts",
    "actor",
    "actor_roles",
    "on_behalf_of",
    "action",
    "target",
    "ticket",
    "runbook",
    "runbook_sha256",
    "outcome",
    "reason",
    "client_ip",
    "user_agent",
    "correlation_id",
    "detail",
)
# What an event is as people read it (exports, ``iter_events``): the fields and the links.
RECORD_COLUMNS = (*FIELDS, "prev_hash", "hash")
# Every outcome an event can have: ``append`` refuses others, so that the auditor's outcome
# filter (``runner.queries``), which accepts exactly these, can list them and refuse a typo.
# success: done; no_change: nothing needed doing; failure: not done; unknown: it may or may
# not have been applied; refused: turned away before acting; denied: not allowed (policy).
OUTCOMES = ("success", "no_change", "failure", "unknown", "refused", "denied")
CLOCK_SKEW_S = 300  # seconds a ticket may seem opened after the chain's last event (clocks of processes)
VERIFY_BATCH = 5000  # rows per fetch while verifying (memory stays constant)
EXPORT_BATCH = 1000  # rows per short read transaction while exporting


_LOCK_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
_INSERT_EVENT = audit_event.insert()
# conn.info key: (weak reference to the transaction, seq, hash) its last append wrote
_HEAD_AFTER = "firstline.audit_head_after"
# conn.info key: (weak reference to the transaction, [rows]) appended, written before its commit
_DEFERRED = "firstline.audit_deferred"
_EVENT_COLUMNS = tuple(c.name for c in audit_event.c)
_UPDATE_HEAD = update(audit_head).where(audit_head.c.id == 1)
# PostgreSQL: the event's insert and the head's update in ONE statement (a data-modifying
# CTE), so the head's row lock is held for one round trip fewer per append (many writers).
_APPEND_PG = _UPDATE_HEAD.values(seq=bindparam("h_seq"), hash=bindparam("h_hash"), mac=bindparam("h_mac")).add_cte(
    audit_event.insert().values({c.name: bindparam(c.name) for c in audit_event.c}).cte("appended")
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def canonical(row: Mapping[str, Any]) -> bytes:
    """The canonical JSON of an event's ``FIELDS`` as UTF-8 bytes (what the hash covers)."""
    return json.dumps(
        {k: row.get(k) for k in FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def chain_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The hash of an event rebuilt from its fields (64 hex digits)."""
    return hashlib.sha256(prev_hash.encode() + canonical(row)).hexdigest()


def sign(key: bytes, seq: int, head: str) -> str:
    """A checkpoint's signature (table and file): HMAC-SHA-256 of ``seq:hash``."""
    return hmac.new(key, f"{seq}:{head}".encode(), hashlib.sha256).hexdigest()


def sign_head(key: bytes, seq: int, head: str) -> str:
    """The chain head's signature: HMAC-SHA-256 of ``head:seq:hash``. Labelled so that a
    checkpoint's signature is never a valid head's: with one formula for both, copying an
    older checkpoint row into ``audit_head`` (after deleting the events past it, and cutting
    the checkpoint file) verified as a complete chain (a tester's find)."""
    return hmac.new(key, f"head:{seq}:{head}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Actor:
    """Who acts: the person (or service), their roles, on whose behalf, from where."""

    id: str
    roles: tuple[str, ...] = ()
    on_behalf_of: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None


class Held:
    """Audit events held back to be written in the transaction of what follows them, or on
    their own when nothing does; each is written exactly once.

    The agent desk's account look-up before a one-click fix is written with the ticket the
    fix opens (``runner.runs.RunService.submit`` calls ``write``), or with the refusal when
    the run is refused: one write transaction fewer per fix. ``flush`` writes whatever no
    transaction took (the caller's ``finally``). An event leaves the holder only when the
    transaction that wrote it commits (``after_commit``); one rolled back is still held.
    """

    events: list[tuple[Actor, str, dict[str, Any]]]

    def __init__(self) -> None:
        self.events = []
        self._lock = threading.Lock()

    def add(self, actor: Actor, action: str, **fields: Any) -> None:
        """Hold one event: ``AuditLog.append``'s arguments after *conn*."""
        with self._lock:
            self.events.append((actor, action, fields))

    def write(self, conn: Connection, audit: AuditLog) -> None:
        """Append the held events in *conn*'s transaction (in the order they were added)."""
        with self._lock:
            events = list(self.events)
        for actor, action, fields in events:
            audit.append(conn, actor, action, **fields)
        if events:
            after_commit(conn, lambda: self._written(events))

    def _written(self, events: list[tuple[Actor, str, dict[str, Any]]]) -> None:
        with self._lock:
            self.events = [e for e in self.events if not any(e is w for w in events)]

    def flush(self, engine: Engine, audit: AuditLog) -> None:
        """Write what is still held, in a transaction of its own. ``LedgerError``."""
        if self.events:
            with transaction(engine) as conn:
                self.write(conn, audit)


class AuditLog:
    def __init__(self, key: bytes, checkpoint_every: int, checkpoint_file: Path | None) -> None:
        self.key = key
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_file = checkpoint_file
        self._file_lock = threading.Lock()

    def append(
        self,
        conn: Connection,
        actor: Actor,
        action: str,
        *,
        outcome: str,
        target: str | None = None,
        ticket: str | None = None,
        runbook: str | None = None,
        runbook_sha256: str | None = None,
        reason: str | None = None,
        correlation_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one event in the caller's transaction. *outcome* is one of ``OUTCOMES``
        (``ValueError`` otherwise: a programming error).

        In a transaction run by ``transaction`` or ``write_retrying`` the event is written
        at the transaction's end (``before_commit``), with every other event the transaction
        appended, in the order appended: the head's row lock, which serialises every writer
        of the chain, is then held from there to the commit only, not across the rest of the
        transaction's work (with many writers on PostgreSQL, transactions waited on it most
        of the time: ``bench/burst.py``). Anywhere else, and inside a savepoint (which may
        roll back alone), it is written at once; such an event comes before the ones its
        transaction defers. Either way the event commits or rolls back with the transaction.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        row: dict[str, Any] = {
            "actor": actor.id,
            "actor_roles": ",".join(actor.roles),
            "on_behalf_of": actor.on_behalf_of,
            "action": action,
            "target": target,
            "ticket": ticket,
            "runbook": runbook,
            "runbook_sha256": runbook_sha256,
            "outcome": outcome,
            "reason": reason,
            "client_ip": actor.client_ip,
            "user_agent": actor.user_agent,
            "correlation_id": correlation_id,
            "detail": json.dumps(dict(detail or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        }
        tx = conn.get_transaction()
        if tx is not None and not conn.in_nested_transaction():
            deferred = conn.info.get(_DEFERRED)
            if deferred is not None and deferred[0]() is tx:
                deferred[1].append(row)
                return
            rows = [row]
            if before_commit(conn, lambda: self._write_deferred(conn, rows)):
                conn.info[_DEFERRED] = (weakref.ref(tx), rows)
                return
        self._write(conn, [row])

    def _write_deferred(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        conn.info.pop(_DEFERRED, None)  # an append after this (a later hook) defers anew
        self._write(conn, rows)

    def _write(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Chain *rows* (``append``'s fields) after the head, locking it, in order: each gets
        its seq, time, canonical text and hash; the head moves to the last."""
        # The head row is locked for the rest of the transaction: appends are serialised, the
        # chain stays linear. A second write in the same transaction knows the head it wrote.
        seq, prev_hash = self._head(conn)
        for row in rows:
            seq += 1
            row["seq"], row["ts"] = seq, now()
            record = canonical(row)
            row["prev_hash"] = prev_hash
            row["hash"] = prev_hash = hashlib.sha256(prev_hash.encode() + record).hexdigest()
            row["canonical"] = record.decode()
            if seq % self.checkpoint_every == 0 or seq == 1:
                # The first event too: from it on, the file outside the database knows that
                # the chain was started, so a database wiped (or replaced) before the first
                # regular checkpoint no longer verifies as an empty chain.
                row["checkpoint_mac"] = sign(self.key, seq, prev_hash)
        mac = sign_head(self.key, seq, prev_hash)
        values = [{c: r.get(c) for c in _EVENT_COLUMNS} for r in rows]
        if conn.dialect.name == "postgresql" and len(rows) == 1:
            prepared.execute(conn, _APPEND_PG, {**values[0], "h_seq": seq, "h_hash": prev_hash, "h_mac": mac})
        else:
            if len(values) <= 4:  # one prepared insert each: cheaper than Core's executemany for a few
                for value in values:
                    prepared.execute(conn, _INSERT_EVENT, value)
            else:
                conn.execute(_INSERT_EVENT, values)
            prepared.execute(conn, _UPDATE_HEAD, {"seq": seq, "hash": prev_hash, "mac": mac})
        for row in rows:
            if "checkpoint_mac" in row:
                self._checkpoint(conn, row["seq"], row["hash"], row["checkpoint_mac"])
        tx = conn.get_transaction()
        if tx is not None and not conn.in_nested_transaction():
            conn.info[_HEAD_AFTER] = (weakref.ref(tx), seq, prev_hash)

    @staticmethod
    def _head(conn: Connection) -> tuple[int, str]:
        """(seq, hash) of the chain's head, locked: read (``SELECT ... FOR UPDATE``) at the
        first append of a transaction; what this transaction's last append wrote after it.
        Inside a savepoint it is always read (and forgotten: the savepoint may roll back)."""
        known = conn.info.get(_HEAD_AFTER)
        if conn.in_nested_transaction():
            conn.info.pop(_HEAD_AFTER, None)
        elif known is not None and known[0]() is not None and known[0]() is conn.get_transaction():
            return known[1], known[2]
        head = prepared.execute(conn, _LOCK_HEAD).first()
        if head is None:
            raise LedgerError("the audit chain head is missing; open the ledger through Firstline (ensure_head)")
        return head.seq, head.hash

    def ensure_head(self, engine: Engine) -> None:
        """Create the signed genesis head once (seq 0), so that every append can lock it. A
        head signed as a checkpoint is (before ``sign_head``) is signed again as a head."""
        with reading(engine) as conn:
            head = conn.execute(
                select(audit_head.c.seq, audit_head.c.hash, audit_head.c.mac).where(audit_head.c.id == 1)
            ).first()
        if head is not None:
            seq, digest, mac = int(head.seq), str(head.hash), str(head.mac)
            old = hmac.compare_digest(sign(self.key, seq, digest), mac)
            if old and not hmac.compare_digest(sign_head(self.key, seq, digest), mac):
                with engine.begin() as conn:  # only if nothing was appended meanwhile
                    conn.execute(
                        update(audit_head)
                        .where(audit_head.c.id == 1, audit_head.c.mac == mac)
                        .values(mac=sign_head(self.key, seq, digest))
                    )
            return
        with reading(engine) as conn:
            if conn.execute(select(audit_event.c.seq).limit(1)).first() is not None:
                # events without a head: the head was deleted. A new genesis head would make the
                # chain look restarted (and verify blame event 1); left missing, every append
                # refuses (LedgerError) and verify says the head is missing.
                get_logger().error("audit.head_missing")
                return
        try:
            with engine.begin() as conn:
                conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS, mac=sign_head(self.key, 0, GENESIS)))
        except IntegrityError:
            pass  # another process created it first
        self.sync_file(engine)  # lines a process that died after its commit did not write

    def _checkpoint(self, conn: Connection, seq: int, head: str, mac: str) -> None:
        """Record a signed checkpoint in the table (this transaction) and, once it has
        committed, in the checkpoint file (``sync_file``): a line written before the commit
        would outlive a rollback or a retried append (``write_retrying``) and name a hash
        the chain never had — a false tamper alarm in every later ``verify``."""
        conn.execute(audit_checkpoint.insert().values(seq=seq, ts=now(), hash=head, mac=mac))
        if self.checkpoint_file is not None:
            engine = conn.engine
            after_commit(conn, lambda: self.sync_file(engine))

    def sync_file(self, engine: Engine) -> int:
        """Append to the checkpoint file every committed checkpoint after the file's last
        line; returns how many. Called after each commit that made a checkpoint, at start-up
        (``ensure_head``) and by the sweep, so a process that died between a commit and its
        file line is caught up by the next one. Two processes may both append a line: the
        same seq, hash and signature twice, which ``verify`` reads as one. Never raises
        (logs ``audit.checkpoint_file_failed``; the next call tries again)."""
        path = self.checkpoint_file
        if path is None:
            return 0
        try:
            with self._file_lock:
                last = _last_seq_in(path)
                if not path.exists() and self._checkpoints_before(engine) > 1:
                    # It existed (its first line is written with the chain's first event): a file
                    # written anew from the table would pin nothing. Left missing, verify says so.
                    get_logger().warning("audit.checkpoint_file_missing", file=str(path))
                    return 0
                with reading(engine) as conn:
                    rows = conn.execute(
                        select(
                            audit_checkpoint.c.seq,
                            audit_checkpoint.c.ts,
                            audit_checkpoint.c.hash,
                            audit_checkpoint.c.mac,
                        )
                        .where(audit_checkpoint.c.seq > last)
                        .order_by(audit_checkpoint.c.seq)
                    ).all()
                if not rows:
                    return 0
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as fh:
                    for r in rows:
                        fh.write(json.dumps({"seq": int(r.seq), "ts": r.ts, "hash": r.hash, "mac": r.mac}) + "\n")
                return len(rows)
        except (OSError, ValueError, SQLAlchemyError, LedgerError):
            get_logger().exception("audit.checkpoint_file_failed", file=str(path))
            return 0

    @staticmethod
    def _checkpoints_before(engine: Engine) -> int:
        """How many checkpoints the table holds (0, 1, or 2 for "more than one")."""
        with reading(engine) as conn:
            return len(conn.execute(select(audit_checkpoint.c.seq).limit(2)).all())


def _last_seq_in(path: Path) -> int:
    """The seq of the checkpoint file's last complete line (0 for none or no file)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            tail = fh.read()
    except FileNotFoundError:
        return 0
    for line in reversed(tail.splitlines()):
        if line.strip():
            try:
                return int(json.loads(line)["seq"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn line (a crash while writing): the one before it counts
    return 0


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify(engine: Engine, key: bytes, checkpoint_file: Path | None) -> VerifyReport:
    """Check the whole chain; report the first sequence number that does not hold.

    What holds: sequence numbers 1..N without gaps; each row's ``prev_hash`` is the hash
    before it (``GENESIS`` for 1); each ``hash`` is SHA-256 of the previous hash and the
    stored canonical record (rebuilt from the columns for a row without one, written
    before revision 0011); every column equals the field of that name in the canonical
    record; every checkpoint (table and file) is signed with *key* and equals the hash at
    its sequence; the head is signed, names the last event and its hash.

    Two passes, one answer: ``_fast_ok`` (the hash chain over the stored bytes, streamed,
    while the database compares the columns with the records in one scan on a second
    connection) says only "all holds"; when it does not, the row-by-row walk ``_walk``
    names the first sequence and the problem. Memory stays constant (batches of
    ``VERIFY_BATCH``; a server-side cursor on PostgreSQL).
    """
    checkpoints, external, problem = _signed_checkpoints(engine, key, checkpoint_file)
    if problem is not None:
        return problem
    missing = _missing_anchor(engine, checkpoint_file, checkpoints)
    if missing is not None:
        return missing
    count = _fast_ok(engine, key, checkpoints, external)
    if count is not None:
        return VerifyReport(True, count)
    return _walk(engine, key, checkpoints, external)


def _missing_anchor(
    engine: Engine, checkpoint_file: Path | None, checkpoints: Mapping[int, str]
) -> VerifyReport | None:
    """Deletions that leave nothing inconsistent inside the database, found from outside the chain.

    The checkpoint file (kept outside the database; written from the chain's first event
    on) is gone while the chain has begun: everything it would have pinned could have been
    rewritten. Or the chain is empty — no head past the start, no checkpoint — while the
    ledger holds tickets, each of which was opened with an audit event: the events were
    deleted (with the checkpoint file too, or none is configured). Either is not verified.
    """
    from runner.ledger.tickets import number_of  # that module appends through this one

    with reading(engine) as conn:
        head = _head(conn)
        newest = conn.execute(
            select(ticket.c.id, ticket.c.opened_at).order_by(ticket.c.opened_at.desc(), ticket.c.id.desc()).limit(1)
        ).first()
        has_tickets = newest is not None
        # the newest event's time (not the head's: an event may carry an earlier time than
        # the one before it, a process's clock behind another's)
        last_ts = conn.execute(select(func.max(audit_event.c.ts))).scalar()
    begun = (head is not None and int(head.seq) > 0) or bool(checkpoints)
    if checkpoint_file is not None and begun and not checkpoint_file.exists():
        return VerifyReport(
            False,
            0,
            1,
            f"the checkpoint file {checkpoint_file.name} is missing (it is kept outside the database from the "
            "first event on)",
        )
    if not begun and has_tickets:
        return VerifyReport(
            False, 0, 1, "the audit chain is empty, but the ledger holds tickets (their events are gone)"
        )
    if newest is not None and last_ts is not None and head is not None:
        # every ticket is opened with an event written after it: a ticket opened (well) after
        # the chain's last event means the tail was cut (a head moved back, the checkpoint file
        # cut to match). CLOCK_SKEW_S allows for processes whose clocks differ a little.
        try:
            late = datetime.fromisoformat(str(newest.opened_at)) - datetime.fromisoformat(str(last_ts))
        except ValueError:
            late = None
        if late is not None and late.total_seconds() > CLOCK_SKEW_S:
            return VerifyReport(
                False,
                int(head.seq),
                int(head.seq) + 1,
                f"ticket {number_of(int(newest.id))} was opened after the chain's last event: events are missing",
            )
    return None


def _signed_checkpoints(
    engine: Engine, key: bytes, checkpoint_file: Path | None
) -> tuple[dict[int, str], dict[int, str], VerifyReport | None]:
    """The checkpoints of the table and of the file (seq -> hash), or the first one whose
    signature is wrong."""
    with reading(engine) as conn:
        rows = list(conn.execute(select(audit_checkpoint.c.seq, audit_checkpoint.c.hash, audit_checkpoint.c.mac)))
    table = {int(r.seq): (str(r.hash), str(r.mac)) for r in rows}
    external: dict[int, tuple[str, str]] = {}
    if checkpoint_file is not None and checkpoint_file.exists():
        lines = checkpoint_file.read_bytes().split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                cp = json.loads(line.decode("utf-8"))
                external[int(cp["seq"])] = (str(cp["hash"]), str(cp["mac"]))
            except (UnicodeDecodeError, ValueError, KeyError, TypeError):
                if number == len(lines):  # the last line, with no line break: torn by a crash while written
                    continue
                problem = f"the checkpoint file {checkpoint_file.name} has a line that is no checkpoint (line {number})"
                return {}, {}, VerifyReport(False, 0, None, problem)
    for seq, (cp_hash, mac) in {**table, **external}.items():
        if not hmac.compare_digest(sign(key, seq, cp_hash), mac):
            return {}, {}, VerifyReport(False, 0, seq, f"checkpoint at {seq} has a bad signature")
    return {s: h for s, (h, _m) in table.items()}, {s: h for s, (h, _m) in external.items()}, None


def _head(conn: Connection) -> Any:
    return conn.execute(
        select(audit_head.c.seq, audit_head.c.hash, audit_head.c.mac).where(audit_head.c.id == 1)
    ).first()


# -- the fast pass ------------------------------------------------------------------------
def _agreement_sql(dialect: str, last: int) -> str:
    """One scan over events 1..*last*: how many, the lowest and highest seq, and the first
    seq whose columns disagree with its stored record. Only constants and an int go into
    this text (no value a person typed)."""
    if dialect == "sqlite":
        record = "json_object(" + ", ".join(f"'{k}', {k}" for k in sorted(FIELDS)) + ")"
        # json_object writes what canonical() writes (sorted keys, no spaces, the same escapes),
        # so equal text is equal fields; a value spelled otherwise only sends verify to _walk.
        differs = f"canonical IS NOT NULL AND canonical IS NOT {record}"
    else:
        record = "jsonb_build_object(" + ", ".join(f"'{k}', {k}" for k in sorted(FIELDS)) + ")"
        differs = f"canonical IS NOT NULL AND canonical::jsonb IS DISTINCT FROM {record}"
    return (
        f"SELECT count(*), min(seq), max(seq), min(CASE WHEN {differs} THEN seq END) "  # noqa: S608
        f"FROM audit_event WHERE seq <= {int(last)}"
    )


def _agreement(engine: Engine, last: int, out: list[Any]) -> None:
    """Run ``_agreement_sql`` on a connection of its own (the database works while Python hashes)."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(_agreement_sql(engine.dialect.name, last))
        out.append(cur.fetchone())
        cur.close()
    except Exception as exc:  # noqa: BLE001 - any failure (e.g. a record that is not JSON) means "walk"
        out.append(exc)
    finally:
        raw.rollback()
        raw.close()


def _fast_ok(engine: Engine, key: bytes, checkpoints: dict[int, str], external: dict[int, str]) -> int | None:
    """The number of events when the whole chain holds; None when anything does not (or
    the database is neither SQLite nor PostgreSQL)."""
    dialect = engine.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return None
    cps: dict[int, str] = dict(checkpoints)
    for seq, cp_hash in external.items():
        if cps.setdefault(seq, cp_hash) != cp_hash:
            return None
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        raw.rollback()  # a pool ping may have opened a transaction; the snapshot starts here
        cur = raw.cursor()
        if dialect == "sqlite":
            cur.execute("BEGIN")  # deferred: one read snapshot, no write lock (WAL)
        else:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
        head = cur.fetchone()
        if head is None or not hmac.compare_digest(sign_head(key, int(head[0]), str(head[1])), str(head[2])):
            return None
        last, head_hash = int(head[0]), str(head[1])
        found: list[Any] = []
        checker = threading.Thread(target=_agreement, args=(engine, last, found), name="audit-verify", daemon=True)
        checker.start()
        try:
            count = _chain_ok(driver, dialect, sorted(cps.items()))
        finally:
            checker.join()
        if count is None or count != (last, head_hash):
            return None
        result = found[0] if found else None
        if isinstance(result, BaseException) or result is None:
            return None
        n, low, high, bad = result
        if int(n) != last or bad is not None or (last and (int(low) != 1 or int(high) != last)):
            return None
        return last
    finally:
        raw.rollback()
        raw.close()


def _chain_ok(driver: Any, dialect: str, cps: list[tuple[int, str]]) -> tuple[int, str] | None:
    """Hash the stored records in seq order: (events, last hash) when every stored hash,
    link (``prev_hash``) and checkpoint matches, else None. Positions are sequence numbers here: the scan in
    ``_agreement`` proves 1..N has no gaps."""
    if dialect == "sqlite":
        cur = driver.cursor()
        cur.execute("SELECT prev_hash, hash, CAST(canonical AS BLOB) FROM audit_event ORDER BY seq")
    else:
        cur = driver.cursor(name="firstline_audit_verify")  # server-side: constant memory
        cur.itersize = VERIFY_BATCH
        cur.execute("SELECT prev_hash, hash, convert_to(canonical, 'UTF8') FROM audit_event ORDER BY seq")
    sha = hashlib.sha256
    prev, pos, cp_at = GENESIS, 0, 0
    try:
        while rows := cur.fetchmany(VERIFY_BATCH):
            links, stored, records = zip(*rows, strict=True)
            if None in records:
                records = tuple(_rebuilt(driver, pos + i + 1) if r is None else r for i, r in enumerate(records))
            computed: list[str] = []
            keep = computed.append
            link = prev.encode()
            for record in records:
                digest = sha(link + record).hexdigest()
                keep(digest)
                link = digest.encode()
            # every stored hash is the computed one, every prev_hash the hash before it
            if tuple(computed) != stored or links[0] != prev or links[1:] != stored[:-1]:
                return None
            end = pos + len(rows)
            while cp_at < len(cps) and cps[cp_at][0] <= end:
                seq, cp_hash = cps[cp_at]
                if seq <= pos or computed[seq - pos - 1] != cp_hash:
                    return None
                cp_at += 1
            prev, pos = computed[-1], end
    finally:
        cur.close()
    if cp_at < len(cps):  # a signed checkpoint beyond the last event
        return None
    return pos, prev


def _rebuilt(driver: Any, seq: int) -> bytes:
    """The canonical record of a row stored without one (before revision 0011), from its columns."""
    cur = driver.cursor()
    try:
        cur.execute(f"SELECT {', '.join(FIELDS)} FROM audit_event WHERE seq = {int(seq)}")  # noqa: S608 - an int
        row = cur.fetchone()
    finally:
        cur.close()
    return b"" if row is None else canonical(dict(zip(FIELDS, row, strict=True)))


# -- the row-by-row walk ------------------------------------------------------------------
def _walk(engine: Engine, key: bytes, checkpoints: dict[int, str], external: dict[int, str]) -> VerifyReport:
    """Every check, row by row, in order: the first sequence number that does not hold."""
    with reading(engine) as conn:
        head = _head(conn)
        head_signed = head is not None and hmac.compare_digest(sign_head(key, head.seq, head.hash), head.mac)

        def broken(count: int, seq: int, problem: str) -> VerifyReport:
            if head is not None and not head_signed:
                problem += "; the chain head's signature does not match either (the chain was rewritten)"
            return VerifyReport(False, count, seq, problem)

        prev_hash, expected, count, last_good_cp = GENESIS, 1, 0, 0
        hash_at_head = GENESIS  # the hash of the event the head names (seq 0: GENESIS)
        rows = conn.execution_options(stream_results=True, yield_per=VERIFY_BATCH).execute(
            select(audit_event).order_by(audit_event.c.seq)
        )
        for found in rows.mappings():
            row: Mapping[str, Any] = dict(found)
            seq = row["seq"]
            if seq != expected:
                jump = f"sequence jumps from {expected - 1} to {seq} (events missing or inserted)"
                return broken(count, min(seq, expected), jump)
            if row["prev_hash"] != prev_hash:
                if head_signed and head is not None and _vouched(conn, seq, head):
                    # events seq..head chain up to the signed head: they are what was appended,
                    # so what changed is before them (a rewrite since the last good checkpoint,
                    # then an event appended to the real head), not event seq
                    return VerifyReport(
                        False,
                        count,
                        last_good_cp + 1,
                        f"events after {last_good_cp} were rewritten: event {seq} and those after it up to "
                        f"the signed head {head.seq} are genuine, but event {seq - 1} is not the one they follow",
                    )
                return broken(count, seq, f"event {seq} does not link to event {seq - 1}")
            stored, rebuilt = row["canonical"], canonical(row)
            record = rebuilt if stored is None else stored.encode()
            if hashlib.sha256(prev_hash.encode() + record).hexdigest() != row["hash"]:
                return broken(count, seq, f"event {seq} was altered (hash mismatch)")
            if record != rebuilt:
                return broken(count, seq, f"event {seq} was altered ({_differing(row, record)})")
            for source in (checkpoints, external):
                cp_hash = source.get(seq)
                if cp_hash is not None and cp_hash != row["hash"]:
                    return broken(
                        count,
                        last_good_cp + 1,
                        f"events after {last_good_cp} differ from the signed checkpoint at {seq} "
                        "(the chain was rewritten)",
                    )
            if seq in checkpoints or seq in external:
                last_good_cp = seq
            if head is not None and seq == head.seq:
                hash_at_head = row["hash"]
            prev_hash, expected, count = row["hash"], seq + 1, count + 1
        rows.close()
    last = expected - 1
    signed_max = max([*checkpoints, *external, 0])
    if head is not None and not head_signed:
        return VerifyReport(
            False,
            count,
            min(head.seq, last) + 1 if last < head.seq else last_good_cp + 1,
            "the chain head's signature does not match (the chain was rewritten)",
        )
    if head is not None and (head.seq > last or signed_max > last):
        return VerifyReport(
            False,
            count,
            last + 1,
            f"events after {last} are missing (signed head/checkpoint reaches {max(head.seq, signed_max)})",
        )
    if head is not None and head.hash != hash_at_head:
        # the stored event at the head's seq is not the one the signed head names: the events
        # since the last good checkpoint were rewritten (their hashes recomputed to agree)
        return VerifyReport(
            False,
            count,
            last_good_cp + 1,
            f"events after {last_good_cp} were rewritten: event {head.seq} is not the one the signed head names",
        )
    if head is not None and head.seq != last:
        return VerifyReport(
            False, count, head.seq + 1, f"events after the signed head {head.seq} were added outside the ledger"
        )
    if head is None and count:
        return VerifyReport(
            False,
            count,
            last_good_cp + 1,
            f"the signed chain head is missing (deleted): events after {last_good_cp} cannot be vouched for",
        )
    if head is None and signed_max:
        return VerifyReport(False, count, 1, f"events up to {signed_max} are missing (the chain head is missing)")
    return VerifyReport(True, count)


def _vouched(conn: Connection, seq: int, head: Any) -> bool:
    """Do the stored events *seq*..``head.seq`` form an intact chain that ends at the signed
    head's hash? Then the head vouches for them (only the key could have signed it), and a
    link broken at *seq* means an event before it changed, not event *seq*."""
    if head.seq < seq:
        return False
    rows = conn.execute(
        select(audit_event).where(audit_event.c.seq >= seq, audit_event.c.seq <= head.seq).order_by(audit_event.c.seq)
    )
    prev_hash, expected = None, seq
    for found in rows.mappings():
        row = dict(found)
        if row["seq"] != expected or (prev_hash is not None and row["prev_hash"] != prev_hash):
            return False
        stored, rebuilt = row["canonical"], canonical(row)
        record = rebuilt if stored is None else stored.encode()
        if record != rebuilt or hashlib.sha256(row["prev_hash"].encode() + record).hexdigest() != row["hash"]:
            return False
        prev_hash, expected = row["hash"], expected + 1
    return bool(expected == head.seq + 1 and prev_hash == head.hash)


def _differing(row: Mapping[str, Any], record: bytes) -> str:
    """Which columns of *row* no longer say what its chained *record* says."""
    try:
        chained = json.loads(record)
    except ValueError:
        return "its stored record is not JSON"
    if not isinstance(chained, dict):
        return "its stored record is not a JSON object"
    names = [k for k in FIELDS if chained.get(k) != row.get(k)] or ["record"]
    if len(names) == 1:
        return f"column {names[0]} differs from the chained record"
    return f"columns {', '.join(names)} differ from the chained record"


# -- reading and exporting ----------------------------------------------------------------
def _instant(value: datetime | str | None, what: str) -> str | None:
    """A filter bound in the stored ``ts`` form (see ``now``), so the SQL text comparison
    compares instants. Strings go through ``runner.timeparse.parse_instant`` (no offset = UTC)."""
    from runner.timeparse import parse_instant, stored

    if value is None:
        return None
    return stored(parse_instant(value, what=what) if isinstance(value, str) else value)


def iter_events(
    engine: Engine, since: datetime | str | None = None, until: datetime | str | None = None
) -> Iterator[dict[str, Any]]:
    """Events in sequence order (``RECORD_COLUMNS``, ``detail`` decoded); *since* inclusive,
    *until* exclusive (aware datetimes or text ``parse_instant`` accepts; ``TimeParseError``
    otherwise). Read ``EXPORT_BATCH`` rows at a time by keyset, each batch in a short read,
    up to the last event when iteration started: memory stays constant, writers never wait."""
    lower, upper = _instant(since, "since"), _instant(until, "until")
    columns = [audit_event.c[k] for k in RECORD_COLUMNS]
    with reading(engine) as conn:
        top = conn.execute(select(func.max(audit_event.c.seq))).scalar()
    after = 0
    while top is not None and after < top:
        q = select(*columns).where(audit_event.c.seq > after, audit_event.c.seq <= top)
        if lower is not None:
            q = q.where(audit_event.c.ts >= lower)
        if upper is not None:
            q = q.where(audit_event.c.ts < upper)
        with reading(engine) as conn:
            batch = list(conn.execute(q.order_by(audit_event.c.seq).limit(EXPORT_BATCH)).mappings())
        for row in batch:
            out = dict(row)
            out["detail"] = json.loads(out["detail"])
            yield out
        if len(batch) < EXPORT_BATCH:
            return
        after = int(batch[-1]["seq"])


def export(
    engine: Engine, fmt: str, since: datetime | str | None = None, until: datetime | str | None = None
) -> Iterator[str]:
    """Yield lines of JSON Lines (canonical, values as stored) or CSV (cells neutralised:
    control and bidi characters escaped, formula prefixes quoted)."""
    if fmt == "jsonl":
        for ev in iter_events(engine, since, until):
            yield json.dumps(ev, ensure_ascii=False, sort_keys=True) + "\n"
        return
    cols = list(RECORD_COLUMNS)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    yield buf.getvalue()
    for ev in iter_events(engine, since, until):
        buf.seek(0)
        buf.truncate()
        ev["detail"] = json.dumps(ev["detail"], sort_keys=True, ensure_ascii=False)
        writer.writerow({k: _csv_safe(ev.get(k)) for k in cols})
        yield buf.getvalue()


def _csv_safe(value: Any) -> Any:
    # Spreadsheet formula injection: a cell starting with = + - @ is prefixed with '.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        value = "'" + value
    if isinstance(value, str):
        from runner.safetext import shown

        return shown(value)  # a newline or bidi override in a stored value cannot forge rows or hide text
    return value
