"""Hand a run's once-only secret (a generated temporary password) from the POST that ran
the fix to the one page that shows it (post/redirect/get), whichever portal process answers.

``put(owner, ticket, secret)`` → a random token for the redirect URL; ``take(token,
owner, ticket)`` gives the secret once (and forgets it) when the same signed-in session
asks for the same ticket within ``TTL`` seconds; afterwards, and for anyone else, None.

Where it is kept: sealed in the ledger (``runner.sealed.put_once`` — a Fernet token under
``FIRSTLINE_RUN_KEY``, keyed by a hash of token, owner and ticket, deleted on the first
read) once ``configure`` has been given a run key, so ``firstline serve --workers N`` and
several portal machines work; without a run key (a single process in ``prod`` without
``FIRSTLINE_RUN_KEY``) in this process's memory only. Never in plain in the database, a log,
a cookie or a ticket; a reload of the result page shows no secret.
"""

from __future__ import annotations

import secrets
import threading
import time

from sqlalchemy import Engine

from runner import sealed

TTL = 120.0  # seconds between the fix's answer and the result page
MAX_ENTRIES = 1000

_lock = threading.Lock()
_store: dict[str, tuple[str, str, str, float]] = {}  # token -> (owner, ticket, secret, expires)
_backend: tuple[Engine, sealed.RunKey] | None = None


def configure(engine: Engine | None, key: sealed.RunKey | None) -> None:
    """Keep once-only secrets sealed in *engine*'s ledger under *key* (both given), else in
    this process's memory. Called by ``portal.runs.start``."""
    global _backend
    with _lock:
        _backend = (engine, key) if engine is not None and key is not None else None


def _expire(now: float) -> None:
    for token in [t for t, v in _store.items() if v[3] <= now]:
        del _store[token]


def put(owner: str, ticket: str, secret: str) -> str:
    """Keep *secret* for one read by *owner* (a session key) about *ticket*; return the token."""
    backend = _backend
    if backend is not None:
        return sealed.put_once(backend[0], backend[1], owner, ticket, secret, TTL)
    token = secrets.token_urlsafe(24)
    now = time.monotonic()
    with _lock:
        _expire(now)
        while len(_store) >= MAX_ENTRIES:
            del _store[next(iter(_store))]
        _store[token] = (owner, ticket, secret, now + TTL)
    return token


def take(token: str | None, owner: str, ticket: str) -> str | None:
    """The secret, once; None when unknown, expired, already taken or asked by another owner."""
    if not token or len(token) > 64:
        return None
    backend = _backend
    if backend is not None:
        return sealed.take_once(backend[0], backend[1], token, owner, ticket, TTL)
    now = time.monotonic()
    with _lock:
        _expire(now)
        entry = _store.get(token)
        if entry is None or entry[0] != owner or entry[1] != ticket:
            return None
        del _store[token]
        return entry[2]
