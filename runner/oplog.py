"""Operational logging (structlog, JSON lines) with secret masking before rendering."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import structlog

from runner.redaction import Scrubber

_GLOBAL_SCRUB = Scrubber()


def remember_secret(value: str) -> None:
    """Mask *value* in every log line from now on (process-wide)."""
    _GLOBAL_SCRUB.add(value)


def _mask(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return {k: _GLOBAL_SCRUB.value(v, k) for k, v in event.items()}


def configure(log_file: Path | None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    else:
        handlers.append(logging.NullHandler())
    root = logging.getLogger("firstline")
    root.handlers = handlers
    root.setLevel(level)
    root.propagate = False
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _mask,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=lambda *args: logging.getLogger("firstline"),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    return structlog.get_logger("firstline")
