"""One parser for the times people type into filters (``--since``, ``--until``, the portal).

Accepted (ISO 8601 / RFC 3339 profile, ASCII digits only)::

    2026-11-30                       a date alone: 00:00 at the start of that day
    2026-11-30T04:22                 T, t or one space between date and time
    2026-11-30 04:22:07              seconds optional
    2026-11-30T04:22:07.5            fractions of a second: 1 to 6 digits
    ...Z  ...z  ...+01:00  ...+0100  ...-05:30  ...+01   an offset; none means UTC

Every value becomes an *aware* ``datetime`` in UTC. Anything else (``2026-13-01``,
``yesterday``, an empty string, a 10 KB string) raises ``TimeParseError`` whose message
says what is accepted and never repeats more than a short, cleaned excerpt of the input.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from runner.errors import ParameterError

__all__ = ["EXAMPLES", "TimeParseError", "parse_instant", "stored"]

MAX_INPUT = 64
EXAMPLES = "2026-11-27, 2026-11-27T08:55, 2026-11-27 08:55:30Z or 2026-11-27T08:55+01:00"
_PATTERN = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,6}))?)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?",
    re.ASCII,
)


class TimeParseError(ParameterError):
    """The text is not a time this parser accepts; the message is safe to show."""


def _excerpt(text: str) -> str:
    cleaned = "".join(ch if ch.isprintable() and ch.isascii() else "?" for ch in text[:24])
    return cleaned + ("…" if len(text) > 24 else "")


def parse_instant(text: str, *, what: str = "time") -> datetime:
    """Parse *text* (see the module docstring) into an aware UTC ``datetime``.

    Raises ``TimeParseError`` naming *what* (e.g. ``--since``) for every value that is not
    a valid date or date-time, including impossible dates (2026-02-30) and offsets beyond ±23:59.
    """
    if not isinstance(text, str) or not text.strip(" "):
        raise TimeParseError(f"{what} is empty; give a date or time such as {EXAMPLES} (no offset means UTC)")
    if len(text) > MAX_INPUT:
        raise TimeParseError(f"{what} is too long to be a date or time; use e.g. {EXAMPLES}")
    m = _PATTERN.fullmatch(text.strip(" "))  # spaces around are forgiven; tabs, newlines are not
    bad = f"{what} '{_excerpt(text)}' is not a date or time; use e.g. {EXAMPLES} (no offset means UTC)"
    if m is None:
        raise TimeParseError(bad)
    try:
        year, month, day = (int(x) for x in m["date"].split("-"))
        if m["hour"] is None:
            return datetime(year, month, day, tzinfo=UTC)
        fraction = (m["fraction"] or "").ljust(6, "0")
        naive = datetime(year, month, day, int(m["hour"]), int(m["minute"]), int(m["second"] or 0), int(fraction or 0))
        return naive.replace(tzinfo=_offset(m["offset"])).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise TimeParseError(bad) from exc


def _offset(text: str | None) -> timezone:
    if text is None or text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def stored(moment: datetime) -> str:
    """*moment* in the ledger's stored text form (``runner.ledger.audit.now``):
    ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``. All stored times share this fixed-width shape,
    so comparing the text compares the times, on SQLite and PostgreSQL alike."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant; attach a timezone (UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
