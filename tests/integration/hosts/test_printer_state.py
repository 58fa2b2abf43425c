"""A cleared queue is not a working printer: the printer state after printer-queue-clear.

CUPS stops a printer whose backend fails under the ``stop-printer`` error policy: the printer
is ``disabled``, its state message is the backend's error, and the job stays queued. Cancelling
the jobs (``cancel -a``) empties the queue but leaves the printer stopped, so every new job
waits again. printer-queue-clear closed such a ticket as "N job(s) cancelled; the queue is
empty" (or "already empty; nothing was cancelled"). It now reads the printer's state last
(``printer_status`` with ``expect_ready``) and escalates a stopped printer - or one holding
new jobs, or not accepting them - with the printer's own message; it never re-enables it.

Reproduced on the lab CUPS with a queue of our own whose device cannot be opened
(``serial:/dev/<nothing>``: the serial backend fails at once with "Unable to open serial port").
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.base import NotFound, Rejected, Unreachable
from connectors.ssh import SshConnector
from runner.api import open_app
from runner.settings import Settings
from tests.integration.hosts.helpers import CUPS_SOCK, REPO, queue_jobs, ssh_connector

pytestmark = pytest.mark.integration


def _cups(*argv: str, data: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CUPS_SERVER=str(CUPS_SOCK), LC_ALL="C")
    return subprocess.run(
        list(argv), input=data.decode() if data else None, env=env, capture_output=True, text=True, timeout=30
    )


def _state_line(queue: str) -> str:
    return _cups("lpstat", "-p", queue).stdout


def _new_queue(device: str) -> str:
    name = f"fl-state-{uuid.uuid4().hex[:8]}"
    proc = _cups("lpadmin", "-p", name, "-E", "-v", device, "-o", "printer-error-policy=stop-printer")
    assert proc.returncode == 0, proc.stderr
    return name


def _remove(queue: str) -> None:
    _cups("cancel", "-a", queue)
    _cups("lpadmin", "-x", queue)


@pytest.fixture
def stopped_queue(lab_hosts: None) -> Iterator[str]:
    """A queue of its own that CUPS stopped after a backend error, with the failed job still queued."""
    queue = _new_queue(f"serial:/dev/fl-no-such-port-{uuid.uuid4().hex[:8]}")
    try:
        proc = _cups("lp", "-d", queue, "-t", "fl-stops-the-printer", data=b"hello\n")
        assert proc.returncode == 0, proc.stderr
        for _ in range(150):
            if " disabled since " in _state_line(queue):
                break
            time.sleep(0.1)
        assert " disabled since " in _state_line(queue), _state_line(queue)
        assert "Unable to open serial port" in _state_line(queue)
        assert len(queue_jobs(queue)) == 1  # the job stays, held by the stopped printer
        yield queue
    finally:
        _remove(queue)


@pytest.fixture
def own_queue(lab_hosts: None) -> Iterator[str]:
    """A working queue of its own (raw, file:///dev/null) for cupsdisable/cupsreject variants."""
    queue = _new_queue("file:///dev/null")
    try:
        yield queue
    finally:
        _remove(queue)


@pytest.fixture
def conn(lab_hosts: None) -> Iterator[SshConnector]:
    c = ssh_connector(allowed_queues=None)
    yield c
    c.close()


def test_a_printer_stopped_by_its_backend_reads_stopped_with_the_backend_message(
    conn: SshConnector, stopped_queue: str
) -> None:
    status = conn.run("printer_status", {"queue": stopped_queue}, timeout=15)
    assert status["state"] == "stopped" and status["ready"] is False
    assert "Unable to open serial port" in status["message"]
    with pytest.raises(Rejected) as info:
        conn.run("printer_status", {"queue": stopped_queue, "expect_ready": True}, timeout=15)
    assert info.value.reason == "printer_stopped"
    assert "is stopped: Unable to open serial port" in str(info.value)


def test_clearing_the_queue_leaves_the_printer_stopped(conn: SshConnector, stopped_queue: str) -> None:
    cleared = conn.run("print_queue_clear", {"queue": stopped_queue, "expect_empty": True}, timeout=30)
    assert cleared["cancelled"] == 1 and queue_jobs(stopped_queue) == []
    status = conn.run("printer_status", {"queue": stopped_queue}, timeout=15)
    assert status["state"] == "stopped" and status["ready"] is False  # CUPS does not restart it


def test_a_working_printer_is_ready(conn: SshConnector, own_queue: str) -> None:
    status = conn.run("printer_status", {"queue": own_queue.upper(), "expect_ready": True}, timeout=15)
    assert status == {"queue": own_queue.upper(), "state": "idle", "accepting": True, "message": "", "ready": True}


@pytest.mark.parametrize(
    ("argv", "state", "accepting", "reason", "words"),
    [
        (["cupsdisable", "-r", "toner change"], "stopped", True, "printer_stopped", "is stopped: toner change"),
        (["cupsdisable", "--hold"], "holding", True, "printer_stopped", "is holding new jobs"),
        (["cupsreject", "-r", "moved away"], "idle", False, "printer_not_accepting", "does not accept new jobs"),
    ],
)
def test_a_printer_that_will_not_print_new_jobs_is_not_ready(
    conn: SshConnector, own_queue: str, argv: list[str], state: str, accepting: bool, reason: str, words: str
) -> None:
    proc = _cups(*argv, own_queue)
    assert proc.returncode == 0, proc.stderr
    status = conn.run("printer_status", {"queue": own_queue}, timeout=15)
    assert (status["state"], status["accepting"], status["ready"]) == (state, accepting, False)
    with pytest.raises(Rejected) as info:
        conn.run("printer_status", {"queue": own_queue, "expect_ready": True}, timeout=15)
    assert info.value.reason == reason and words in str(info.value)


def test_an_unknown_printer_is_not_found(conn: SshConnector) -> None:
    with pytest.raises(NotFound):
        conn.run("printer_status", {"queue": f"fl-none-{uuid.uuid4().hex[:8]}"}, timeout=15)


@pytest.mark.parametrize("action", ["print_queue_list", "print_queue_clear", "printer_status"])
def test_a_print_server_that_is_not_running_is_unreachable_not_a_missing_queue(lab_hosts: None, action: str) -> None:
    """With the CUPS scheduler down, lpstat says "Invalid destination" for every queue: that was
    read as "print queue 'office-1' does not exist", sending second level after a queue no one
    removed. Here the connector asks a scheduler that is not there (nothing listens on port 9)."""
    down = ssh_connector(cups_server="127.0.0.1:9")
    try:
        with pytest.raises(Unreachable) as info:
            down.run(action, {"queue": "office-1"}, timeout=15)
        assert "is not running" in str(info.value) and "nothing was changed" in str(info.value)
    finally:
        down.close()


def _app_offering(lab_settings: Settings, queue: str) -> Any:
    """The lab app with an inventory whose print-01 offers *queue* as the printer choice ``stopped``."""
    text = (REPO / "lab" / "inventory.yaml").read_text().replace("../var/lab/", f"{REPO}/var/lab/")
    inv: dict[str, Any] = yaml.safe_load(text)
    inv["targets"]["print-01"]["allowed_queues"] = [*inv["targets"]["print-01"]["allowed_queues"], queue]
    inv["choices"]["printers"]["stopped"] = {
        "label": "Printer under test",
        "target": "print-01",
        "queue": queue,
        "kind": "cups",
    }
    path: Path = lab_settings.audit_key_file.parent / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv, sort_keys=False))
    return open_app(lab_settings.model_copy(update={"inventory": path}))


