"""The messages of ``runner.timeparse`` (a time typed into a filter that is not one) marked
for the catalogues, so that ``TimeParseError.translated`` finds them in Dutch. Kept in step
with ``runner.timeparse.MESSAGES`` by tests/unit/portal/test_time_input.py."""

from __future__ import annotations

from portal.texts import N_

TIME_TEXTS = (
    N_("2026-11-27, 2026-11-27T08:55, 2026-11-27 08:55:30Z or 2026-11-27T08:55+01:00"),
    N_("%(what)s is empty; give a date or time such as %(examples)s (no offset means UTC)"),
    N_("%(what)s is too long to be a date or time; use e.g. %(examples)s (no offset means UTC)"),
    N_("%(what)s '%(value)s' is not a date or time; use e.g. %(examples)s (no offset means UTC)"),
    N_(
        "%(what)s '%(value)s': the year %(year)s is out of range (years 0001 to 9999, four digits); "
        "use e.g. %(examples)s"
    ),
    N_("%(what)s '%(value)s': there is no month %(month)s (months 01 to 12); use e.g. %(examples)s"),
    N_(
        "%(what)s '%(value)s': there is no day %(day)s in month %(month)s of %(year)s (it has %(days)s days); "
        "use e.g. %(examples)s"
    ),
    N_(
        "%(what)s '%(value)s': %(clock)s is not a time of day (hours 00 to 23, minutes and seconds 00 to 59); "
        "use e.g. %(examples)s"
    ),
    N_(
        "%(what)s '%(value)s': the offset %(offset)s is out of range (clocks run from -12:00 to +14:00); "
        "use e.g. %(examples)s"
    ),
    N_(
        "%(what)s '%(value)s' is outside the times that can be stored "
        "(0001-01-01 00:00 to 9999-12-31 23:59:59.999999 UTC); use e.g. %(examples)s"
    ),
)
