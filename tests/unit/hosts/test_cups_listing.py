"""Print queues matched as CUPS matches them (issue 7, item 11), without a network.

The lpstat answers are scripted (``SshPool.run`` replaced); the real CUPS server is exercised
by tests/integration/hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.base import InvalidInput, NotFound, Rejected, Unreachable
from connectors.ssh import SshConnector, SshTargetConfig, parse_lpstat_jobs, parse_lpstat_printer
from connectors.ssh_exec import ExecResult

LINE = "{job:<23} {user:<13} {size:>8} Mon Nov 30 04:37:28 2026"


def job(name: str, user: str = "root", size: int = 1024) -> str:
    return LINE.format(job=name, user=user, size=size)


# -- reading lpstat -o ------------------------------------------------------------------------------------
def test_the_reported_case_jobs_of_bugtest_case_are_found_for_bugtest_case_spelled_otherwise() -> None:
    out = f"{job('bugtest-case-9')}\n{job('bugtest-case-10')}\n"
    jobs = parse_lpstat_jobs("BugTest-Case", out)
    assert [j["id"] for j in jobs] == ["bugtest-case-9", "bugtest-case-10"]
    assert jobs[0] == {"id": "bugtest-case-9", "user": "root", "size": 1024, "submitted": "Mon Nov 30 04:37:28 2026"}


@pytest.mark.parametrize("asked", ["bugtest-case", "BUGTEST-CASE", "BugTest-Case", "bUgTeSt-CaSe"])
def test_every_ascii_case_spelling_names_the_same_queue(asked: str) -> None:
    assert len(parse_lpstat_jobs(asked, job("bugtest-case-12"))) == 1


def test_mixed_case_queue_spelled_by_cups() -> None:
    assert parse_lpstat_jobs("floor2-color", job("Floor2-Color-3"))[0]["id"] == "Floor2-Color-3"


@pytest.mark.parametrize(
    ("queue", "line", "job_id"),
    [
        ("bug-test-case", job("bug-test-case-12"), "bug-test-case-12"),
        ("office-1", job("office-1-5"), "office-1-5"),
        ("q-2-3", job("q-2-3-4"), "q-2-3-4"),
        ("a.b@c_d", job("a.b@c_d-77"), "a.b@c_d-77"),
        ("office-1", "office-1-123456789012345678 root 1 Mon", "office-1-123456789012345678"),  # long id, no padding
    ],
)
def test_queue_names_with_dashes_and_digits(queue: str, line: str, job_id: str) -> None:
    assert [j["id"] for j in parse_lpstat_jobs(queue, line)] == [job_id]


def test_users_with_spaces_and_odd_spacing_are_still_jobs() -> None:
    out = "\n".join(
        [
            job("office-1-1", user="John Doe"),
            "office-1-2\troot\t2048\tMon Nov 30 04:37:28 2026",
            "  office-1-3   CORP\\jdoe   4096   Mon Nov 30 04:37:28 2026  ",
            "office-1-4 root 8",  # no date
        ]
    )
    jobs = parse_lpstat_jobs("office-1", out)
    assert [(j["user"], j["size"]) for j in jobs] == [
        ("John Doe", 1024),
        ("root", 2048),
        ("CORP\\jdoe", 4096),
        ("root", 8),
    ]


@pytest.mark.parametrize("out", ["", "\n\n", "no entries\n", "No entries", "\r\n"])
def test_empty_listings(out: str) -> None:
    assert parse_lpstat_jobs("office-1", out) == []


@pytest.mark.parametrize(
    "line",
    [
        "keine Einträge",  # localized "no entries"
        "aucune entrée",
        "lpstat: Scheduler is not running.",
        "office-1 is idle",
        job("office-10-3"),  # another queue whose name starts like this one
        job("office-2-3"),
        job("office-1"),  # no job number
        job("office-1-x"),
        "office-1-7 root",  # no size
        "\tqueued for office-1",  # lpstat -l continuation line
        job("ｏffice-1-3"),  # fullwidth look-alike
        job("office-1\u200b-3"),  # zero-width space
        job("offİce-1-3"),  # Unicode case folding must not make this office-1
    ],
)
def test_a_line_that_is_not_a_job_of_this_queue_is_an_error(line: str) -> None:
    with pytest.raises(ValueError, match="unexpected line"):
        parse_lpstat_jobs("office-1", f"{job('office-1-1')}\n{line}\n")


# -- the connector fails closed on a listing it does not understand --------------------------------------------
CFG: dict[str, Any] = {
    "connector": "ssh",
    "address": "192.0.2.1",  # TEST-NET: never contacted
    "username": "svc-firstline",
    "private_key": {"env": "UNUSED"},
    "known_hosts": {"env": "UNUSED"},
    "allowed_queues": ["office-1", "bugtest-case"],
}

Reply = ExecResult | Callable[[list[str]], ExecResult]


def scripted(*replies: Reply, **over: Any) -> tuple[SshConnector, list[list[str]]]:
    conn = SshConnector("print-01", SshTargetConfig.model_validate({**CFG, **over}), lambda ref: "unused")
    calls: list[list[str]] = []
    queue = list(replies)

    def run(argv: list[str], *, timeout: float, max_output: int | None = None) -> ExecResult:
        calls.append(list(argv))
        reply = queue.pop(0)
        return reply(argv) if callable(reply) else reply

    conn.pool.run = run  # type: ignore[method-assign]
    return conn, calls


def ok(stdout: str = "", stderr: str = "", truncated: bool = False) -> ExecResult:
    return ExecResult(0, stdout, stderr, truncated)


def test_the_reported_case_clears_and_counts_by_cups_spelling() -> None:
    listing = f"{job('bugtest-case-9')}\n{job('bugtest-case-10')}\n"
    conn, calls = scripted(ok(listing), ok(), ok(""))
    result = conn.run("print_queue_clear", {"queue": "BugTest-Case"}, timeout=10)
    assert result == {"queue": "BugTest-Case", "cancelled": 2, "remaining": 0, "changed": True}
    # allow-listed spelling; the C locale is the launcher's, for every command (test_ssh_connector)
    assert calls[0] == ["lpstat", "-o", "bugtest-case"]
    assert calls[1] == ["cancel", "-a", "bugtest-case"]


def test_cups_server_option_is_passed_as_h() -> None:
    conn, calls = scripted(ok(""), cups_server="/run/cups/cups.sock")
    conn.run("print_queue_list", {"queue": "office-1"}, timeout=10)
    assert calls[0] == ["lpstat", "-h", "/run/cups/cups.sock", "-o", "office-1"]


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (ok(f"{job('office-1-1')}\nkeine Einträge\n"), "unexpected line 'keine Einträge'"),
        (ok(job("office-1-1"), stderr="lpstat: some warning"), "lpstat also wrote 'lpstat: some warning'"),
        (ok(job("office-1-1"), truncated=True), "cut off"),
        (ok("office-1-1 root 1\x1b[2J 1 2\n"), "unexpected line"),
    ],
)
def test_a_listing_that_is_not_understood_stops_the_action(reply: ExecResult, words: str) -> None:
    for action in ("print_queue_list", "print_queue_clear"):
        conn, calls = scripted(reply)
        with pytest.raises(Rejected) as info:
            conn.run(action, {"queue": "office-1"}, timeout=10)
        assert info.value.reason == "unexpected_output"
        assert words in str(info.value) and "\x1b" not in str(info.value)
        assert len(calls) == 1, "nothing cancelled on a listing that was not understood"


def test_an_unreadable_listing_after_the_cancel_fails_instead_of_reporting_empty() -> None:
    conn, _ = scripted(ok(job("office-1-1")), ok(), ok("lpstat: Ungültiger Zielname\n"))
    with pytest.raises(Rejected) as info:
        conn.run("print_queue_clear", {"queue": "office-1"}, timeout=10)
    assert info.value.reason == "unexpected_output"


def test_jobs_that_remain_are_counted_and_fail_with_expect_empty() -> None:
    before = f"{job('office-1-1')}\n{job('office-1-2')}\n"
    after = f"{job('office-1-2')}\n{job('office-1-3')}\n"  # one stuck, one new
    conn, _ = scripted(ok(before), ok(), ok(after))
    assert conn.run("print_queue_clear", {"queue": "office-1"}, timeout=10) == {
        "queue": "office-1",
        "cancelled": 1,
        "remaining": 2,
        "changed": True,
    }
    conn, _ = scripted(ok(before), ok(), ok(after))
    with pytest.raises(Rejected) as info:
        conn.run("print_queue_clear", {"queue": "office-1", "expect_empty": True}, timeout=10)
    assert info.value.reason == "jobs_remain" and "1 job(s) cancelled but 2 job(s) still" in str(info.value)


def test_an_empty_queue_is_not_changed_and_nothing_is_cancelled() -> None:
    conn, calls = scripted(ok("no entries\n"))
    assert conn.run("print_queue_clear", {"queue": "office-1"}, timeout=10)["changed"] is False
    assert len(calls) == 1


@pytest.mark.parametrize(
    "stderr", ['lpstat: Invalid destination name in list "nope".', "lpstat: unknown destination nope"]
)
def test_a_missing_queue_is_not_found(stderr: str) -> None:
    """lpstat says so; ``lpstat -r`` says the scheduler runs (it would say the same if it did not)."""
    conn, calls = scripted(ExecResult(1, "", stderr), ExecResult(0, "scheduler is running\n", ""), allowed_queues=None)
    with pytest.raises(NotFound):
        conn.run("print_queue_list", {"queue": "nope"}, timeout=10)
    assert calls[-1][-1] == "-r"


@pytest.mark.parametrize(
    ("answer", "kind", "words"),
    [
        (ExecResult(0, "scheduler is not running\n", ""), Unreachable, "is not running"),
        (ExecResult(1, "", "lpstat: Bad file descriptor"), Rejected, "whether the print server runs is not known"),
    ],
)
def test_invalid_destination_from_a_scheduler_that_is_down_is_not_a_missing_queue(
    answer: ExecResult, kind: type[Exception], words: str
) -> None:
    conn, _ = scripted(ExecResult(1, "", 'lpstat: Invalid destination name in list "office-1".'), answer)
    with pytest.raises(kind) as info:
        conn.run("print_queue_list", {"queue": "office-1"}, timeout=10)
    assert not isinstance(info.value, NotFound) and words in str(info.value)


@pytest.mark.parametrize(
    "value",
    ["office-1 ", "ｏffice-1", "office-1\u200b", "office\u00ad-1", "оffice-1", "\u212aoffice-1", "office-1\n"],
)
def test_look_alikes_of_an_allow_listed_queue_are_refused_before_any_command(value: str) -> None:
    conn, calls = scripted()
    with pytest.raises((InvalidInput, Rejected)):
        conn.run("print_queue_clear", {"queue": value}, timeout=10)
    assert calls == []


def test_a_cancel_that_removed_nothing_reports_no_change() -> None:
    stuck = job("office-1-1")
    conn, _ = scripted(ok(stuck), ok(), ok(stuck))
    assert conn.run("print_queue_clear", {"queue": "office-1"}, timeout=10) == {
        "queue": "office-1",
        "cancelled": 0,
        "remaining": 1,
        "changed": False,
    }


# -- the printer's state: lpstat -p QUEUE -a QUEUE (C locale) ---------------------------------------------------
SINCE = "since Tue Dec  1 05:59:08 2026"


@pytest.mark.parametrize(
    ("out", "state", "accepting", "message", "ready"),
    [
        (f"printer office-1 is idle.  enabled {SINCE}\noffice-1 accepting requests {SINCE}\n", "idle", True, "", True),
        (
            f"printer office-1 now printing office-1-7.  enabled {SINCE}\n\tSending data\n"
            f"office-1 accepting requests {SINCE}\n",
            "printing",
            True,
            "Sending data",
            True,
        ),
        (
            f"printer office-1 disabled {SINCE} -\n\tUnable to open serial port: No such file or directory\n"
            f"office-1 accepting requests {SINCE}\n",
            "stopped",
            True,
            "Unable to open serial port: No such file or directory",
            False,
        ),
        (
            f"printer office-1 disabled {SINCE} -\n\treason unknown\noffice-1 accepting requests {SINCE}\n",
            "stopped",
            True,
            "",
            False,
        ),
        (
            f"printer office-1 is holding new jobs.  enabled {SINCE}\noffice-1 accepting requests {SINCE}\n",
            "holding",
            True,
            "",
            False,
        ),
        (
            f"printer office-1 is idle.  enabled {SINCE}\n\tmoved\n"
            f"office-1 not accepting requests {SINCE} -\n\tmoved\n",
            "idle",
            False,
            "moved",
            False,
        ),
    ],
)
def test_printer_states_are_read(out: str, state: str, accepting: bool, message: str, ready: bool) -> None:
    assert parse_lpstat_printer("OFFICE-1", out) == {
        "state": state,
        "accepting": accepting,
        "message": message,
        "ready": ready,
    }


@pytest.mark.parametrize(
    "out",
    [
        "",  # nothing is not "ready"
        f"printer office-1 is idle.  enabled {SINCE}\n",  # accepting line missing
        f"Drucker office-1 ist deaktiviert seit Tue -\noffice-1 accepting requests {SINCE}\n",  # another locale
        f"printer office-2 is idle.  enabled {SINCE}\noffice-2 accepting requests {SINCE}\n",  # another printer
        f"printer office-1 is idle.  enabled {SINCE}\noffice-1 accepting requests {SINCE}\noffice-1 accepting\n",
        f"\tmessage first\nprinter office-1 is idle.  enabled {SINCE}\noffice-1 accepting requests {SINCE}\n",
        f"printer office-1 is idle.  enabled {SINCE}\x1b[2J\noffice-1 accepting requests {SINCE}\n",
        f"printer office-1 is paused.  enabled {SINCE}\noffice-1 accepting requests {SINCE}\n",
    ],
)
def test_a_printer_state_that_is_not_understood_is_never_ready(out: str) -> None:
    with pytest.raises(ValueError):
        parse_lpstat_printer("office-1", out)
    conn, calls = scripted(ok(out))
    with pytest.raises(Rejected) as info:
        conn.run("printer_status", {"queue": "office-1", "expect_ready": True}, timeout=10)
    assert info.value.reason == "unexpected_output" and "\x1b" not in str(info.value)
    assert calls[0] == ["lpstat", "-p", "office-1", "-a", "office-1"]


def test_a_truncated_or_noisy_printer_state_is_not_ready() -> None:
    good = f"printer office-1 is idle.  enabled {SINCE}\noffice-1 accepting requests {SINCE}\n"
    for reply in (ok(good, truncated=True), ok(good, stderr="lpstat: warning")):
        conn, _ = scripted(reply)
        with pytest.raises(Rejected) as info:
            conn.run("printer_status", {"queue": "office-1", "expect_ready": True}, timeout=10)
        assert info.value.reason == "unexpected_output"
