"""connectors.ldap_time: GeneralizedTime (RFC 4517 §3.3.13) and AD FILETIME, every spelling, failing closed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from connectors.ldap_time import (
    FILETIME_MAX,
    DirectoryTimeError,
    filetime_ticks,
    filetime_to_datetime,
    is_openldap_admin_lock,
    parse_generalized_time,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020010100Z", utc(2020, 1, 1)),  # the value: hour precision
        ("2020010112Z", utc(2020, 1, 1, 12)),
        ("202001011230Z", utc(2020, 1, 1, 12, 30)),  # minute precision
        ("20200101123045Z", utc(2020, 1, 1, 12, 30, 45)),
        ("20200101123045.5Z", utc(2020, 1, 1, 12, 30, 45, 500000)),
        ("20200101123045,25Z", utc(2020, 1, 1, 12, 30, 45, 250000)),  # comma fraction
        ("20200101123045.123456789Z", utc(2020, 1, 1, 12, 30, 45, 123456)),  # below a microsecond: truncated
        ("2020010112.5Z", utc(2020, 1, 1, 12, 30)),  # fraction of an hour (X.680)
        ("2020010112,25Z", utc(2020, 1, 1, 12, 15)),
        ("202001011230.5Z", utc(2020, 1, 1, 12, 30, 30)),  # fraction of a minute
        ("202001011230,1Z", utc(2020, 1, 1, 12, 30, 6)),
        ("20200101000000+0100", utc(2019, 12, 31, 23)),  # offsets, converted to UTC
        ("20200101000000-0530", utc(2020, 1, 1, 5, 30)),
        ("2020010100+01", utc(2019, 12, 31, 23)),  # ±hh offset
        ("2020010100-05", utc(2020, 1, 1, 5)),
        ("2020010112.5+0130", utc(2020, 1, 1, 11)),  # fraction and offset together
        ("20200101000000+0000", utc(2020, 1, 1)),
        ("20200101000000-0000", utc(2020, 1, 1)),
        ("20200101000000+2359", utc(2019, 12, 31, 0, 1)),  # slapd normalises it the same way
        ("20240229000000Z", utc(2024, 2, 29)),  # leap day
        ("20000229000000Z", utc(2000, 2, 29)),  # 400-year rule
        ("20161231235960Z", utc(2017, 1, 1)),  # leap second = the next minute's first instant
        ("00010101000000Z", utc(1, 1, 1)),
        ("99991231235959.999999Z", utc(9999, 12, 31, 23, 59, 59, 999999)),
        (b"2020010100Z", utc(2020, 1, 1)),  # raw bytes, as the connector reads them
    ],
)
def test_generalized_time_spellings(text: str | bytes, expected: datetime) -> None:
    got = parse_generalized_time(text)
    assert got == expected and got.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020010112.5Z", utc(2020, 1, 1, 12, 0, 0, 500000)),  # slapd 2.5: always a fraction of a second
        ("202001011230,25Z", utc(2020, 1, 1, 12, 30, 0, 250000)),
        ("20200101123045.5Z", utc(2020, 1, 1, 12, 30, 45, 500000)),
        ("2020010100Z", utc(2020, 1, 1)),
    ],
)
def test_openldap_reads_every_fraction_as_seconds(text: str, expected: datetime) -> None:
    assert parse_generalized_time(text, fraction_of="second") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "20200101000000",  # no time zone
        "2020010100",
        "202001010Z",  # odd number of digits
        "2020010Z",
        "2020-01-01T00:00:00Z",  # ISO 8601 extended format is not GeneralizedTime
        "20200101 000000Z",
        " 20200101000000Z",
        "20200101000000Z ",
        "20200101000000Z\n",
        "20200101000000z",  # lower-case z
        "20200101000000.Z",  # empty fraction
        "20200101000000..5Z",
        "20200101000000+1",  # one-digit offset
        "20200101000000+01000",
        "20200101000000+2400",
        "20200101000000+0160",
        "20200101000000Z+0100",
        "20200230000000Z",  # 30 February
        "20230229000000Z",  # not a leap year
        "19000229000000Z",  # century rule
        "20201301000000Z",
        "20200001000000Z",
        "20200100000000Z",
        "20200132000000Z",
        "20200101240000Z",
        "20200101006000Z",
        "20200101000061Z",
        "٢٠٢٠0101000000Z",  # Arabic-Indic digits
        "２０２０0101000000Z",  # full-width digits
        "2020０101000000Z",
        "20200101000000.٥Z",
        "2020010100\u200bZ",  # zero-width space
        "20200101000000." + "5" * 60 + "Z",  # too long
        "00000101000000Z",  # year 0 is not a date (OpenLDAP's admin lock: is_openldap_admin_lock)
        "00000101000001Z",
        "00010101000000+0100",  # before the year 1 once in UTC
        "99991231235960Z",  # after 9999 once the leap second is applied
        "99991231230000-0100",
        b"\xff\xfe",
        "-20200101000000Z",
    ],
)
def test_invalid_generalized_time_is_refused(text: str | bytes) -> None:
    with pytest.raises(DirectoryTimeError):
        parse_generalized_time(text)
    with pytest.raises(DirectoryTimeError):
        parse_generalized_time(text, fraction_of="second")


@pytest.mark.parametrize("value", [None, 20200101, 2020010100.0, datetime(2020, 1, 1, tzinfo=UTC), ["2020010100Z"]])
def test_non_text_values_are_refused(value: object) -> None:
    """ldap3 would hand over datetime objects only with schema formatting; never trusted silently."""
    with pytest.raises(DirectoryTimeError):
        parse_generalized_time(value)  # type: ignore[arg-type]


def _stamp(when: datetime) -> str:
    return f"{when.year:04d}{when.month:02d}{when.day:02d}{when.hour:02d}{when.minute:02d}{when.second:02d}"


def test_agrees_with_python_calendar_on_random_instants() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        when = utc(1, 1, 1) + timedelta(seconds=rng.randrange(0, 315_537_897_599))
        assert parse_generalized_time(_stamp(when) + "Z") == when
        offset = rng.randrange(-23 * 60 - 59, 23 * 60 + 60)
        local = when + timedelta(minutes=offset)
        if not 1 <= local.year <= 9999:
            continue
        sign, mag = ("+" if offset >= 0 else "-"), abs(offset)
        text = _stamp(local) + f"{sign}{mag // 60:02d}{mag % 60:02d}"
        assert parse_generalized_time(text) == when


@pytest.mark.parametrize(
    "text",
    [
        "000001010000Z",  # the spelling in the OpenLDAP documentation
        "00000101000000Z",  # the value
        "0000010100Z",
        "00000101000000.0Z",
        "00000101000000.5Z",  # slapd ignores fractions for the lock
        "00000101000000,5Z",
        "0000010100.5Z",
        "00000101010000+0100",  # 01:00 at +01:00 is 00:00 UTC
        "000001010100+01",
        "00000101000000+0000",
        "000001010000-0000",
        b"00000101000000Z",
        # the Unix epoch: slapd's parse makes it time 0 too, read as the same lock for good
        "19700101000000Z",
        "197001010000Z",
        "1970010100Z",
        "19700101000000.999Z",
        "19700101010000+0100",
        "19691231230000-0100",
    ],
)
def test_every_spelling_of_the_openldap_admin_lock(text: str | bytes) -> None:
    assert is_openldap_admin_lock(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "00000101000001Z",
        "00000101000000-0100",
        "000001020000Z",
        "20200101000000Z",
        "2020010100Z",
        "19700101000001Z",  # one second after the epoch: an ordinary lock time (slapd lets the right password in)
        "19691231235959Z",
        "19700101000000-0100",
    ],
)
def test_other_valid_values_are_not_the_admin_lock(text: str) -> None:
    assert is_openldap_admin_lock(text) is False


@pytest.mark.parametrize("text", ["", "garbage", "0000010100", "00000101000000", "٠٠٠٠0101000000Z", "00001301000000Z"])
def test_admin_lock_check_refuses_what_is_not_generalized_time(text: str) -> None:
    with pytest.raises(DirectoryTimeError):
        is_openldap_admin_lock(text)


@pytest.mark.parametrize(
    ("value", "ticks"),
    [
        ("0", 0),
        ("9223372036854775807", FILETIME_MAX),
        (b"132223104000000000", 132223104000000000),
        ("-1", -1),
        ("-9223372036854775808", -(2**63)),
        (42, 42),
        ("0000000000000000001", 1),
    ],
)
def test_filetime_integers(value: str | bytes | int, ticks: int) -> None:
    assert filetime_ticks(value) == ticks


@pytest.mark.parametrize(
    "value",
    [
        "",
        " 1",
        "1 ",
        "+5",
        "1.5",
        "0x10",
        "1e5",
        "١٢٣",
        "１２３",
        "9223372036854775808",  # past the signed 64-bit range
        "-9223372036854775809",
        "99999999999999999999",
        "1" * 40,
        True,
        2**63,
        None,
        b"\xff",
    ],
)
def test_bad_filetime_values_are_refused(value: object) -> None:
    with pytest.raises(DirectoryTimeError):
        filetime_ticks(value)  # type: ignore[arg-type]


def test_filetime_instants() -> None:
    assert filetime_to_datetime(132223104000000000) == utc(2020, 1, 1)
    assert filetime_to_datetime(1) == utc(1601, 1, 1)  # 100 ns, truncated to the microsecond
    assert filetime_to_datetime(10) == utc(1601, 1, 1, 0, 0, 0, 1)
    assert filetime_to_datetime(2650467743999999999) == utc(9999, 12, 31, 23, 59, 59, 999999)
    for bad in (-1, -(2**63), 2650467744000000000, FILETIME_MAX):
        with pytest.raises(DirectoryTimeError):
            filetime_to_datetime(bad)
