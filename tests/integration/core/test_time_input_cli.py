"""Times given to `firstline` (``--since`` / ``--until`` of ``tickets list`` and ``audit
export``), as a user meets them: a separate process, its exit code, stdout and stderr.
Nanoseconds are cut to microseconds and accepted; an impossible or out-of-range time is a
usage error (exit 2, one line, no traceback) that says which part is wrong and the format."""

from __future__ import annotations

import pytest

from tests.integration.core.test_cli_usage_errors import env, fl  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.integration
COMMANDS = (["tickets", "list"], ["audit", "export"])


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--until", "9999-12-31T23:59:59.999999999Z"),
        ("--since", "2026-11-30T07:34:12.123456789+01:00"),
        ("--until", "9999-12-31"),
    ],
)
def test_nanoseconds_and_the_last_day_are_accepted(
    env: dict[str, str],  # noqa: F811
    command: list[str],
    option: str,
    value: str,
) -> None:
    r = fl(env, *command, option, value)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "error" not in r.stderr.lower()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("10000-01-01", "the year 10000 is out of range (years 0001 to 9999"),
        ("2026-13-01", "there is no month 13 (months 01 to 12)"),
        ("2026-02-30", "there is no day 30 in month 02 of 2026 (it has 28 days)"),
        ("9999-12-31T23:00-05:00", "outside the times that can be stored"),
    ],
)
def test_impossible_times_are_a_usage_error_that_says_what_is_wrong(
    env: dict[str, str],  # noqa: F811
    command: list[str],
    value: str,
    says: str,
) -> None:
    r = fl(env, *command, "--since", value)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    text = " ".join(r.stderr.replace("│", " ").split())
    assert "--since" in text and says in text and "2026-11-27T08:55+01:00" in text, text
    assert "is not a date or time" not in text
