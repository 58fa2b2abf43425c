"""Keyed pseudonyms for names people type that are not shown to be accounts.

A name typed at sign-in or in the forgotten-password flow may be no account — or a password
typed into the name field. The audit chain cannot be edited, so such a name is recorded
only as ``<directory>:?`` and 16 hex digits of an HMAC-SHA-256 under a key derived from the
audit key (which is not in the database): the same name always gives the same value, so
tries on one name line up across both flows, and nobody reading the chain learns the text.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["typed_name"]

_CONTEXT = b"firstline-selfservice-v1"  # the self-service flow's derivation (runner.selfservice)


def typed_name(secret: bytes, directory: str, username: str) -> str:
    """``<directory>:?`` + 16 hex digits of the keyed HMAC of ``<directory>:<username>``.

    *secret*: the audit key (``Settings.audit_secret``). Equal to
    ``SelfService.unproven(directory, username)`` for the same key."""
    key = hmac.new(secret, _CONTEXT, hashlib.sha256).digest()
    value = f"typed-name\0{directory}:{username}".encode("utf-8", "surrogatepass")
    return f"{directory}:?{hmac.new(key, value, hashlib.sha256).hexdigest()[:16]}"
