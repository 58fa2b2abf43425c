"""Sealed secret values crossing processes (docs/architecture.md "Secrets across the seam").

A secret that must travel from one Firstline process to another — a requester's new
password from the portal to a Celery worker, a generated temporary password from the worker
back to the portal process that answers, a once-only value between the POST and the GET of a
post/redirect/get — is encrypted with ``FIRSTLINE_RUN_KEY`` (``RunKey``: Fernet, AES-128-CBC
+ HMAC-SHA256; several keys rotate through ``MultiFernet``, the first encrypts) and stored
as a token in the database (``runner.ledger.sealed_tables``). The key is given to the portal
and the workers only, never to the database: a backup, a replica or an auditor's access
yields tokens, not secrets. Each row is read once and deleted in the same transaction, and a
token older than its time to live is refused by Fernet's TTL check.

Shapes: values are ``dict[str, str | None]`` (parameter or output name → value); tokens are
ASCII text (URL-safe base64). Nothing here logs a value or a token.
"""

from __future__ import annotations

import hashlib
import json
import secrets as secrets_mod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update

from runner.errors import ConfigError
from runner.ledger import prepared
from runner.ledger.sealed_tables import once_secret, run_key_probe, run_secret
from runner.ledger.store import transaction

PARAMS = "params"  # a run's secret parameters, submit → claim
OUTPUTS = "outputs"  # a run's once-only outputs (temporary password), final state → first reader
READS = "reads"  # the look-up made for the request (runner.engine.Prefetched), submit → claim
KINDS = (PARAMS, OUTPUTS, READS)
OUTPUTS_TTL = 600  # seconds a run's once-only outputs wait for their reader
MAX_TOKEN = 64  # longest once-token accepted from a URL


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class RunKey:
    """Encrypts and decrypts value maps with one or more Fernet keys (the first encrypts).

    *keys*: URL-safe base64 Fernet keys (``Settings.run_keys()``); ``ConfigError`` for an
    empty list or a key Fernet refuses."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ConfigError("FIRSTLINE_RUN_KEY holds no key")
        try:
            fernets = [Fernet(k) for k in keys]
            self._fernet, self._first = MultiFernet(fernets), fernets[0]
        except (ValueError, TypeError) as exc:
            raise ConfigError("FIRSTLINE_RUN_KEY holds a value that is not a Fernet key") from exc

    def seal(self, values: Mapping[str, Any]) -> str:
        """*values* (JSON-able) as a token (ASCII text) carrying its creation time."""
        return self._fernet.encrypt(json.dumps(dict(values), separators=(",", ":")).encode("utf-8")).decode("ascii")

    def rotate(self, token: str) -> str:
        """*token* sealed again with the first key when it was sealed with another of these keys
        (``MultiFernet.rotate``); *token* itself when it already was. Its time is kept."""
        if self._first_opens(token):
            return token
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def _first_opens(self, token: str) -> bool:
        try:
            self._first.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError, ValueError):
            return False
        return True

    def open(self, token: str, ttl: float | None = None) -> dict[str, Any] | None:
        """The values of *token*; None when it was sealed with another key, altered, or is
        older than *ttl* seconds (None: no age limit)."""
        try:
            data = self._fernet.decrypt(token.encode("ascii"), ttl=max(1, int(ttl)) if ttl is not None else None)
            found = json.loads(data.decode("utf-8"))
        except (InvalidToken, UnicodeError, ValueError):
            return None
        return found if isinstance(found, dict) else None


PROBE_VALUES = {"probe": "the run key of this ledger"}  # what the probe holds: no secret
KEY_MISMATCH = (
    "FIRSTLINE_RUN_KEY is not the key the other processes of this database use: what they seal (a new "
    "password on its way to a worker) could not be opened here, nor the other way round. Give every portal "
    "and worker the same FIRSTLINE_RUN_KEY (or FIRSTLINE_RUN_KEY_FILE); to change it, put the new key first "
    "and the old one after it, comma-separated, everywhere"
)


def check_key(engine: Engine, key: RunKey) -> None:
    """Prove that *key* opens what the other processes of this ledger seal.

    The ``run_key_probe`` row (revision 0017) holds a token of ``PROBE_VALUES``: when *key*
    cannot open it, ``ConfigError`` (``KEY_MISMATCH``) — the process must not start. When it
    can, the token is sealed again with *key*'s first key (a rotation: from then on a process
    that lacks the new key is told so); with no row yet, this key's token is the first.
    ``LedgerError`` when the database cannot be written."""
    with transaction(engine) as conn:
        token = conn.execute(select(run_key_probe.c.token).where(run_key_probe.c.id == 1)).scalar()
        now = _ts(datetime.now(UTC))
        if token is None:
            conn.execute(insert(run_key_probe).values(id=1, token=key.seal(PROBE_VALUES), sealed_at=now))
            return
        if key.open(str(token)) != PROBE_VALUES:
            raise ConfigError(KEY_MISMATCH)
        fresh = key.rotate(str(token))
        if fresh != token:
            conn.execute(update(run_key_probe).where(run_key_probe.c.id == 1).values(token=fresh, sealed_at=now))


def key_of(settings: Any) -> RunKey | None:
    """The run key of *settings* (``Settings.run_keys()``), or None when none is configured
    (``prod`` without ``FIRSTLINE_RUN_KEY`` / its file). ``ConfigError`` for a bad key."""
    keys = settings.run_keys()
    return RunKey(keys) if keys else None


# -- run_secret: one row per (ticket, kind) ----------------------------------------------
# Sent as SQL text after their first use (runner.ledger.prepared): a claim takes its sealed kinds.
_PUT = run_secret.insert()
_TOKEN = select(run_secret.c.token).where(
    run_secret.c.ticket_id == bindparam("b_ticket"), run_secret.c.kind == bindparam("b_kind")
)
_TOKENS = select(run_secret.c.kind, run_secret.c.token).where(run_secret.c.ticket_id == bindparam("b_ticket"))
_DELETE_KIND = delete(run_secret).where(
    run_secret.c.ticket_id == bindparam("b_ticket"), run_secret.c.kind == bindparam("b_kind")
)


def put(conn: Connection, key: RunKey, ticket_id: int, kind: str, values: Mapping[str, Any]) -> None:
    """Store *values* sealed for *ticket_id* in the caller's transaction (one row per kind;
    a second put for the same ticket and kind fails with the database's unique error)."""
    if kind not in KINDS:
        raise ValueError(f"unknown sealed kind {kind!r}")
    prepared.execute(
        conn,
        _PUT,
        {"ticket_id": ticket_id, "kind": kind, "token": key.seal(values), "created_at": _ts(datetime.now(UTC))},
    )


