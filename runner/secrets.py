"""Secret references: ``{env: NAME}`` or ``{file: PATH}``, resolved when needed, never stored."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runner.errors import ConfigError


class SecretStore:
    """Resolves inventory secret references; remembers every value it handed out.

    The remembered values feed the log/ticket scrubber so that a credential which
    leaks into a library's error text is still masked.
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.seen: set[str] = set()

    def __call__(self, ref: Any) -> str:
        if not isinstance(ref, dict) or len(ref) != 1:
            raise ConfigError("a secret must be given as {env: NAME} or {file: PATH}, never inline")
        ((kind, where),) = ref.items()
        if kind == "env":
            value = os.environ.get(str(where))
            if value is None:
                raise ConfigError(f"secret environment variable {where} is not set")
        elif kind == "file":
            path = Path(str(where))
            if not path.is_absolute():
                path = self.base_dir / path
            try:
                value = path.read_text(encoding="utf-8").rstrip("\n")
            except OSError as exc:
                raise ConfigError(f"secret file {path} cannot be read: {exc.strerror}") from exc
        else:
            raise ConfigError(f"unknown secret source '{kind}': use env or file")
        if value:
            self.seen.add(value)
        return value
