"""Keyset page links ("cursors") for the auditor's search and the agents' escalated queue.

A cursor is URL-safe base64 (no padding) of ``{"k": kind, "a": key, "f": binding}``: the
key of the last row shown (a ticket id or an audit sequence number; the next page starts
after it), the kind of list, and a fingerprint of the search that made it (the filter, or
the agent's scope). ``decode`` refuses — ``ParameterError`` with the caller's sentence —
anything that is not such an object, another kind, another search's fingerprint, a key
that is not a whole number from 1 to 2**62 (a database integer), or over 200 characters.

Not signed: a cursor only names a position within rows its holder may read anyway, so one
changed by hand that passes these checks simply starts at the position it names. (A
malformed one used to reach the database on the escalated queue: HTTP 500.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from runner.errors import ParameterError

__all__ = ["MAX_CURSOR", "decode", "encode", "fingerprint"]

MAX_CURSOR = 200  # characters
_MAX_KEY = 2**62


def fingerprint(search: Any) -> str:
    """16 hex digits of SHA-256 over *search* as canonical JSON (sorted keys, no spaces)."""
    raw = json.dumps(search, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode(kind: str, binding: str, key: int) -> str:
    """The cursor after row *key* of list *kind* for the search whose fingerprint is *binding*."""
    raw = json.dumps({"k": kind, "a": key, "f": binding}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(kind: str, binding: str, cursor: object, bad: str) -> int:
    """The row key a cursor made by ``encode(kind, binding, key)`` carries; ``ParameterError(bad)`` otherwise."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR:
        raise ParameterError(bad)
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ParameterError(bad) from exc
    if not isinstance(data, dict) or data.get("k") != kind or data.get("f") != binding:
        raise ParameterError(bad)
    key = data.get("a")
    if not isinstance(key, int) or isinstance(key, bool) or not 1 <= key < _MAX_KEY:
        raise ParameterError(bad)
    return key
