"""One parser for the times people type into filters (``--since``, ``--until``, the portal).

Accepted (ISO 8601 / RFC 3339 profile, ASCII digits only)::

    2026-11-30                       a date alone: 00:00 at the start of that day
    2026-11-30T04:22                 T, t or one space between date and time
    2026-11-30 04:22:07              seconds optional
    2026-11-30T04:22:07.5            fractions of a second: any number of digits; beyond
                                     microseconds (…07.123456789, nanoseconds) they are cut
                                     to microseconds, the precision of the stored times
    ...Z  ...z  ...+01:00  ...+0100  ...-05:30  ...+01   an offset; none means UTC

Every value becomes an *aware* ``datetime`` in UTC, between 0001-01-01 and 9999-12-31
(Python's and the ledger's range). Anything else raises ``TimeParseError`` whose message
says what is wrong and what is accepted, and never repeats more than a short, cleaned
excerpt of the input:

* not a date or time at all (``yesterday``, ``2026/11/30``, an empty or 10 KB string);
* a year outside 0001–9999 (``10000-01-01``), a month outside 01–12 (``2026-13-01``), a
  day the month does not have (``2026-02-30``), an hour, minute or second out of range
  (``24:00``), an offset beyond ±23:59;
* an instant outside the range once moved to UTC (``9999-12-31T23:00-05:00``).

The message is English (``str``); ``TimeParseError.translated(gettext)`` gives it in the
reader's language (the portal's catalogues hold the Dutch of ``MESSAGES``).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from runner.errors import ParameterError

__all__ = ["EXAMPLES", "MESSAGES", "TimeParseError", "parse_instant", "stored"]

MAX_INPUT = 64
EXAMPLES = "2026-11-27, 2026-11-27T08:55, 2026-11-27 08:55:30Z or 2026-11-27T08:55+01:00"
_PATTERN = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]+))?)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?",
    re.ASCII,
)
# The same shape with a year of any length (``10000-01-01``, ``0-01-01``): told apart from
# text that is no date at all, so the message can say that the year is the problem.
_ANY_YEAR = re.compile(r"(?P<year>[+-]?[0-9]{1,20})-[0-9]{2}-[0-9]{2}(?:[Tt ].*)?", re.ASCII | re.DOTALL)

# What went wrong → the English template (``%(name)s`` placeholders). The portal marks each
# (and ``EXAMPLES``) for translation in ``portal/timetexts.py``; a test keeps the two in step.
MESSAGES: dict[str, str] = {
    "empty": "%(what)s is empty; give a date or time such as %(examples)s (no offset means UTC)",
    "too_long": "%(what)s is too long to be a date or time; use e.g. %(examples)s (no offset means UTC)",
    "not_a_time": "%(what)s '%(value)s' is not a date or time; use e.g. %(examples)s (no offset means UTC)",
    "year": (
        "%(what)s '%(value)s': the year %(year)s is out of range (years 0001 to 9999, four digits); "
        "use e.g. %(examples)s"
    ),
    "month": "%(what)s '%(value)s': there is no month %(month)s (months 01 to 12); use e.g. %(examples)s",
    "day": (
        "%(what)s '%(value)s': there is no day %(day)s in month %(month)s of %(year)s (it has %(days)s days); "
        "use e.g. %(examples)s"
    ),
    "clock": (
        "%(what)s '%(value)s': %(clock)s is not a time of day (hours 00 to 23, minutes and seconds 00 to 59); "
        "use e.g. %(examples)s"
    ),
    "offset": (
        "%(what)s '%(value)s': the offset %(offset)s is out of range (clocks run from -12:00 to +14:00); "
        "use e.g. %(examples)s"
    ),
    "range": (
        "%(what)s '%(value)s' is outside the times that can be stored "
        "(0001-01-01 00:00 to 9999-12-31 23:59:59.999999 UTC); use e.g. %(examples)s"
    ),
}


class TimeParseError(ParameterError):
    """The text is not a time this parser accepts; the message is safe to show.

    ``kind`` is a key of ``MESSAGES``; ``values`` fill its placeholders."""

    def __init__(self, kind: str, **values: object) -> None:
        self.kind = kind
        self.template = MESSAGES[kind]
        self.values: dict[str, object] = {"examples": EXAMPLES, **values}
        super().__init__(self.template % self.values)

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of *gettext*: the template translated, then filled in."""
        values = {**self.values, "examples": gettext(EXAMPLES)}  # "… or …" in the reader's language
        try:
            return gettext(self.template) % values
        except (KeyError, ValueError, TypeError):  # a translation whose placeholders do not fit
            return str(self)


