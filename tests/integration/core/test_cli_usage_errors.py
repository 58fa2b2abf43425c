"""Every usage error of `firstline`, as a user meets it: a separate process, its exit code,
stdout and stderr (item 15). Exit 2, one line on stderr that says what to do, no traceback,
and no value that could be secret repeated anywhere (screen or log file).

No lab service is needed: these never reach a connector. The ledger is a fresh SQLite file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")
SECRET = "Hunter2-Secret-Value-7781"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")},
        "FIRSTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "FIRSTLINE_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "FIRSTLINE_INVENTORY": str(REPO / "lab" / "inventory.yaml"),
        "FIRSTLINE_AUDIT_KEY_FILE": str(tmp_path / "keys" / "audit.key"),
        "FIRSTLINE_LOG_FILE": str(tmp_path / "firstline.log"),
        "FIRSTLINE_ENVIRONMENT": "test",
        "COLUMNS": "100",
    }


def fl(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIRSTLINE, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def _one_line_usage_error(r: subprocess.CompletedProcess[str], tmp_path: Path, *must: str) -> str:
    everything = r.stdout + r.stderr
    assert r.returncode == 2, everything
    assert r.stdout == "", everything
    lines = r.stderr.splitlines()
    assert len(lines) == 1, everything
    assert lines[0].startswith("error: ") and "Traceback" not in everything
    assert SECRET not in everything
    log = tmp_path / "firstline.log"
    assert not log.exists() or SECRET not in log.read_text()
    for text in must:
        assert text in lines[0], lines[0]
    return lines[0]


HELP = "Try 'firstline"
BAD_OPTIONS = [
    # unknown options, on every command
    (["run", "account-unlock", "--bogus"], ["no such option --bogus", "Try 'firstline run --help'"]),
    (["runbooks", "check", "--bogus"], ["no such option --bogus", "firstline runbooks check --help"]),
    (["runbooks", "list", "--bogus"], ["no such option --bogus"]),
    (["runbooks", "vet", "account-unlock", "--by", "Ada", "--bogus"], ["no such option --bogus"]),
    (["tickets", "list", "--bogus"], ["no such option --bogus"]),
    (["tickets", "show", "FL-000001", "--bogus"], ["no such option --bogus"]),
    (["tickets", "sweep", "--bogus"], ["no such option --bogus"]),
    (["audit", "verify", "--bogus"], ["no such option --bogus"]),
    (["audit", "export", "--bogus"], ["no such option --bogus"]),
    (["inventory", "check", "--bogus"], ["no such option --bogus"]),
    (["--bogus"], ["no such option --bogus"]),
    (["run", "account-unlock", "--dry-rn"], ["no such option --dry-rn", "did you mean --dry-run?"]),
    # unknown commands
    (["nosuch"], ["no such command 'nosuch'", "Try 'firstline --help'"]),
    (["tickets", "nosuch"], ["no such command 'nosuch'", "Try 'firstline tickets --help'"]),
    # missing arguments and option values
    (["run"], ["missing argument 'name'"]),
    (["runbooks", "vet"], ["missing argument"]),
    (["runbooks", "vet", "account-unlock"], ["missing option '--by'"]),
    (["tickets", "show"], ["missing argument"]),
    (["run", "account-unlock", "--as"], ["'--as' requires an argument"]),
    (["run", "account-unlock", "-p"], ["'-p' requires an argument"]),
    (["audit", "export", "--since"], ["'--since' requires an argument"]),
    # choices (listed in --help too)
    (["run", "account-unlock", "--role", "boss"], ["'--role' must be one of: agent, employee"]),
    (["run", "account-unlock", "--role", "AGENT"], ["'--role' must be one of: agent, employee"]),
    (["run", "account-unlock", "--lang", "fr"], ["'--lang' must be one of: en, nl"]),
    (["audit", "export", "--format", "xml"], ["'--format' must be one of: jsonl, csv"]),
    (
        ["tickets", "list", "--state", "open"],
        ["'--state' must be one of: queued, running, resolved, escalated, closed"],
    ),
    # numbers
    (["tickets", "list", "--limit", "0"], ["'--limit'"]),
    (["tickets", "list", "--limit", "abc"], ["'--limit'"]),
    (["tickets", "list", "--limit", "99999"], ["'--limit'"]),
    # -p / --secret
    (["run", "account-unlock", "-p", "user"], ["each --param must be key=value"]),
    (["run", "account-unlock", "-p", "=alice"], ["each --param must be key=value"]),
    (["run", "account-unlock", "-p", "user=a", "-p", "user=b"], ["'user' is given twice"]),
    (["run", "account-unlock", "-p", "colour=red"], ["unknown parameter(s): colour"]),
    (["run", "no-such-runbook"], ["no runbook named 'no-such-runbook'"]),
    # extra arguments are not repeated (they may be a password typed in the wrong place)
    (["run", "account-unlock", "extra"], ["unexpected extra argument(s) (not shown)"]),
    (["tickets", "list", "extra"], ["unexpected extra argument(s) (not shown)"]),
    (["audit", "verify", "extra"], ["unexpected extra argument(s) (not shown)"]),
]


@pytest.mark.parametrize(("args", "must"), BAD_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v[0], str) else "")
def test_bad_options_exit_2_with_one_line(
    env: dict[str, str], tmp_path: Path, args: list[str], must: list[str]
) -> None:
    _one_line_usage_error(fl(env, *args), tmp_path, *must)


SECRET_MISTAKES = [
    ["run", "password-reset", "-p", "user=alice", "-p", f"new_password={SECRET}"],
    ["run", "password-reset", "-p", f"new_password={SECRET}", "-p", f"new_password={SECRET}x"],
    ["run", "password-reset", "-p", f"new_password={SECRET}", "-p", "new_password=Other-Value-1"],
    ["run", "password-change", "-p", f"old_password={SECRET}"],
    ["run", "password-reset", "-p", SECRET],
    ["run", "password-reset", "-p", f"user={SECRET}", "-p", f"user={SECRET}"],
    ["run", "password-reset", "--secret", SECRET],
    ["run", "password-reset", SECRET],
    ["run", "password-reset", "-p", "user=alice", SECRET],
    ["run", "password-reset", "--as", SECRET + "\n"],
    ["run", "password-reset", "--as", f"{SECRET}<script>"],
    ["run", "password-reset", "-p", f"user=x)(uid={SECRET}"],
    ["tickets", "list", SECRET],
    ["audit", "export", SECRET],
]


@pytest.mark.parametrize("args", SECRET_MISTAKES, ids=range(len(SECRET_MISTAKES)))
def test_a_secret_typed_in_the_wrong_place_is_never_echoed(
    env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    line = _one_line_usage_error(fl(env, *args), tmp_path)
    assert "Hunter2" not in line


def test_a_repeated_secret_prompt_is_refused_before_reading(env: dict[str, str], tmp_path: Path) -> None:
    r = fl(env, "run", "password-reset", "--secret", "new_password", "--secret", "new_password", stdin=f"{SECRET}\n")
    _one_line_usage_error(r, tmp_path, "'new_password' is given twice")


@pytest.mark.parametrize(
    ("stdin", "must"),
    [
        (None, "no value for secret 'new_password' on standard input"),  # started with stdin closed
        (b"\xff\xfe\n", "is not UTF-8 text"),
        (b"ok\xc3(\n", "is not UTF-8 text"),
        # an unset variable (`echo "$PW" | ...`): a reset to a generated password was not asked for
        (b"\n", "the value for secret 'new_password' is empty"),
        (b"\r\n", "the value for secret 'new_password' is empty"),
    ],
    ids=["closed", "latin-1", "broken-sequence", "empty-line", "empty-windows-line"],
)
def test_a_secret_from_a_closed_or_garbled_stdin_is_a_usage_error(
    env: dict[str, str], tmp_path: Path, stdin: bytes | None, must: str
) -> None:
    """Was an internal error (AttributeError, UnicodeEncodeError), exit 3."""
    args = [FIRSTLINE, "run", "password-reset", "-p", "user=alice", "--secret", "new_password"]
    if stdin is None:
        r = subprocess.run(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
            preexec_fn=lambda: os.close(0),
        )
    else:
        r = subprocess.run(args, env=env, input=stdin, capture_output=True, timeout=60, check=False)
    done = subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())
    _one_line_usage_error(done, tmp_path, must)
    assert fl(env, "tickets", "list").stdout == "No tickets.\n"


HOSTILE_AS = ["<script>", "*)(uid=*", "alice\u202e", "al\nice", "\x1b[31malice", "alice\r", "al\tice", "ali\u200dce"]


@pytest.mark.parametrize("who", HOSTILE_AS, ids=range(len(HOSTILE_AS)))
def test_hostile_requesters_are_refused_with_no_ticket(env: dict[str, str], tmp_path: Path, who: str) -> None:
    for extra in ([], ["--role", "employee"], ["--dry-run"]):
        r = fl(env, "run", "account-unlock", "-p", "user=alice", "--as", who, *extra)
        line = _one_line_usage_error(r, tmp_path, "the requester (--as) is not a valid account name")
        assert who not in line
    assert fl(env, "tickets", "list").stdout == "No tickets.\n"


@pytest.mark.parametrize("by", ["Ada\n(CAB)", "Ada \u202e", "Ada\x1b[2J", "", " "])
def test_vet_by_must_be_plain_text(env: dict[str, str], tmp_path: Path, by: str) -> None:
    _one_line_usage_error(fl(env, "runbooks", "vet", "account-unlock", "--by", by), tmp_path, "--by")


TIME_VALUES = ["garbage", "2026-13-01", "", "x" * 10_000, "2026-11-30T25:00", "yesterday", "2026-11-30T04:22+24:00"]


@pytest.mark.parametrize("value", TIME_VALUES, ids=["garbage", "month13", "empty", "10KB", "hour25", "word", "off24"])
@pytest.mark.parametrize(
    "command",
    [
        ["audit", "export", "--since"],
        ["audit", "export", "--until"],
        ["tickets", "list", "--since"],
        ["tickets", "list", "--until"],
    ],
)
def test_time_options_refuse_values_that_are_not_times(
    env: dict[str, str], tmp_path: Path, command: list[str], value: str
) -> None:
    # every refusal shows the accepted forms; one that is not a time at all also says how an
    # offset is read, one with an impossible part names that part (runner.timeparse.MESSAGES)
    line = _one_line_usage_error(
        fl(env, *command, value), tmp_path, "2026-11-27T08:55+01:00" if len(value) < 64 else ""
    )
    if value in ("garbage", "yesterday", ""):
        assert "no offset means UTC" in line, line
    assert len(line) < 400


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-30T04:22+01:00",
        "2026-11-30T03:22Z",
        "2026-11-30t03:22z",
        "2026-11-30 03:22",
        "2026-11-29T21:52-05:30",
        "2026-11-30T04:22+0100",
        "2026-11-30",
        "2026-11-30T03:22:07.5Z",
    ],
)
def test_time_options_accept_every_documented_spelling(env: dict[str, str], value: str) -> None:
    r = fl(env, "audit", "export", "--since", value, "--until", "2100-01-01")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = fl(env, "tickets", "list", "--since", value)
    assert r.returncode == 0 and r.stdout == "No tickets.\n", r.stderr


@pytest.mark.parametrize("args", [[], ["runbooks"], ["tickets"], ["audit"], ["inventory"], ["db"]])
def test_a_bare_command_is_one_usage_line_and_exits_2(env: dict[str, str], args: list[str]) -> None:
    r = fl(env, *args)
    assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "a command is missing" in lines[0] and "--help" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


def test_help_lists_the_choices_and_exit_codes(env: dict[str, str]) -> None:
    run_help = fl(env, "run", "--help").stdout
    assert "agent|employee" in run_help and "en|nl" in run_help
    assert "4" in fl(env, "--help").stdout and "requester" in fl(env, "--help").stdout
    assert "jsonl|csv" in fl(env, "audit", "export", "--help").stdout
    assert "no offset means UTC" in " ".join(fl(env, "audit", "export", "--help").stdout.split())
    assert "closed" in fl(env, "tickets", "list", "--help").stdout


# Every kind of error line in the reader's language (runner.clitexts): `--lang` on `run`,
# FIRSTLINE_LANG elsewhere. Same exit code and one line on stderr in both; the Dutch line
# must not fall back to the English sentence.
LANG_ERRORS = [
    # click's own usage errors, worded by the CLI
    ("missing-argument", ["run"], {}, "error: missing argument 'name'", "fout: argument 'name' ontbreekt"),
    ("no-such-option", ["run", "x", "--dry-rn"], {}, "(did you mean --dry-run?)", "(bedoelt u --dry-run?)"),
    ("no-such-command", ["nosuch"], {}, "no such command 'nosuch'", "onbekende opdracht 'nosuch'"),
    ("choice", ["run", "x", "--role", "boss"], {}, "must be one of: agent, employee", "moet een van deze zijn"),
    ("extra-argument", ["run", "x", "extra"], {}, "unexpected extra argument(s)", "onverwacht extra argument"),
    ("number-range", ["tickets", "list", "--limit", "0"], {}, "greater than or equal to 1", "minstens 1 zijn"),
    ("missing-command", ["tickets"], {}, "a command is missing", "er ontbreekt een opdracht"),
    # the CLI's own refusals of what was typed
    ("param-form", ["run", "account-unlock", "-p", "user"], {}, "each --param must be key=value", "elke --param"),
    ("param-twice", ["run", "x", "-p", "user=a", "-p", "user=b"], {}, "is given twice", "twee keer gegeven"),
    ("secret-on-line", ["run", "password-reset", "-p", "new_password=x"], {}, "is secret: use", "is geheim: gebruik"),
    ("time", ["tickets", "list", "--since", "garbage"], {}, "is not a date or time", "is geen datum of tijd"),
    (
        "empty-window",
        ["audit", "export", "--since", "2026-01-02", "--until", "2026-01-01"],
        {},
        "must be later",
        "moet later",
    ),
    ("queues", ["worker", "--queues", "x"], {}, "give interactive, batch or both", "geef interactive, batch"),
    # domain errors mapped to exit codes in main()
    (
        "unknown-parameter",
        ["run", "account-unlock", "-p", "colour=red"],
        {},
        "unknown parameter(s): colour",
        "onbekende parameter(s): colour",
    ),
    ("no-runbook", ["run", "no-such-runbook"], {}, "no runbook named 'no-such-runbook'", "geen runbook met de naam"),
    (
        "no-ticket",
        ["tickets", "show", "FL-009999"],
        {},
        "error: ticket FL-009999 does not exist",
        "fout: ticket FL-009999 bestaat niet",
    ),
    ("not-a-ticket", ["tickets", "show", "xx"], {}, "is not a ticket number", "is geen ticketnummer"),
    (
        "bad-requester",
        ["run", "account-status", "--as", "bad name!", "-p", "user=alice"],
        {},
        "error: the requester (--as) is not a valid account name",
        "fout: de aanvrager (--as) is geen geldige accountnaam",
    ),
    # configuration
    (
        "database-url",
        ["tickets", "list"],
        {"FIRSTLINE_DATABASE_URL": "foo://x"},
        "is not a database URL Firstline can use (scheme 'foo')",
        "is geen database-URL die Firstline kan gebruiken (schema 'foo')",
    ),
    (
        "broker-url",
        ["worker"],
        {"FIRSTLINE_BROKER_URL": "bad"},
        "FIRSTLINE_BROKER_URL must be redis://",
        "FIRSTLINE_BROKER_URL moet redis://",
    ),
    (
        "broker-down",
        ["worker"],
        {"FIRSTLINE_BROKER_URL": "redis://127.0.0.1:1/0"},
        "connection refused: nothing listens",
        "verbinding geweigerd: er luistert niets",
    ),
    (
        "no-broker",
        ["worker"],
        {},
        "FIRSTLINE_BROKER_URL is not set: a worker needs a broker",
        "FIRSTLINE_BROKER_URL is niet ingesteld",
    ),
]


@pytest.mark.parametrize("lang", ["en", "nl"])
@pytest.mark.parametrize(
    ("args", "extra", "english", "dutch"), [c[1:] for c in LANG_ERRORS], ids=[c[0] for c in LANG_ERRORS]
)
def test_error_lines_are_in_the_chosen_language(
    env: dict[str, str], lang: str, args: list[str], extra: dict[str, str], english: str, dutch: str
) -> None:
    env = {**env, **extra, "LANG": "C.UTF-8"}
    if args[0] == "run":
        args = [*args, "--lang", lang]
    else:
        env["FIRSTLINE_LANG"] = lang
    r = fl(env, *args)
    everything = r.stdout + r.stderr
    assert r.returncode == 2 and r.stdout == "", everything
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in everything, everything
    if args != ["tickets"]:  # a bare group says only what is missing
        assert lines[0].startswith("error: " if lang == "en" else "fout: "), lines[0]
    assert (english if lang == "en" else dutch) in lines[0], lines[0]
    if lang == "nl":
        assert english not in lines[0], lines[0]


def test_a_runbook_refusal_is_in_the_chosen_language(env: dict[str, str], tmp_path: Path) -> None:
    books = tmp_path / "unvetted"
    books.mkdir()
    (books / "account-unlock.yaml").write_bytes((REPO / "runbooks" / "account-unlock.yaml").read_bytes())
    env = {**env, "FIRSTLINE_RUNBOOKS_DIR": str(books)}
    for lang, said in (("en", "is not vetted; an admin must review it"), ("nl", "is niet goedgekeurd")):
        r = fl(env, "run", "account-unlock", "-p", "user=alice", "--lang", lang)
        assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
        assert r.stderr.splitlines() == [r.stderr.strip()] and said in r.stderr, r.stderr
        assert r.stderr.startswith(str(books / "account-unlock.yaml") + ":1: runbook 'account-unlock' "), r.stderr


def test_lang_wins_over_the_settings_and_a_bad_language_setting_is_said_in_the_locale(env: dict[str, str]) -> None:
    r = fl({**env, "FIRSTLINE_LANG": "nl"}, "run", "no-such-runbook", "--lang", "en")
    assert r.returncode == 2 and r.stderr.startswith("error: no runbook named"), r.stderr
    r = fl({**env, "LANG": "nl_NL.UTF-8"}, "tickets", "show", "FL-009999")
    assert r.returncode == 2 and r.stderr == "fout: ticket FL-009999 bestaat niet\n", r.stderr
    r = fl({**env, "FIRSTLINE_LANG": "fr", "LANG": "nl_NL.UTF-8"}, "tickets", "list")
    assert r.returncode == 2 and r.stderr.startswith("fout: instellingen: FIRSTLINE_LANG: geen ondersteunde taal"), (
        r.stderr
    )
    r = fl({**env, "FIRSTLINE_LANG": "fr", "LANG": "C"}, "tickets", "list")
    assert r.returncode == 2 and r.stderr.startswith("error: settings: FIRSTLINE_LANG: not a supported language")


def test_runbooks_check_fails_for_a_missing_or_empty_runbooks_directory(env: dict[str, str], tmp_path: Path) -> None:
    """A mistyped FIRSTLINE_RUNBOOKS_DIR said "All runbooks are valid and vetted." with exit 0."""
    (tmp_path / "empty").mkdir()
    for folder, said in ((tmp_path / "nowhere", "no such directory"), (tmp_path / "empty", "no runbooks in it")):
        r = fl({**env, "FIRSTLINE_RUNBOOKS_DIR": str(folder)}, "runbooks", "check")
        assert r.returncode == 1 and f"{folder}: {said}" in r.stdout and "valid" not in r.stdout, r.stdout + r.stderr
    listed = fl({**env, "FIRSTLINE_RUNBOOKS_DIR": str(tmp_path / "nowhere")}, "runbooks", "list")
    _one_line_usage_error(listed, tmp_path, "(FIRSTLINE_RUNBOOKS_DIR) is not a directory")


def test_output_that_cannot_be_written_is_said_in_one_line_not_an_internal_error(env: dict[str, str]) -> None:
    """``> /dev/full``: was "internal error (OSError)" and a crash in the log."""
    fl(env, "db", "upgrade")
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [FIRSTLINE, "tickets", "list"],
            env=env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip() == "error: the output could not be written (No space left on device)"


def test_serve_on_a_port_in_use_or_a_bad_host_is_one_line_before_it_says_it_serves(
    env: dict[str, str], tmp_path: Path
) -> None:
    """It printed "Firstline portal on http://..." and then uvicorn's ERROR line, exit 3."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = fl(env, "serve", "--port", str(port))
    line = _one_line_usage_error(r, tmp_path, f"cannot listen on 127.0.0.1:{port}", "choose another with --port")
    assert "Firstline portal on" not in line
    bad = fl(env, "serve", "--host", "999.1.1.1", "--port", "1")
    _one_line_usage_error(bad, tmp_path, "--host 999.1.1.1 is not an address to listen on")


