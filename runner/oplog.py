"""Operational logging (structlog, JSON lines) with secret masking before rendering.

What the log writer records, and what it never records (issue 7, item 20):

* every event passes through the process-wide scrubber: each value given to
  ``remember_secret`` (secret run parameters, every credential the ``SecretStore``
  resolves) is replaced by ``[REDACTED]`` in every spelling (``redaction.spellings``),
  and values under secret-looking keys (``password``, ``token``...) are dropped;
* exceptions are rendered by ``format_exception``: file, line and function of each
  frame and the exception's type — never local variables (no ``show_locals``) — and a
  message that holds no input value: a pydantic ``ValidationError`` without its
  ``input_value``, a ``UnicodeDecodeError`` without the bytes, any other message
  scrubbed and capped at 500 characters. Chained causes are rendered the same way;
* the log file is created readable by its owner only (0600, directory 0700), whatever
  the umask (``runner.settings.private_file``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from runner.redaction import Scrubber, describe_validation_error

_GLOBAL_SCRUB = Scrubber()
_MAX_MESSAGE = 500


def remember_secret(value: str) -> None:
    """Mask *value* in every log line from now on (process-wide)."""
    _GLOBAL_SCRUB.add(value)


def scrub_text(text: str) -> str:
    """*text* with every value given to ``remember_secret`` masked."""
    return _GLOBAL_SCRUB.text(text)


def _mask(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return {k: _GLOBAL_SCRUB.value(v, k) for k, v in event.items()}


def _safe_message(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        text = f"{exc.error_count()} validation error(s) for {exc.title}: {describe_validation_error(exc)}"
    elif isinstance(exc, UnicodeError):
        text = f"{getattr(exc, 'encoding', '?')}: {getattr(exc, 'reason', 'invalid data')}"
    else:
        try:
            text = str(exc)
        except Exception:  # noqa: BLE001 - a broken __str__ must not break logging
            text = "(message could not be rendered)"
    text = _GLOBAL_SCRUB.text(text)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"


def format_exception(exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | Any) -> str:
    """Render an exception (and its causes) with frames, types and safe messages only."""
    if not isinstance(exc_info, tuple):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    exc: BaseException | None = exc_info[1]
    chain: list[BaseException] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(chain) < 10:
        chain.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    lines: list[str] = []
    for i, err in enumerate(reversed(chain)):
        if i:
            lines.append("The above exception led to:")
        lines.append("Traceback (most recent call last):")
        for frame in traceback.extract_tb(err.__traceback__, limit=50):
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        lines.append(f"{type(err).__module__}.{type(err).__qualname__}: {_safe_message(err)}")
    return "\n".join(lines)


def configure(log_file: Path | None, level: int = logging.INFO) -> None:
    from runner.settings import private_file

    handlers: list[logging.Handler] = []
    if log_file is not None:
        private_file(log_file)
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
            structlog.processors.ExceptionRenderer(format_exception),
            _mask,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=lambda *args: logging.getLogger("firstline"),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    return structlog.get_logger("firstline")