_EXCERPT = 48  # characters: a date-time with microseconds and an offset is 32


def _excerpt(text: str) -> str:
    """What was typed, for the message: printable characters as they are (``２０２６`` stays
    itself — it was shown as ``????``), control and direction marks as ``?``. Up to 48
    characters; a longer value keeps its start and its end (where a wrong offset or suffix
    is: the first 24 characters alone hid it)."""
    shown = text if len(text) <= _EXCERPT else f"{text[:24]}…{text[-(_EXCERPT - 25) :]}"
    return "".join(ch if ch.isprintable() else "?" for ch in shown)


def parse_instant(text: str, *, what: str = "time") -> datetime:
    """Parse *text* (see the module docstring) into an aware UTC ``datetime``.

    Raises ``TimeParseError`` naming *what* (e.g. ``--since``) for every value that is not
    a valid date or date-time, saying which part is wrong (year, month, day, time of day,
    offset, the range). Fractions beyond microseconds are cut, not rounded (a bound never
    moves past the instant that was typed)."""
    if not isinstance(text, str) or not text.strip(" "):
        raise TimeParseError("empty", what=what)
    if len(text) > MAX_INPUT:
        raise TimeParseError("too_long", what=what)
    value = _excerpt(text)
    m = _PATTERN.fullmatch(text.strip(" "))  # spaces around are forgiven; tabs, newlines are not
    if m is None:
        other = _ANY_YEAR.fullmatch(text.strip(" "))
        if other is not None and (len(other["year"]) != 4 or other["year"][0] in "+-"):
            raise TimeParseError("year", what=what, value=value, year=_excerpt(other["year"]))
        raise TimeParseError("not_a_time", what=what, value=value)
    year, month, day = (int(x) for x in m["date"].split("-"))
    if year < 1:
        raise TimeParseError("year", what=what, value=value, year=m["date"][:4])
    if not 1 <= month <= 12:
        raise TimeParseError("month", what=what, value=value, month=m["date"][5:7])
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise TimeParseError(
            "day", what=what, value=value, day=m["date"][8:10], month=m["date"][5:7], year=year, days=days
        )
    if m["hour"] is None:
        return datetime(year, month, day, tzinfo=UTC)
    hour, minute, second = int(m["hour"]), int(m["minute"]), int(m["second"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        clock = f"{m['hour']}:{m['minute']}" + (f":{m['second']}" if m["second"] is not None else "")
        raise TimeParseError("clock", what=what, value=value, clock=clock)
    micro = int((m["fraction"] or "")[:6].ljust(6, "0"))  # nanoseconds and beyond: cut to microseconds
    zone = _offset(m["offset"])
    if zone is None:
        raise TimeParseError("offset", what=what, value=value, offset=m["offset"])
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise TimeParseError("range", what=what, value=value) from exc


def _offset(text: str | None) -> timezone | None:
    """The offset's zone; None when no clock uses it: beyond -12:00 .. +14:00 (the offsets of
    the world's time zones, IANA tz database; ISO 8601 would allow ±23:59, and +15:00 is far
    more likely a typo than a place), or minutes past 59."""
    if text is None or text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    offset = sign * timedelta(hours=hours, minutes=minutes)
    if minutes > 59 or not timedelta(hours=-12) <= offset <= timedelta(hours=14):
        return None
    return timezone(offset)


def stored(moment: datetime) -> str:
    """*moment* in the ledger's stored text form (``runner.ledger.audit.now``):
    ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``. All stored times share this fixed-width shape,
    so comparing the text compares the times, on SQLite and PostgreSQL alike."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant; attach a timezone (UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