def test_serve_on_ipv6_prints_a_url_a_browser_opens(env: dict[str, str]) -> None:
    """``--host ::1`` printed ``http://::1:8000/``; an IPv6 address goes in brackets (RFC 3986)."""
    import socket

    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [FIRSTLINE, "serve", "--host", "::1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert first.startswith(f"Firstline portal on http://[::1]:{port}/"), first


@pytest.mark.parametrize("given", ["", "   "])
def test_an_empty_requester_filter_is_refused_not_dropped(env: dict[str, str], tmp_path: Path, given: str) -> None:
    """``tickets list --requester ''`` listed every ticket, as if no filter were given."""
    r = fl(env, "tickets", "list", "--requester", given)
    _one_line_usage_error(r, tmp_path, "--requester is empty")


def test_runbooks_show_lists_the_parameters_run_takes(env: dict[str, str], tmp_path: Path) -> None:
    """A runbook's parameters could only be learnt by getting one wrong (``-p nosuch=1``)."""
    r = fl(env, "runbooks", "show", "password-change")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("password-change: Change my password (vetted)")
    for line in ("-p user=...", "--secret old_password", "--secret new_password", "default: the requester"):
        assert line in r.stdout, r.stdout
    printers = fl(env, "runbooks", "show", "printer-queue-clear")
    assert "one of: " in printers.stdout and "office-1" in printers.stdout  # the inventory's choices
    unknown = fl(env, "runbooks", "show", "no-such-runbook")
    _one_line_usage_error(unknown, tmp_path, "no runbook named 'no-such-runbook'; available: account-status")


@pytest.mark.parametrize(
    "args",
    [
        ["run", "printer-queue-clear", "-p", "\udcff=1"],
        ["run", "printer-queue-clear", "-p", "printer\udcff=office-1"],
        ["tickets", "list", "--requester", "\udcff"],
        ["tickets", "show", "ab\udcffc"],
        ["runbooks", "show", "\udcff"],
    ],
    ids=["param-name", "param-name-tail", "tickets-list", "tickets-show", "runbooks-show"],
)
def test_an_argument_that_is_not_utf8_is_a_usage_error(env: dict[str, str], tmp_path: Path, args: list[str]) -> None:
    """Bytes that are no UTF-8 reach sys.argv as lone surrogates: they crashed deep inside a
    command (exit 3, the refusal's audit record never written). Now one line, exit 2."""
    raw = [a.encode("utf-8", "surrogateescape") for a in args]
    r = subprocess.run([FIRSTLINE.encode(), *raw], env=env, capture_output=True, timeout=60, check=False)
    done = subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())
    _one_line_usage_error(done, tmp_path, "is not UTF-8 text")
    assert "\\xff" in done.stderr
    assert fl(env, "tickets", "list").stdout == "No tickets.\n"


