"""A wrong FIRSTLINE_* setting, as an operator meets it: `firstline serve` and the other
commands as separate processes. Exit 2, one line on stderr that names the variable, says
what is wrong and what it takes with a short example; no traceback, never the value.

* JSON-valued settings (agent/auditor groups, agent scopes, trusted proxies, batch
  runbooks): not JSON at all, or JSON of the wrong shape;
* enumerated settings: FIRSTLINE_LANG (en, nl; ``de`` was accepted silently and the CLI
  fell back to English), FIRSTLINE_ENVIRONMENT, the booleans.
"""

from __future__ import annotations

import pytest

from runner.errors import ConfigError
from runner.settings import read_settings
from tests.integration.core.test_cli_usage_errors import env, fl  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.integration
MARK = "Zq9"  # in every bad value: it must never be shown

COMMANDS = (["serve", "--port", "1"], ["tickets", "list"], ["audit", "verify"], ["run", "account-unlock"], ["worker"])

# variable, bad value, what the one line must say
BAD = [
    (
        "FIRSTLINE_AGENT_GROUPS",
        "{corp" + MARK + ":",
        ["not valid JSON", "expected a JSON object", 'e.g. {"corp": ["cn='],
    ),
    ("FIRSTLINE_AGENT_GROUPS", '{"corp": "cn=' + MARK + '"}', ["corp: Input should be a valid list", 'e.g. {"corp"']),
    ("FIRSTLINE_AUDITOR_GROUPS", "cn=" + MARK, ["not valid JSON", "expected a JSON object", 'e.g. {"corp"']),
    ("FIRSTLINE_AGENT_SCOPES", "[" + MARK, ["not valid JSON", 'e.g. {"corp": ["corp", "lab"]}']),
    (
        "FIRSTLINE_TRUSTED_PROXIES",
        "10.0.0.1," + MARK,
        ["not valid JSON", "a JSON list", 'e.g. ["127.0.0.1", "10.0.0.0/8"]'],
    ),
    ("FIRSTLINE_TRUSTED_PROXIES", '{"a": "' + MARK + '"}', ["Input should be a valid list", "a JSON list"]),
    ("FIRSTLINE_BATCH_RUNBOOKS", "disk-" + MARK, ["not valid JSON", 'e.g. ["disk-cleanup"]']),
    ("FIRSTLINE_LANG", "de" + MARK, ["not a supported language", "one of en (English), nl (Dutch)"]),
    ("FIRSTLINE_ENVIRONMENT", "staging" + MARK, ["not a supported value", "one of dev, test, prod"]),
    ("FIRSTLINE_SESSION_COOKIE_SECURE", "maybe" + MARK, ["valid boolean", "expected true or false"]),
    ("FIRSTLINE_RUN_WORKERS", "four" + MARK, ["valid integer", "expected a whole number, e.g. 4"]),
    # the clock of the people's pages: an IANA name (a path, an offset or a typo is refused)
    ("FIRSTLINE_TIME_ZONE", "Europe/Amsterdan" + MARK, ["not a time zone name", "e.g. Europe/Amsterdam or UTC"]),
    ("FIRSTLINE_TIME_ZONE", "../../etc/passwd" + MARK, ["not a time zone name", "an IANA time zone name"]),
    ("FIRSTLINE_TIME_ZONE", "+01:00" + MARK, ["not a time zone name"]),
]


def _one_line(r: object, name: str, must: list[str]) -> str:
    stdout, stderr, code = r.stdout, r.stderr, r.returncode  # type: ignore[attr-defined]
    everything = stdout + stderr
    assert code == 2, everything
    assert "Traceback" not in everything and MARK not in everything, everything
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, everything
    line = lines[0]
    assert line.startswith(f"error: settings: {name}: "), line
    for text in must:
        assert text in line, (text, line)
    return line


@pytest.mark.parametrize(("name", "value", "must"), BAD, ids=[f"{n}={v[:12]}" for n, v, _ in BAD])
def test_a_bad_setting_names_the_variable_and_what_it_takes(
    env: dict[str, str],  # noqa: F811
    name: str,
    value: str,
    must: list[str],
) -> None:
    r = fl({**env, name: value}, "tickets", "list")
    _one_line(r, name, must)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("name", "value", "must"),
    [BAD[0], BAD[7]],
    ids=["agent_groups", "lang"],
)
def test_every_command_refuses_it_the_same_way(
    env: dict[str, str],  # noqa: F811
    command: list[str],
    name: str,
    value: str,
    must: list[str],
) -> None:
    r = fl({**env, name: value, "FIRSTLINE_BROKER_URL": "redis://127.0.0.1:1/0"}, *command)
    _one_line(r, name, must)


@pytest.mark.parametrize("value", ["nl", "NL", "nl_NL.UTF-8", "en", ""])
def test_supported_languages_in_any_spelling_are_taken(env: dict[str, str], value: str) -> None:  # noqa: F811
    r = fl({**env, "FIRSTLINE_LANG": value}, "tickets", "list")
    assert r.returncode == 0, r.stdout + r.stderr


def test_read_settings_explains_in_process_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRSTLINE_ENVIRONMENT", "test")
    monkeypatch.setenv("FIRSTLINE_LANG", "fr")
    with pytest.raises(ConfigError, match=r"FIRSTLINE_LANG: not a supported language; expected one of en"):
        read_settings()
    monkeypatch.setenv("FIRSTLINE_LANG", "nl_BE")
    assert read_settings().lang == "nl"


@pytest.mark.parametrize(
    ("name", "value", "must"),
    [
        ("FIRSTLINE_DEFAULT_STEP_TIMEOUT", "nan", "a finite number"),
        ("FIRSTLINE_DEFAULT_STEP_TIMEOUT", "inf", "a finite number"),
        ("FIRSTLINE_DEFAULT_STEP_TIMEOUT", "-5", "greater than 0"),
        ("FIRSTLINE_DEFAULT_STEP_TIMEOUT", "0", "greater than 0"),  # the rule's own figure is shown
        ("FIRSTLINE_WATCHDOG_GRACE", "nan", "a finite number"),
        ("FIRSTLINE_SWEEP_INTERVAL", "inf", "a finite number"),
        ("FIRSTLINE_RUN_START_WITHIN", "inf", "a finite number"),
        ("FIRSTLINE_CHECKPOINT_EVERY", "0", "greater than or equal to 1"),
    ],
)
def test_a_duration_or_count_must_be_finite_and_positive(
    env: dict[str, str],  # noqa: F811
    name: str,
    value: str,
    must: str,
) -> None:
    """A step timeout of nan or inf was an internal error at the first step, -5 or 0 a ticket
    escalated for a step that could never finish; a checkpoint every 0 events was taken as 1."""
    r = fl({**env, name: value}, "tickets", "list")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert r.stderr.startswith(f"error: settings: {name}: ") and must in r.stderr, r.stderr
