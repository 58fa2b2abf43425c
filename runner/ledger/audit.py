"""The audit chain: append-only, hash-linked, with HMAC-signed head and checkpoints.

``hash(n) = SHA-256(prev_hash || canonical_json(fields of n))``. The head row and every
``checkpoint_every``-th event are signed with an HMAC key kept outside the database;
checkpoints are also appended to an external file. Together they detect edits,
deletions, insertions, reordering, truncation and re-computed chains.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from runner.errors import LedgerError
from runner.ledger.tables import audit_checkpoint, audit_event, audit_head

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


_LOCK_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
_INSERT_EVENT = audit_event.insert()
_UPDATE_HEAD = update(audit_head).where(audit_head.c.id == 1)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def canonical(row: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {k: row.get(k) for k in FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def chain_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(row)).hexdigest()


def sign(key: bytes, seq: int, head: str) -> str:
    return hmac.new(key, f"{seq}:{head}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Actor:
    """Who acts: the person (or service), their roles, on whose behalf, from where."""

    id: str
    roles: tuple[str, ...] = ()
    on_behalf_of: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None


class AuditLog:
    def __init__(self, key: bytes, checkpoint_every: int, checkpoint_file: Path | None) -> None:
        self.key = key
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_file = checkpoint_file

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
    ) -> int:
        """Append one event inside the caller's transaction; return its sequence number."""
        # The head row is locked for the whole transaction: appends are serialised, the chain stays linear.
        head = conn.execute(_LOCK_HEAD).first()
        if head is None:
            raise LedgerError("the audit chain head is missing; open the ledger through Firstline (ensure_head)")
        prev_seq, prev_hash = head.seq, head.hash
        row: dict[str, Any] = {
            "seq": prev_seq + 1,
            "ts": now(),
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
        row["prev_hash"] = prev_hash
        row["hash"] = chain_hash(prev_hash, row)
        conn.execute(_INSERT_EVENT, row)
        mac = sign(self.key, row["seq"], row["hash"])
        conn.execute(_UPDATE_HEAD, {"seq": row["seq"], "hash": row["hash"], "mac": mac})
        if row["seq"] % self.checkpoint_every == 0:
            self._checkpoint(conn, row["seq"], row["hash"], mac)
        seq: int = row["seq"]
        return seq

    def ensure_head(self, engine: Engine) -> None:
        """Create the signed genesis head once (seq 0), so that every append can lock it."""
        with engine.connect() as conn:
            if conn.execute(select(audit_head.c.id).where(audit_head.c.id == 1)).first() is not None:
                return
        try:
            with engine.begin() as conn:
                conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS, mac=sign(self.key, 0, GENESIS)))
        except IntegrityError:
            pass  # another process created it first

    def _checkpoint(self, conn: Connection, seq: int, head: str, mac: str) -> None:
        ts = now()
        conn.execute(audit_checkpoint.insert().values(seq=seq, ts=ts, hash=head, mac=mac))
        if self.checkpoint_file is not None:
            self.checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
            with self.checkpoint_file.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"seq": seq, "ts": ts, "hash": head, "mac": mac}) + "\n")


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify(engine: Engine, key: bytes, checkpoint_file: Path | None) -> VerifyReport:
    """Walk the whole chain; report the first sequence number that does not hold."""
    with engine.connect() as conn:
        checkpoints = {r.seq: r for r in conn.execute(select(audit_checkpoint))}
        head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).first()
        external: dict[int, Any] = {}
        if checkpoint_file is not None and checkpoint_file.exists():
            for line in checkpoint_file.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    cp = json.loads(line)
                    external[int(cp["seq"])] = cp
        for seq, cp in {**{s: {"hash": c.hash, "mac": c.mac} for s, c in checkpoints.items()}, **external}.items():
            if not hmac.compare_digest(sign(key, seq, cp["hash"]), cp["mac"]):
                return VerifyReport(False, 0, seq, f"checkpoint at {seq} has a bad signature")
        prev_hash, expected, count, last_good_cp = GENESIS, 1, 0, 0
        for row in conn.execute(select(audit_event).order_by(audit_event.c.seq)).mappings():
            seq = row["seq"]
            if seq != expected:
                bad = min(seq, expected)
                return VerifyReport(
                    False, count, bad, f"sequence jumps from {expected - 1} to {seq} (events missing or inserted)"
                )
            if row["prev_hash"] != prev_hash:
                return VerifyReport(False, count, seq, f"event {seq} does not link to event {seq - 1}")
            if chain_hash(prev_hash, dict(row)) != row["hash"]:
                return VerifyReport(False, count, seq, f"event {seq} was altered (hash mismatch)")
            for source in (checkpoints.get(seq), external.get(seq)):
                cp_hash = None if source is None else (source["hash"] if isinstance(source, dict) else source.hash)
                if cp_hash is not None and cp_hash != row["hash"]:
                    return VerifyReport(
                        False,
                        count,
                        last_good_cp + 1,
                        f"events after {last_good_cp} differ from the signed checkpoint at {seq} "
                        "(the chain was rewritten)",
                    )
            if seq in checkpoints or seq in external:
                last_good_cp = seq
            prev_hash, expected, count = row["hash"], seq + 1, count + 1
        last = expected - 1
        signed_max = max([*checkpoints, *external, 0])
        if head is not None and not hmac.compare_digest(sign(key, head.seq, head.hash), head.mac):
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
        if head is not None and (head.seq != last or head.hash != prev_hash):
            return VerifyReport(
                False, count, head.seq + 1, f"events after the signed head {head.seq} were added outside the ledger"
            )
        if head is None and count:
            return VerifyReport(False, count, 1, "the signed chain head is missing")
        return VerifyReport(True, count)


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
    """Events in sequence order; *since* inclusive, *until* exclusive (aware datetimes or
    text ``parse_instant`` accepts; ``TimeParseError`` otherwise)."""
    lower, upper = _instant(since, "since"), _instant(until, "until")
    with engine.connect() as conn:
        q = select(audit_event).order_by(audit_event.c.seq)
        if lower is not None:
            q = q.where(audit_event.c.ts >= lower)
        if upper is not None:
            q = q.where(audit_event.c.ts < upper)
        for row in conn.execute(q).mappings():
            out = dict(row)
            out["detail"] = json.loads(out["detail"])
            yield out


def export(
    engine: Engine, fmt: str, since: datetime | str | None = None, until: datetime | str | None = None
) -> Iterator[str]:
    """Yield lines of JSON Lines (canonical, values as stored) or CSV (cells neutralised:
    control and bidi characters escaped, formula prefixes quoted)."""
    if fmt == "jsonl":
        for ev in iter_events(engine, since, until):
            yield json.dumps(ev, ensure_ascii=False, sort_keys=True) + "\n"
        return
    cols = [*FIELDS, "prev_hash", "hash"]
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
