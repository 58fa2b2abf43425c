"""Keeping secrets out of every store: a per-run scrubber of known secret values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"
SECRET_KEY_HINTS = ("password", "passwd", "secret", "token", "credential", "private_key", "api_key")


class Scrubber:
    """Replaces every known secret value (and values under secret-looking keys) with [REDACTED]."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = {v for v in values if v}

    def add(self, value: Any) -> None:
        if isinstance(value, str) and value:
            self._values.add(value)

    def text(self, value: str) -> str:
        for secret in sorted(self._values, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def value(self, value: Any, key: str | None = None) -> Any:
        if key is not None and any(h in key.lower() for h in SECRET_KEY_HINTS) and value not in (None, "", False, True):
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
