"""Directory times, parsed in one place: LDAP GeneralizedTime and Active Directory FILETIME.

Every time attribute the ``ldap`` connector reads goes through this module — OpenLDAP's
``pwdChangedTime``, ``pwdStartTime``, ``pwdEndTime``, ``pwdAccountLockedTime``,
``pwdFailureTime``, ``pwdGraceUseTime`` and AD's ``pwdLastSet``, ``lockoutTime``,
``accountExpires``, ``msDS-UserPasswordExpiryTimeComputed``. A value that does not parse
raises ``DirectoryTimeError``; callers fail closed on it (the run escalates), never open.

**GeneralizedTime** (RFC 4517 §3.3.13, a restriction of X.680 §46 / ISO 8601 basic format)::

    GeneralizedTime = century year month day hour [ minute [ second / leap-second ] ]
                      [ fraction ] g-time-zone
    fraction        = ( "." / "," ) 1*DIGIT
    g-time-zone     = "Z" / ( "+" / "-" ) hour [ minute ]

Digits are ASCII ``0``-``9`` only (``re.ASCII``: Arabic-Indic or full-width digits are
refused). Per X.680 the fraction belongs to the last unit given (``2020010112.5Z`` is
12:30). OpenLDAP 2.5 reads every fraction as a fraction of a *second* instead
(``2020010112.5Z`` normalises to ``20200101120000.5Z`` in slapd's
``generalizedTimeNormalize``; verified against the lab slapd), so the OpenLDAP flavour
asks for ``fraction_of="second"`` to decide exactly as the directory does. The result is
an aware ``datetime`` in UTC; a value outside 0001-01-01 .. 9999-12-31 (after applying
the offset) is an error.

**OpenLDAP's own reading** (``openldap_seconds``): slapd's password policy does not read a
time as the calendar does after 2100-02-28 (every fourth year a leap year; a 32-bit
count of seconds that wraps in 2106), nor before 1970. **Its administrator lock**:
``pwdAccountLockedTime`` whose UTC date and time fields are 0000-01-01 00:00:00
(``000001010000Z``, ``00000101000000Z``, ``0000010100Z``, ``00000101010000+0100``, any
fraction) locks the account until an administrator removes it; slapd recognises it after
normalisation with ``lutil_tm2time``'s special case, which ignores fractions of a second.
So does every value slapd's parse makes time 0 (the Unix epoch, ``19700101000000Z`` in any
spelling; 2106-02-07T06:28:16Z). ``is_openldap_admin_lock`` applies the same rule.

**FILETIME** (MS-DTYP §2.3.3; AD "Large Integer" / Interval syntax, MS-ADTS §3.1.1.4.4 and
the attribute pages of MS-ADA1/MS-ADA3): a signed 64-bit count of 100-nanosecond
intervals since 1601-01-01 UTC, sent as decimal text. ``0`` and ``0x7FFFFFFFFFFFFFFF``
are sentinels whose meaning depends on the attribute ("never" for ``accountExpires``,
"not locked" for ``lockoutTime``, "must change" for ``pwdLastSet``); ``filetime_ticks``
returns the integer so callers test those first, ``filetime_to_datetime`` converts the rest.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

__all__ = [
    "FILETIME_MAX",
    "DirectoryTimeError",
    "filetime_ticks",
    "filetime_to_datetime",
    "is_openldap_admin_lock",
    "openldap_seconds",
    "parse_generalized_time",
    "unix_seconds",
]

FILETIME_MAX = 0x7FFFFFFFFFFFFFFF
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_MAX_TEXT = 64  # longest GeneralizedTime accepted (a 15-character stamp plus a long fraction)

_GENERALIZED = re.compile(
    r"(?P<year>[0-9]{4})(?P<month>[0-9]{2})(?P<day>[0-9]{2})(?P<hour>[0-9]{2})"
    r"(?:(?P<minute>[0-9]{2})(?P<second>[0-9]{2})?)?"
    r"(?:[.,](?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>Z)|(?P<sign>[+-])(?P<off_hour>[0-9]{2})(?P<off_minute>[0-9]{2})?)",
    re.ASCII,
)
_FILETIME = re.compile(r"-?[0-9]{1,19}", re.ASCII)

_US = 1_000_000
_DAY_US = 86_400 * _US


class DirectoryTimeError(ValueError):
    """A directory time value that is not valid GeneralizedTime / FILETIME, or out of range."""


def _text(value: object, what: str) -> str:
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise DirectoryTimeError(f"{what}: not ASCII") from None
    if not isinstance(value, str):
        # ldap3 turns times into datetime objects only with schema-based formatting; the
        # connector reads raw values, so anything else is a programming or server error.
        raise DirectoryTimeError(f"{what}: expected text, got {type(value).__name__}")
    if not value:
        raise DirectoryTimeError(f"{what}: empty value")
    if len(value) > _MAX_TEXT:
        raise DirectoryTimeError(f"{what}: value too long ({len(value)} characters)")
    return value


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_before(year: int, month: int, day: int) -> int:
    """Days from 0000-01-01 (proleptic Gregorian, year 0 is a leap year) to the date."""
    y = year - 1
    days = 0 if year == 0 else 366 + y * 365 + y // 4 - y // 100 + y // 400
    days += sum(_MONTH_DAYS[: month - 1]) + (1 if month > 2 and _leap(year) else 0)
    return days + day - 1


_DAY_0001 = _days_before(1, 1, 1)
_DAY_10000 = _days_before(10000, 1, 1)
_UNIX_EPOCH = _days_before(1970, 1, 1) * 86_400  # 1970-01-01T00:00:00Z in _fields' count


def _fields(text: str) -> tuple[int, int, str | None]:
    """Whole seconds since 0000-01-01T00:00:00Z (offset applied), the last unit in seconds, the fraction digits."""
    m = _GENERALIZED.fullmatch(text)
    if m is None:
        raise DirectoryTimeError("not a GeneralizedTime value (YYYYMMDDHH[MM[SS]][.f](Z|±HH[MM]))")
    year, month, day, hour = (int(m[k]) for k in ("year", "month", "day", "hour"))
    minute = int(m["minute"]) if m["minute"] is not None else 0
    second = int(m["second"]) if m["second"] is not None else 0
    if not 1 <= month <= 12:
        raise DirectoryTimeError("month out of range")
    last = 29 if month == 2 and _leap(year) else _MONTH_DAYS[month - 1]
    if not 1 <= day <= last:
        raise DirectoryTimeError("day out of range for the month")
    if hour > 23 or minute > 59 or second > 60:  # 60: leap second (RFC 4517)
        raise DirectoryTimeError("time of day out of range")
    offset = 0
    if m["utc"] is None:
        off_h, off_m = int(m["off_hour"]), int(m["off_minute"] or 0)
        if off_h > 23 or off_m > 59:
            raise DirectoryTimeError("time-zone offset out of range")
        offset = (off_h * 60 + off_m) * 60 * (1 if m["sign"] == "+" else -1)
    total = _days_before(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
    unit = 1 if m["second"] is not None else 60 if m["minute"] is not None else 3600
    return total, unit, m["fraction"]


def parse_generalized_time(
    value: str | bytes, *, fraction_of: Literal["last_unit", "second"] = "last_unit"
) -> datetime:
    """Parse one GeneralizedTime value into an aware UTC ``datetime``.

    ``fraction_of="last_unit"`` follows X.680 (the fraction belongs to the hour, minute or
    second it follows); ``"second"`` follows OpenLDAP 2.5, which always reads it as a
    fraction of a second. Fractions below a microsecond are truncated; a leap second
    (``...235960Z``) is the first instant of the next minute.

    Raises ``DirectoryTimeError`` for anything else, including year 0 (OpenLDAP's
    administrator lock: test with ``is_openldap_admin_lock`` first) and values outside
    0001-01-01 .. 9999-12-31 UTC.
    """
    text = _text(value, "GeneralizedTime")
    seconds, unit, fraction = _fields(text)
    micro = 0
    if fraction is not None:
        scale = 1 if fraction_of == "second" else unit
        micro = int(fraction) * scale * _US // 10 ** len(fraction)
    total_us = seconds * _US + micro
    if not _DAY_0001 * _DAY_US <= total_us < _DAY_10000 * _DAY_US:
        raise DirectoryTimeError("outside the years 0001-9999")
    return datetime(1, 1, 1, tzinfo=UTC) + timedelta(microseconds=total_us - _DAY_0001 * _DAY_US)


def is_openldap_admin_lock(value: str | bytes) -> bool:
    """True when a ``pwdAccountLockedTime`` value is OpenLDAP's permanent administrator lock.

    That is: valid GeneralizedTime that slapd's parse makes time 0 (``openldap_seconds``):
    0000-01-01 00:00:00 UTC (``lutil_tm2time``'s special case after normalisation), the Unix
    epoch, and a time 2^32 seconds after it (2106-02-07 in slapd's calendar), ignoring any
    fraction, in any spelling (``19700101000000Z``, ``197001010000Z``,
    ``19700101010000+0100``). slapd's ppolicy reads time 0 as "locked until an administrator
    unlocks" (seen on slapd 2.5.13: the right password is refused whatever
    ``pwdLockoutDuration`` says). Raises ``DirectoryTimeError`` when the value is not valid
    GeneralizedTime at all.
    """
    return openldap_seconds(_text(value, "pwdAccountLockedTime")) == 0


def unix_seconds(value: str | bytes) -> int:
    """A GeneralizedTime value as the calendar reads it: whole seconds since the Unix epoch
    (negative before it; offset applied, fraction dropped), year 0 allowed.
    ``DirectoryTimeError`` when it is not GeneralizedTime."""
    seconds, _unit, _fraction = _fields(_text(value, "GeneralizedTime"))
    return seconds - _UNIX_EPOCH


_SLAPD_MONTH_START = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)  # lutil_tm2time's moffset


def _civil(seconds: int) -> tuple[int, int, int, int]:
    """(year, month, day, seconds into the day) of *seconds* since 0000-01-01T00:00:00Z
    (``_fields``' count: proleptic Gregorian, year 0 a leap year)."""
    days, rest = divmod(seconds, 86_400)
    if days >= _DAY_0001:
        day = datetime(1, 1, 1) + timedelta(days=days - _DAY_0001)
        return day.year, day.month, day.day, rest
    month = 1  # year 0 (a leap year)
    for length in (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31):
        if days < length:
            break
        days -= length
        month += 1
    return 0, month, days + 1, rest


def openldap_seconds(value: str | bytes) -> int:
    """The time slapd 2.5's password policy makes of a GeneralizedTime value, in seconds
    since the Unix epoch: 0 .. 2^32 - 1.

    slapd's ppolicy reads every time it judges by (``pwdAccountLockedTime``,
    ``pwdAccountTmpLockoutEnd``, ``pwdChangedTime``, ``pwdStartTime``, ``pwdEndTime``,
    ``pwdLastSuccess``) with ``parse_time``, which keeps ``lutil_tm2time``'s low word
    (``tt_sec``) and drops the fraction. That function counts every fourth year as a leap
    year (2100, 2200 ... are not) and its low word wraps at 2^32 seconds. So up to
    2100-02-28 the result is the calendar's, and after it what slapd compares with the clock
    is not: ``99991231235959Z`` is 1970-02-20 to slapd (a lock in force), ``25000101000000Z``
    is 2091 (a lock not yet in force), ``19691231235959Z`` is 2106 (the same). Fitted to the
    lab slapd 2.5.13's bind answers for 28 values from year 1 to 9999 (2026-12-02), every one
    agreeing. 0000-01-01 00:00:00 is 0 (``lutil_tm2time``'s special case). The UTC fields
    come from the value with its offset applied, as slapd normalises it; fractions are any
    unit's, ignored. ``DirectoryTimeError`` for what is not GeneralizedTime, or lies before
    year 0 or after year 9999 once the offset is applied.
    """
    seconds, _unit, _fraction = _fields(_text(value, "GeneralizedTime"))
    if not 0 <= seconds < _DAY_10000 * 86_400:
        raise DirectoryTimeError("outside the years 0000-9999")
    year, month, day, rest = _civil(seconds)
    if (year, month, day, rest) == (0, 1, 1, 0):
        return 0
    tm_year = year - 1900
    days = (tm_year - 70) * 365 + ((tm_year - 69) >> 2) + _SLAPD_MONTH_START[month - 1] + day - 1
    if tm_year & 3 == 0 and month > 2:
        days += 1
    return (days * 86_400 + rest) % (1 << 32)


def filetime_ticks(value: str | bytes | int) -> int:
    """The integer of an AD FILETIME / Large Integer value (decimal text, signed 64-bit).

    Raises ``DirectoryTimeError`` for anything but optional ``-`` and 1-19 ASCII digits,
    or a number outside the signed 64-bit range.
    """
    if isinstance(value, bool):
        raise DirectoryTimeError("FILETIME: expected an integer")
    if isinstance(value, int):
        n = value
    else:
        text = _text(value, "FILETIME")
        if not _FILETIME.fullmatch(text):
            raise DirectoryTimeError("FILETIME: not a decimal integer")
        n = int(text)
    if not -(2**63) <= n <= FILETIME_MAX:
        raise DirectoryTimeError("FILETIME: outside the signed 64-bit range")
    return n


def filetime_to_datetime(ticks: int) -> datetime:
    """The UTC instant of *ticks* 100-ns intervals after 1601-01-01.

    Callers handle the sentinels (``0``, ``FILETIME_MAX``) first. Raises
    ``DirectoryTimeError`` for a negative count or one past 9999-12-31.
    """
    if ticks < 0:
        raise DirectoryTimeError("FILETIME: negative")
    try:
        return FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        raise DirectoryTimeError("FILETIME: past the year 9999") from None
