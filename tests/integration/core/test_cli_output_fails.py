"""``firstline run`` whose own output fails: the run still ends its ticket.

A closed pipe (``firstline run ... | head -1``: Rich turns the EPIPE into ``SystemExit(1)``),
a full disk (``> /dev/full``) and a terminal that cannot encode ✓ (``PYTHONIOENCODING=ascii``)
broke the progress display in the middle of the run: the ticket stayed ``running`` or
``queued`` until the sweep (exit 1 or 3), or was escalated ``internal_error`` for a display
problem. The display is now shielded (``runner.recorder.shielded``) and the streams replace
what they cannot encode. As an operator meets it: a subprocess, against the lab's slapd.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runner.api import open_app
from runner.settings import Settings
from tests.integration.conftest import REPO, start_lab

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")


@pytest.fixture(scope="module")
def lab() -> None:
    start_lab("slapd")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")},
        "FIRSTLINE_ENVIRONMENT": "test",
        "FIRSTLINE_DATA_DIR": str(tmp_path / "var"),
        "FIRSTLINE_INVENTORY": str(REPO / "lab" / "inventory.yaml"),
        "FIRSTLINE_RUNBOOKS_DIR": str(REPO / "runbooks"),
        **extra,
    }


def _tickets(tmp_path: Path) -> list[tuple[str, str | None]]:
    app = open_app(Settings(environment="test", data_dir=tmp_path / "var", inventory=REPO / "lab" / "inventory.yaml"))
    try:
        return [(t["state"], t["reason"]) for t in app.list_tickets()]
    finally:
        app.close()


def _run(env: dict[str, str], stdout: int) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [FIRSTLINE, "run", "account-status", "-p", "user=alice"],
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )


def test_a_closed_pipe_does_not_leave_the_ticket_open(lab: None, tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line: every write is EPIPE
    try:
        done = _run(_env(tmp_path), write)
    finally:
        os.close(write)
    assert b"Traceback" not in done.stderr
    assert _tickets(tmp_path) == [("resolved", None)]
    assert done.returncode == 0, done.stderr  # the ticket's outcome: resolved


def test_a_full_disk_for_stdout_does_not_leave_the_ticket_open(lab: None, tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        done = _run(_env(tmp_path), full.fileno())
    assert b"Traceback" not in done.stderr
    assert _tickets(tmp_path) == [("resolved", None)]
    # the run is done; that its report could not be written is said on stderr, exit 3
    assert done.returncode == 3 and b"the output could not be written" in done.stderr, done.stderr


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_a_terminal_without_utf8_gets_question_marks_not_an_escalation(lab: None, tmp_path: Path, lang: str) -> None:
    done = _run(_env(tmp_path, PYTHONIOENCODING="ascii", FIRSTLINE_LANG=lang), subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stdout + done.stderr
    assert b"FL-000001" in done.stdout and b"?" in done.stdout  # the check marks, replaced
    assert _tickets(tmp_path) == [("resolved", None)]


def test_a_log_file_that_cannot_be_written_is_said_once(lab: None, tmp_path: Path) -> None:
    """``FIRSTLINE_LOG_FILE=/dev/full`` (a full disk): ``logging`` printed "--- Logging error
    ---" and a traceback for every record; now one line, and the run goes on as usual."""
    done = _run(_env(tmp_path, FIRSTLINE_LOG_FILE="/dev/full"), subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr and b"Logging error" not in done.stderr
    lines = done.stderr.decode().strip().splitlines()
    assert lines == [
        "warning: the log file /dev/full could not be written (No space left on device); going on without it"
    ]
    assert _tickets(tmp_path) == [("resolved", None)]