def test_the_runbook_escalates_a_printer_that_stays_stopped_after_the_clear(
    stopped_queue: str, lab_settings: Settings
) -> None:
    app = _app_offering(lab_settings, stopped_queue)
    try:
        outcome = app.run("printer-queue-clear", {"printer": "stopped"}, requester="alice", roles={"employee"})
        # before: resolved, "1 job(s) cancelled on Printer under test; the queue is empty."
        assert outcome.state == "escalated", outcome.resolution_note
        assert outcome.reason == "printer_stopped", outcome.message
        assert "is stopped: Unable to open serial port" in outcome.message and "\n" not in outcome.message
        assert queue_jobs(stopped_queue) == []  # the jobs were cancelled, as asked
        ran = {s.step_id: s.status for s in outcome.steps}
        assert ran["clear_cups"] == "ok" and ran["confirm_cups"] == "ok"
        assert ran["printer_cups"] == "failed"
        ticket = app.ticket(outcome.ticket_number)
        assert ticket["state"] == "escalated" and ticket["reason"] == "printer_stopped"
        assert app.verify_audit().ok
    finally:
        app.close()


def test_the_runbook_escalates_a_stopped_printer_with_an_empty_queue(own_queue: str, lab_settings: Settings) -> None:
    assert _cups("cupsdisable", "-r", "jammed", own_queue).returncode == 0
    app = _app_offering(lab_settings, own_queue)
    try:
        outcome = app.run("printer-queue-clear", {"printer": "stopped"}, requester="alice", roles={"employee"})
        # before: resolved, "The queue of Printer under test was already empty; nothing was cancelled."
        assert outcome.state == "escalated", outcome.resolution_note
        assert outcome.reason == "printer_stopped" and "is stopped: jammed" in outcome.message
    finally:
        app.close()


def test_the_runbook_still_resolves_for_a_working_printer(own_queue: str, lab_settings: Settings) -> None:
    assert _cups("lp", "-d", own_queue, "-H", "hold", data=b"hello\n").returncode == 0
    app = _app_offering(lab_settings, own_queue)
    try:
        outcome = app.run("printer-queue-clear", {"printer": "stopped"}, requester="alice", roles={"employee"})
        assert outcome.state == "resolved", outcome.message
        assert outcome.resolution_note == "1 job(s) cancelled on Printer under test; the queue is empty."
        assert {s.step_id: s.status for s in outcome.steps}["printer_cups"] == "ok"
    finally:
        app.close()
