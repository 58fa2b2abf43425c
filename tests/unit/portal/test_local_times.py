"""Times on the people's pages read on their own clock (``FIRSTLINE_TIME_ZONE``), with the
zone's abbreviation for that moment; the ledger stores UTC (a tester's find: an employee in
Amsterdam at 08:55 read "07:55 UTC" on their tickets)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest

from connectors.mail import MailTarget, render
from portal.rendering import local_text, make_templates

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(
    ("stamp", "zone", "shown"),
    [
        ("2026-12-02T07:55:03.123456Z", AMS, "2026-12-02 08:55:03 CET"),  # winter: +01:00
        ("2026-07-02T06:55:03.123456+00:00", AMS, "2026-07-02 08:55:03 CEST"),  # summer: +02:00
        ("2026-03-29T00:59:59Z", AMS, "2026-03-29 01:59:59 CET"),  # the second before the change
        ("2026-03-29T01:00:00Z", AMS, "2026-03-29 03:00:00 CEST"),  # the clocks jump
        ("2026-12-31T23:30:00Z", AMS, "2027-01-01 00:30:00 CET"),  # another day, month and year
        ("2026-12-02T07:55:03", AMS, "2026-12-02 08:55:03 CET"),  # stored without offset: UTC
        ("2026-12-02T07:55:03Z", zoneinfo.ZoneInfo("UTC"), "2026-12-02 07:55:03 UTC"),
        ("2026-12-02T07:55:03Z", zoneinfo.ZoneInfo("America/New_York"), "2026-12-02 02:55:03 EST"),
        ("2026-12-02T07:55:03Z", zoneinfo.ZoneInfo("Asia/Kolkata"), "2026-12-02 13:25:03 IST"),
    ],
)
def test_a_stored_time_on_the_local_clock(stamp: str, zone: zoneinfo.ZoneInfo, shown: str) -> None:
    assert local_text(stamp, zone=zone) == shown
    assert local_text(stamp, False, zone=zone) == shown[:16] + shown[19:]  # without seconds


@pytest.mark.parametrize("value", [None, "", "yesterday", "2026-12-02", "2026-12-02T99:00:00Z", 42])
def test_what_is_not_a_stored_time_is_left_as_it_is(value: object) -> None:
    assert local_text(value, zone=AMS) == ("" if value is None else str(value))


def test_the_templates_use_the_configured_zone() -> None:
    env = make_templates("Europe/Amsterdam").env
    assert env.from_string("{{ t | local(false) }}").render(t="2026-12-02T07:55:03Z") == "2026-12-02 08:55 CET"
    assert make_templates().env.from_string("{{ t | local }}").render(t="2026-12-02T07:55:03Z") == (
        "2026-12-02 07:55:03 UTC"
    )


def test_the_mails_say_the_time_on_the_configured_clock() -> None:
    when = datetime(2026, 12, 2, 7, 55, tzinfo=UTC)
    _, body = render("account_unlock", "alice", "self_service", when, "the service desk", time_zone="Europe/Amsterdam")
    assert "on 2026-12-02 08:55 CET" in body and "UTC" not in body
    _, body = render("account_unlock", "alice", "self_service", when, "the service desk")
    assert "on 2026-12-02 07:55 UTC" in body


@pytest.mark.parametrize("zone", ["Europe/Amsterdan", "../../etc/passwd", "+01:00", "CET/"])
def test_a_mail_target_refuses_a_zone_that_does_not_exist(zone: str) -> None:
    with pytest.raises(ValueError, match="not a time zone name"):
        MailTarget(host="localhost", sender="desk@example.org", time_zone=zone)