def take(conn: Connection, ticket_id: int, kind: str) -> str | None:
    """Read and delete the token of (*ticket_id*, *kind*) in the caller's transaction; None
    when there is none or a concurrent reader deleted it first (exactly one reader gets it)."""
    where = {"b_ticket": ticket_id, "b_kind": kind}
    token = prepared.execute(conn, _TOKEN, where).scalar()
    if token is None:
        return None
    gone = prepared.execute(conn, _DELETE_KIND, where)
    return str(token) if gone.rowcount == 1 else None


def take_kinds(conn: Connection, ticket_id: int, kinds: Sequence[str]) -> dict[str, str]:
    """``take`` for several kinds in one read (and one delete when any is there): kind →
    token of those present; ``{}`` also when a concurrent reader deleted them first."""
    wanted = set(kinds)
    found = {
        str(r.kind): str(r.token)
        for r in prepared.execute(conn, _TOKENS, {"b_ticket": ticket_id})
        if str(r.kind) in wanted
    }
    gone = sum(prepared.execute(conn, _DELETE_KIND, {"b_ticket": ticket_id, "b_kind": kind}).rowcount for kind in found)
    return found if found and gone == len(found) else {}


def take_values(engine: Engine, key: RunKey | None, ticket_id: int, kind: str, ttl: float) -> dict[str, Any]:
    """``take`` in its own transaction, opened with *key* (``{}`` when absent, expired or
    not readable with *key*)."""
    with transaction(engine) as conn:
        token = take(conn, ticket_id, kind)
    if token is None or key is None:
        return {}
    return key.open(token, ttl) or {}


def purge(engine: Engine, params_ttl: float) -> int:
    """Delete sealed rows no reader can use any more: ``params`` and ``reads`` older than *params_ttl*
    seconds (the run start limit), ``outputs`` older than ``OUTPUTS_TTL``, expired
    ``once_secret`` rows. Returns how many were deleted."""
    now = datetime.now(UTC)
    with transaction(engine) as conn:
        count = conn.execute(
            delete(run_secret).where(
                run_secret.c.kind.in_((PARAMS, READS)),
                run_secret.c.created_at < _ts(now - timedelta(seconds=params_ttl)),
            )
        ).rowcount
        count += conn.execute(
            delete(run_secret).where(
                run_secret.c.kind == OUTPUTS, run_secret.c.created_at < _ts(now - timedelta(seconds=OUTPUTS_TTL))
            )
        ).rowcount
        count += conn.execute(delete(once_secret).where(once_secret.c.expires_at < _ts(now))).rowcount
    return int(count)


# -- once_secret: the portal's post/redirect/get -------------------------------------------
def _once_hash(token: str, owner: str, subject: str) -> str:
    return hashlib.sha256(f"firstline-once\0{token}\0{owner}\0{subject}".encode()).hexdigest()


def put_once(engine: Engine, key: RunKey, owner: str, subject: str, secret: str, ttl: float) -> str:
    """Keep *secret* sealed for one read by *owner* (a session key) about *subject* (a
    ticket number) within *ttl* seconds; returns a random token for the redirect URL."""
    token = secrets_mod.token_urlsafe(24)
    expires = _ts(datetime.now(UTC) + timedelta(seconds=ttl))
    with transaction(engine) as conn:
        conn.execute(
            once_secret.insert(),
            {"key_hash": _once_hash(token, owner, subject), "token": key.seal({"s": secret}), "expires_at": expires},
        )
    return token


def take_once(engine: Engine, key: RunKey, token: str | None, owner: str, subject: str, ttl: float) -> str | None:
    """The secret kept by ``put_once``, once: None when unknown, expired, already taken, or
    asked by another owner or about another subject."""
    if not token or len(token) > MAX_TOKEN:
        return None
    digest = _once_hash(token, owner, subject)
    with transaction(engine) as conn:
        row = conn.execute(
            select(once_secret.c.token, once_secret.c.expires_at).where(once_secret.c.key_hash == digest)
        ).first()
        if row is None:
            return None
        if conn.execute(delete(once_secret).where(once_secret.c.key_hash == digest)).rowcount != 1:
            return None
    if row.expires_at < _ts(datetime.now(UTC)):
        return None
    found = key.open(str(row.token), ttl + 5)
    value = found.get("s") if found else None
    return value if isinstance(value, str) else None
