"""Hand a run's once-only secret (a generated temporary password) from the POST that ran
the fix to the one page that shows it (post/redirect/get), in this process's memory only.

``put(owner, ticket, secret)`` → a random token for the redirect URL; ``take(token,
owner, ticket)`` gives the secret once (and forgets it) when the same signed-in session
asks for the same ticket within ``TTL`` seconds; afterwards, and for anyone else, None.
Never written to the database, a log, a cookie or a ticket; a reload of the result page
shows no secret. A portal with several processes must route a session to one process
(the embedded default runs one).
"""

from __future__ import annotations

import secrets
import threading
import time

TTL = 120.0  # seconds between the fix's answer and the result page
MAX_ENTRIES = 1000

_lock = threading.Lock()
_store: dict[str, tuple[str, str, str, float]] = {}  # token -> (owner, ticket, secret, expires)


def _expire(now: float) -> None:
    for token in [t for t, v in _store.items() if v[3] <= now]:
        del _store[token]


def put(owner: str, ticket: str, secret: str) -> str:
    """Keep *secret* for one read by *owner* (a session key) about *ticket*; return the token."""
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
    now = time.monotonic()
    with _lock:
        _expire(now)
        entry = _store.get(token)
        if entry is None or entry[0] != owner or entry[1] != ticket:
            return None
        del _store[token]
        return entry[2]
