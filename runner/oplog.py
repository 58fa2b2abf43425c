"""Operational logging (structlog, JSON lines) with secret masking before rendering.

What the log writer records, and what it never records (issue 7, item 20):

* every event passes through the process-wide scrubber: each value given to
  ``remember_secret`` (secret run parameters, one-time codes, typed passwords, every
  credential the ``SecretStore`` resolves) is replaced by ``[REDACTED]`` in every
  spelling (``redaction.spellings``), and values under secret-looking keys (``password``,
  ``token``...) are dropped. A credential is masked for the life of the process (the
  process holds it anyway); what a person typed or was sent only for as long as it can
  matter (``REMEMBER_SECONDS``, or the run's own deadline), so no such secret stays in the
  process's memory for days and the list each log line is checked against does not grow
  with every reset (``MAX_REMEMBERED``);
* exceptions are rendered by ``format_exception``: file, line and function of each
  frame and the exception's type — never local variables (no ``show_locals``) — and a
  message that holds no input value: a pydantic ``ValidationError`` without its
  ``input_value``, a ``UnicodeDecodeError`` without the bytes, any other message
  scrubbed and capped at 500 characters. Chained causes are rendered the same way;
* the log file is created readable by its owner only (0600, directory 0700), whatever
  the umask (``runner.settings.private_file``).
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import sys
import time
import traceback
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from runner.redaction import Scrubber, describe_validation_error, spellings

REMEMBER_SECONDS = 900.0
"""How long a value given to ``remember_secret`` without ``seconds`` is masked: a
one-time code's life (``runner.selfservice``) and the request that typed a password, with
room to spare. A run's secret parameters are masked until the run's own deadline."""

MIN_REMEMBERED = 8
"""A short-lived value shorter than this (characters) is not masked: no password policy
Firstline enforces allows one (at least 8 with a second factor, else 15) and one-time codes
have 8 digits, while masking "e" or "pass" in place would blank ordinary words in every line
for as long as it is held. Credentials (``seconds=None``) are masked whatever their length."""

MAX_REMEMBERED = 20_000
"""Short-lived values masked at once at most; beyond it the one due to expire first goes
(each log line is checked against every spelling of every value held)."""


class _Remembered(Scrubber):
    """The process-wide scrubber of the operator log: ``Scrubber``'s masking over values that
    are held for the process's life (``seconds=None``) or until their time is up. Thread-safe.
    """

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        super().__init__()
        self._limit = limit
        self._until: dict[str, float] = {}  # value -> time.monotonic() it is dropped at (inf: never)
        self._forms: dict[str, frozenset[str]] = {}
        self._due: list[tuple[float, str]] = []  # (until, value), a heap; stale pairs are skipped
        self._list: list[str] = []
        self._stale = False

    def remember(self, value: object, seconds: float | None) -> None:
        if not isinstance(value, str) or not value:
            return
        if seconds is not None and len(value) < MIN_REMEMBERED:
            return
        until = math.inf if seconds is None else time.monotonic() + max(0.0, seconds)
        forms = None if value in self._forms else frozenset(spellings(value))
        with self._lock:
            if self._until.get(value, -math.inf) >= until:
                return
            self._until[value] = until
            if value not in self._forms:  # new, or dropped by another thread since the look above
                self._forms[value] = forms if forms is not None else frozenset(spellings(value))
                self._stale = True
            if until != math.inf:
                heapq.heappush(self._due, (until, value))
                while len(self._due) > self._limit:  # the one due first goes (a stale pair: nothing)
                    self._drop(*heapq.heappop(self._due))

    def add(self, value: object) -> None:
        """``Scrubber.add``: for the life of the process."""
        self.remember(value, None)

    def held(self) -> int:
        """How many values are masked now."""
        self._ordered()
        with self._lock:
            return len(self._until)

    def _drop(self, until: float, value: str) -> None:
        if self._until.get(value) == until:  # not remembered again for longer since
            del self._until[value]
            del self._forms[value]
            self._stale = True

    def _ordered(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            while self._due and self._due[0][0] <= now:
                self._drop(*heapq.heappop(self._due))
            if self._stale:
                known: set[str] = set()
                for forms in self._forms.values():
                    known |= forms
                self._list = sorted(known, key=len, reverse=True)
                self._stale = False
            return self._list


_GLOBAL_SCRUB: Scrubber = _Remembered()
_MAX_MESSAGE = 500


def remember_secret(value: str, *, seconds: float | None = REMEMBER_SECONDS) -> None:
    """Mask *value* in every log line (process-wide) for *seconds* from now
    (``REMEMBER_SECONDS``), or for the life of the process with ``seconds=None`` (a
    credential the process holds anyway). Remembering it again extends the time."""
    found = _GLOBAL_SCRUB
    if isinstance(found, _Remembered):
        found.remember(value, seconds)
    else:  # a test put a plain Scrubber in its place
        found.add(value)


def scrub_text(text: str) -> str:
    """*text* with every value given to ``remember_secret`` masked."""
    return _GLOBAL_SCRUB.text(text)


IDENTIFIER_KEYS = frozenset(
    {"event", "level", "timestamp", "ticket", "ticket_id", "runbook", "reason", "state", "step", "action", "channel"}
)
"""Event fields whose values Firstline's own code sets from its names and codes (the event,
a ticket number, a runbook name, a reason code): never a secret, so never masked — masking
them in place only made an oracle of the log ("reason": "too_[REDACTED]" tells that the
password typed was "short") and let a typed value blank every event's name."""