def test_a_long_unknown_parameter_name_is_cut_in_the_answer(env: dict[str, str], tmp_path: Path) -> None:
    r = fl(env, "run", "account-status", "-p", "k" * 5000 + "=1")
    _one_line_usage_error(r, tmp_path, "unknown parameter(s): " + "k" * 64 + "…")
    assert len(r.stderr) < 400


JSON_REFUSALS = [
    # (id, args after `run`, code, exit code, words in the message)
    ("unknown-parameter", ["account-unlock", "-p", "bogus=1"], "invalid_parameter", 2, "unknown parameter(s): bogus"),
    ("unknown-runbook", ["no-such-runbook"], "not_found", 2, "no runbook named 'no-such-runbook'"),
    ("unknown-option", ["account-unlock", "-p", "user=alice", "--frobnicate"], "usage", 2, "no such option"),
    ("bad-choice", ["printer-queue-clear", "-p", "printer=nowhere-9"], "invalid_parameter", 2, "one of the choices"),
    ("not-utf8", ["account-unlock", "-p", "\udcff=1"], "usage", 2, "is not UTF-8 text"),
]


@pytest.mark.parametrize(
    ("args", "code", "exit_code", "words"), [c[1:] for c in JSON_REFUSALS], ids=[c[0] for c in JSON_REFUSALS]
)
def test_run_json_answers_a_refusal_in_json_on_stdout(
    env: dict[str, str], tmp_path: Path, args: list[str], code: str, exit_code: int, words: str
) -> None:
    """`run --json` printed nothing on stdout when it refused (only the stderr line), so a
    script reading its JSON failed on an empty document. Now stdout holds one JSON object
    {"error": {code, message, exit_code}} beside the unchanged stderr line."""
    full = ["run", *args, "--json"]
    raw = [FIRSTLINE.encode(), *(a.encode("utf-8", "surrogateescape") for a in full)]
    done = subprocess.run(raw, env=env, capture_output=True, timeout=60, check=False)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == exit_code, stdout + stderr
    assert stderr.startswith("error: ") and len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    error = json.loads(stdout)["error"]
    assert error["code"] == code and error["exit_code"] == exit_code, error
    assert words in error["message"] and not error["message"].startswith("error: "), error
    assert fl(env, "tickets", "list").stdout == "No tickets.\n"  # refused before a ticket


