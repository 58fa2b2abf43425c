"""Secret references: ``{env: NAME}`` or ``{file: PATH}``, resolved when needed, never stored."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from runner.errors import ConfigError
from runner.oplog import remember_secret


class SecretStore:
    """Resolves inventory secret references; remembers every value it handed out.

    Every resolved value is masked from then on: in the operator log (process-wide,
    through ``runner.oplog.remember_secret``) and in every run's ticket, step log and
    audit event (the per-run ``Scrubber`` follows ``values``), so a credential that a
    remote error or a connector message echoes never reaches a store.
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def values(self) -> frozenset[str]:
        """Every credential resolved so far (a snapshot; safe to call from any thread)."""
        with self._lock:
            return frozenset(self.seen)

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
            except UnicodeDecodeError:
                raise ConfigError(f"secret file {path} is not UTF-8 text") from None
        else:
            raise ConfigError(f"unknown secret source '{kind}': use env or file")
        if value:
            remember_secret(value, seconds=None)  # a credential: masked for the life of the process
            with self._lock:
                self.seen.add(value)
        return value