def _mask(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return {  # operator log: masks in place
        k: v if k in IDENTIFIER_KEYS and isinstance(v, str | int) else _GLOBAL_SCRUB.value(v, k, in_place=True)
        for k, v in event.items()
    }


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


class _SafeRecords(logging.Filter):
    """Masks every record before any handler writes it, whoever logged it.

    structlog's events arrive already masked and rendered; records from plain
    ``logging`` loggers (connector modules, paramiko, urllib3...) do not pass through
    structlog's processors, so their text is rendered here, scrubbed, and their
    exception rendered by ``format_exception`` — never the default traceback format.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "firstline" and not record.exc_info and not record.args:
            return True  # structlog's line: masked field by field already (``_mask``)
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break logging
            text = str(record.msg)
        record.msg, record.args = _GLOBAL_SCRUB.text(text), None
        if record.exc_info:
            record.exc_text = format_exception(record.exc_info)
            record.exc_info = None
        return True


class _JsonLines(logging.Formatter):
    """structlog's lines as they are; any other record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "firstline" and not record.exc_text:
            return record.getMessage()  # structlog's rendered, masked JSON line
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "logger": record.name,
            "level": record.levelname.lower(),
            "timestamp": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + "Z",
        }
        if record.exc_text:
            event["exception"] = record.exc_text
        return json.dumps(event, ensure_ascii=False)


_INSTALLED: list[tuple[logging.Logger, logging.Handler]] = []


class _LogFile(logging.FileHandler):
    """The log file; a write that fails (a full disk, ``FIRSTLINE_LOG_FILE=/dev/full``) is said
    once on stderr in one line, and the command goes on. ``logging`` printed "--- Logging
    error ---" and a traceback for every record instead."""

    _told = False  # per process: one line, whichever handler failed first

    def handleError(self, record: logging.LogRecord) -> None:  # logging's name for it
        if _LogFile._told:
            return
        _LogFile._told = True
        error = sys.exc_info()[1]
        reason = getattr(error, "strerror", None) or type(error).__name__
        try:
            sys.stderr.write(
                f"warning: the log file {self.baseFilename} could not be written ({reason}); going on without it\n"
            )
        except (OSError, ValueError):
            pass


def configure(log_file: Path | None, level: int = logging.INFO) -> None:
    """Send Firstline's events (and other libraries' warnings) to *log_file*, masked.

    The file is created 0600 (directory 0700). Calling it again replaces the handlers
    installed before. ``None`` discards the log.
    """
    from runner.settings import private_file

    for logger, old in _INSTALLED:
        logger.removeHandler(old)
        old.close()
    _INSTALLED.clear()
    handler: logging.Handler
    if log_file is not None:
        private_file(log_file)
        handler = _LogFile(log_file, encoding="utf-8")
    else:
        handler = logging.NullHandler()
    handler.addFilter(_SafeRecords())
    handler.setFormatter(_JsonLines())
    root = logging.getLogger("firstline")
    root.handlers = [handler]
    root.setLevel(level)
    root.propagate = False
    # Libraries' own warnings (paramiko, urllib3...) land in the same masked file instead of stderr.
    libraries = logging.getLogger()
    if log_file is not None:
        lib_handler = _LogFile(log_file, encoding="utf-8")
        lib_handler.setLevel(logging.WARNING)
        lib_handler.addFilter(_SafeRecords())
        lib_handler.setFormatter(_JsonLines())
        libraries.addHandler(lib_handler)
        _INSTALLED.append((libraries, lib_handler))
    _INSTALLED.append((root, handler))
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