def test_run_json_refusal_is_in_the_chosen_language_and_without_json_stdout_stays_empty(env: dict[str, str]) -> None:
    r = fl(env, "run", "account-unlock", "-p", "bogus=1", "--json", "--lang", "nl")
    assert r.returncode == 2 and r.stderr.startswith("fout: onbekende parameter(s)"), r.stderr
    assert json.loads(r.stdout)["error"]["message"].startswith("onbekende parameter(s): bogus"), r.stdout
    r = fl(env, "run", "account-unlock", "-p", "bogus=1")
    assert r.returncode == 2 and r.stdout == "", r.stdout
    r = fl(env, "run", "account-unlock", "-p", "note=--json", "-p", "bogus=1")  # a value, not the option
    assert r.returncode == 2 and r.stdout == "", r.stdout


def test_a_required_secret_left_out_says_how_to_give_it(env: dict[str, str], tmp_path: Path) -> None:
    """Left out, a secret got "parameter 'new_password' is required", with no word of --secret
    (and --secret with an empty value says to leave it out): a tester's find."""
    r = fl(env, "run", "password-change", "--as", "alice", "--role", "employee", "--secret", "old_password",
           stdin=f"{SECRET}\n")  # fmt: skip
    line = _one_line_usage_error(r, tmp_path, "'new_password' is a required secret: add --secret new_password")
    assert "old_password" not in line
    r = fl(env, "run", "password-change", "--as", "alice", "--role", "employee", "--lang", "nl")
    assert r.returncode == 2 and "is een verplicht geheim: voeg --secret old_password toe" in r.stderr, r.stderr
    assert fl(env, "tickets", "list").stdout == "No tickets.\n"
