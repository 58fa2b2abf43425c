"""The host runbooks end to end through ``open_app().run``: real CUPS queue, real lab daemon,
WinRM emulator; every run is a ticket with hash-chained audit events."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest

from runner.api import open_app
from runner.errors import ParameterError, PolicyDenied
from runner.service import Firstline
from runner.settings import Settings
from tests.integration.conftest import store_bytes
from tests.integration.hosts.helpers import (
    REPO,
    SVC_LAB,
    VAR,
    Emulator,
    as_svc,
    cancel_all,
    queue_jobs,
    service_pid,
    submit_held,
    svc_processes,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def app(lab_hosts: None, lab_app: Firstline) -> Firstline:
    return lab_app


def audit_actions(app: Firstline, ticket: str) -> list[str]:
    return [e["action"] for e in map(json.loads, app.export_audit("jsonl")) if e.get("ticket") == ticket]


def test_printer_queue_clear_on_cups_empties_the_real_queue(app: Firstline) -> None:
    cancel_all("office-1")
    submit_held("office-1", 3)
    outcome = app.run("printer-queue-clear", {"printer": "office-1"}, requester="alice", roles={"employee"})
    assert outcome.state == "resolved", outcome.message
    assert queue_jobs("office-1") == []
    assert outcome.resolution_note == "3 job(s) cancelled on Office printer 1 (2nd floor); the queue is empty."
    ticket = app.ticket(outcome.ticket_number)
    assert ticket["state"] == "resolved" and ticket["params"] == {"printer": "office-1"}
    ran = {s["step_id"]: s["status"] for s in ticket["steps"]}
    assert ran["list_cups"] == ran["clear_cups"] == ran["confirm_cups"] == "ok"
    assert ran["clear_win"] == "skipped"
    actions = audit_actions(app, outcome.ticket_number)
    assert actions[0] == "ticket.opened" and actions[-1] == "ticket.resolved"
    assert "ssh.print_queue_clear" in actions
    assert app.verify_audit().ok


def test_printer_queue_clear_on_windows_restarts_the_spooler_for_stuck_jobs(app: Firstline) -> None:
    emu = Emulator()
    emu.reset()
    emu.seed(printers={"office-win-1": [{}, {}, {"stuck": True}]})
    outcome = app.run("printer-queue-clear", {"printer": "office-win-1"}, requester="alice", roles={"employee"})
    assert outcome.state == "resolved", outcome.message
    assert emu.state()["printers"]["office-win-1"] == []
    ran = {s.step_id: s.status for s in outcome.steps}
    assert ran["restart_spooler"] == "ok" and ran["clear_win_again"] == "ok" and ran["confirm_win"] == "ok"
    assert "after restarting the print spooler" in (outcome.resolution_note or "")


def test_service_restart_over_ssh_proves_a_real_restart(app: Firstline) -> None:
    as_svc(str(SVC_LAB / "bin" / "svcctl"), "start", "labd")
    before = service_pid("labd")
    outcome = app.run("service-restart", {"service": "lab-daemon"}, requester="agent-1", roles={"agent"})
    assert outcome.state == "resolved", outcome.message
    after = service_pid("labd")
    assert after is not None and after != before


def test_a_stopped_service_is_said_to_be_started_not_restarted(app: Firstline) -> None:
    """A service found stopped was "restarted and is running" (a tester's find): the ticket
    said nothing of it having been down. The restart reads the state first (was_running)."""
    as_svc(str(SVC_LAB / "bin" / "svcctl"), "stop", "labd")
    outcome = app.run("service-restart", {"service": "lab-daemon"}, requester="agent-1", roles={"agent"})
    assert outcome.state == "resolved", outcome.message
    assert outcome.resolution_note == "Lab application daemon was not running; it was started and is running now."
    restart = next(s for s in outcome.steps if s.step_id == "restart_linux")
    assert restart.outputs["was_running"] is False and service_pid("labd") is not None
    again = app.run("service-restart", {"service": "lab-daemon"}, requester="agent-1", roles={"agent"})
    assert again.resolution_note == "Lab application daemon was restarted and is running."
    emu = Emulator()
    emu.reset()
    emu.seed(services={"W32Time": {"state": "Stopped"}})
    win = app.run("service-restart", {"service": "win-time"}, requester="agent-1", roles={"agent"})
    assert win.state == "resolved", win.message
    assert win.resolution_note == "Windows Time (print server) was not running; it was started and is running now."
    assert emu.state()["services"]["W32Time"]["state"] == "Running"


def test_service_restart_over_winrm(app: Firstline) -> None:
    emu = Emulator()
    emu.reset()
    before = emu.state()["services"]["W32Time"]["pid"]
    outcome = app.run("service-restart", {"service": "win-time"}, requester="agent-1", roles={"agent"})
    assert outcome.state == "resolved", outcome.message
    assert emu.state()["services"]["W32Time"]["pid"] != before


def test_a_hanging_restart_escalates_with_the_cleanup_result(app: Firstline) -> None:
    """The step's 30 s timeout passes; the remote process group is killed and that is on the ticket."""
    outcome = app.run("service-restart", {"service": "lab-hang"}, requester="agent-1", roles={"agent"})
    assert outcome.state == "escalated"
    assert outcome.reason == "timeout"
    assert "cleanup confirmed" in outcome.message
    assert not [p for p in svc_processes() if "sleep 3599" in p]
    ticket = app.ticket(outcome.ticket_number)
    assert ticket["state"] == "escalated" and ticket["assignment_group"] == "service-desk-l2"


def test_disk_cleanup_reports_the_space_freed(app: Firstline) -> None:
    name = SVC_LAB / "cache" / f"old-{uuid.uuid4().hex[:8]}.bin"
    name.write_bytes(b"z" * 4096)
    os.chown(name, *_svc_ids())
    stamp = time.time() - 40 * 86400
    os.utime(name, (stamp, stamp))
    outcome = app.run("disk-cleanup", {"location": "app-cache"}, requester="agent-1", roles={"agent"})
    assert outcome.state == "resolved", outcome.message
    assert not name.exists()
    clean = next(s for s in outcome.steps if s.step_id == "clean_linux")
    assert clean.outputs["freed_bytes"] >= 4096 and clean.outputs["files_removed"] >= 1
    assert "bytes freed" in (outcome.resolution_note or "")


def _svc_ids() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("svc-firstline")
    return pw.pw_uid, pw.pw_gid


def test_a_printer_not_in_the_inventory_is_refused(app: Firstline, sentinel: Path) -> None:
    for value in ["print-02", f"office-1; touch {sentinel}", f"$(touch {sentinel})", "office-1\n", "x" * 10_000_000]:
        with pytest.raises(ParameterError, match="printer"):
            app.run("printer-queue-clear", {"printer": value}, requester="alice", roles={"employee"})


def test_employees_cannot_restart_services(app: Firstline) -> None:
    with pytest.raises(PolicyDenied):
        app.run("service-restart", {"service": "lab-daemon"}, requester="alice", roles={"employee"})


def test_no_host_credential_reaches_any_store(app: Firstline) -> None:
    cancel_all("office-1")
    submit_held("office-1", 1)
    app.run("printer-queue-clear", {"printer": "office-1"}, requester="alice", roles={"employee"})
    app.run("service-restart", {"service": "win-time"}, requester="agent-1", roles={"agent"})
    blob = store_bytes(app)
    key_body = "".join((VAR / "sshd" / "secrets" / "client_key").read_text().splitlines()[1:3])
    for secret in [
        (VAR / "sshd" / "secrets" / "password").read_text().strip(),
        (VAR / "winrm" / "secrets" / "password").read_text().strip(),
        key_body,
    ]:
        assert secret.encode() not in blob


def _app_with(tmp_path: Path, lab_settings: Settings, edit: Callable[[str], str]) -> Firstline:
    """The lab inventory with print-01 changed by *edit* (secret paths made absolute)."""
    text = (REPO / "lab" / "inventory.yaml").read_text().replace("../var/lab/", f"{VAR}/")
    inv = tmp_path / "inventory.yaml"
    inv.write_text(edit(text))
    return open_app(lab_settings.model_copy(update={"inventory": inv}))


def _forged_known_hosts(tmp_path: Path) -> str:
    other = paramiko.Ed25519Key.from_private_key_file(str(VAR / "sshd" / "secrets" / "client_key"))
    path = tmp_path / "known_hosts"
    path.write_text(f"[127.0.0.1]:2222 {other.get_name()} {other.get_base64()}\n")
    return str(path)


@pytest.mark.parametrize(
    ("case", "reason", "words"),
    [
        ("unreachable", "unreachable", "cannot reach print-01"),
        ("changed_host_key", "host_key_changed", "CHANGED"),
        ("wrong_key", "auth_failed", "refused the credentials"),
        ("non_zero_exit", "rejected", "failed (exit"),
    ],
)
def test_host_failures_escalate_the_ticket_with_one_clear_reason(
    lab_hosts: None, lab_settings: Settings, tmp_path: Path, case: str, reason: str, words: str
) -> None:
    def edit(text: str) -> str:
        if case == "unreachable":
            return text.replace("    port: 2222\n", "    port: 2299\n", 1)
        if case == "changed_host_key":
            return text.replace(
                f"known_hosts: {{file: {VAR}/sshd/known_hosts}}", f"known_hosts: {_forged_known_hosts(tmp_path)}"
            )
        if case == "wrong_key":
            key = tmp_path / "wrong_key"
            paramiko.RSAKey.generate(2048).write_private_key_file(str(key))
            return text.replace(f"{VAR}/sshd/secrets/client_key", str(key))
        return text.replace("    service_manager: script ", "    service_manager: sysv ", 1).replace(
            "    service_command: [/home/svc-firstline/lab/bin/svcctl]\n", "", 1
        )

    app = _app_with(tmp_path, lab_settings, edit)
    try:
        if case == "non_zero_exit":
            outcome = app.run("service-restart", {"service": "lab-daemon"}, requester="agent-1", roles={"agent"})
        else:
            outcome = app.run("printer-queue-clear", {"printer": "office-1"}, requester="alice", roles={"employee"})
        assert outcome.state == "escalated"
        assert outcome.reason == reason, outcome.message
        assert words in outcome.message and "\n" not in outcome.message
        ticket = app.ticket(outcome.ticket_number)
        assert ticket["state"] == "escalated" and ticket["reason"] == reason
        assert audit_actions(app, outcome.ticket_number)[-1] == "ticket.escalated"
    finally:
        app.close()


# -- issue 7, item 11: queue names as CUPS / Windows match them, end to end --------------------------------
def test_the_reported_case_bugtest_case_is_cleared_and_only_then_resolved(app: Firstline) -> None:
    """Inventory queue BugTest-Case, CUPS queue bugtest-case with two held jobs."""
    cancel_all("bugtest-case")
    submit_held("bugtest-case", 2)
    try:
        outcome = app.run("printer-queue-clear", {"printer": "bugtest"}, requester="alice", roles={"employee"})
        assert outcome.state == "resolved", outcome.message
        assert queue_jobs("bugtest-case") == [], "the jobs really left the queue"
        assert (outcome.resolution_note or "").startswith("2 job(s) cancelled on Bug test printer (case)")
        steps = {s.step_id: s for s in outcome.steps}
        assert steps["list_cups"].outputs["count"] == 2
        assert steps["clear_cups"].status == "ok" and steps["clear_cups"].outputs["changed"] is True
        assert steps["confirm_cups"].outputs["count"] == 0
    finally:
        cancel_all("bugtest-case")


def test_a_cups_queue_spelled_in_mixed_case_by_cups_is_cleared(app: Firstline) -> None:
    cancel_all("Floor2-Color")
    submit_held("Floor2-Color", 1)
    outcome = app.run("printer-queue-clear", {"printer": "floor2-color"}, requester="alice", roles={"employee"})
    assert outcome.state == "resolved", outcome.message
    assert queue_jobs("Floor2-Color") == []


def test_an_upper_case_windows_printer_name_is_the_same_printer(app: Firstline) -> None:
    emu = Emulator()
    emu.reset()
    emu.seed(printers={"office-win-1": [{}, {}]})
    outcome = app.run("printer-queue-clear", {"printer": "office-win-1-upper"}, requester="alice", roles={"employee"})
    assert outcome.state == "resolved", outcome.message
    assert emu.state()["printers"]["office-win-1"] == []
    assert (outcome.resolution_note or "").startswith("2 job(s) removed")


def test_clearing_an_empty_queue_reports_no_change(app: Firstline) -> None:
    cancel_all("bugtest-case")
    outcome = app.run("printer-queue-clear", {"printer": "bugtest"}, requester="alice", roles={"employee"})
    assert outcome.state == "resolved", outcome.message
    ran = {s.step_id: s.status for s in outcome.steps}
    assert ran["clear_cups"] == "skipped" and ran["confirm_cups"] == "ok"
    assert outcome.resolution_note == "The queue of Bug test printer (case) was already empty; nothing was cancelled."


def test_host_actions_report_changed_to_the_ticket(app: Firstline) -> None:
    name = SVC_LAB / "cache" / f"old-{uuid.uuid4().hex[:8]}.bin"
    name.write_bytes(b"z" * 10)
    os.chown(name, *_svc_ids())
    stamp = time.time() - 40 * 86400
    os.utime(name, (stamp, stamp))
    first = app.run("disk-cleanup", {"location": "app-cache"}, requester="agent-1", roles={"agent"})
    second = app.run("disk-cleanup", {"location": "app-cache"}, requester="agent-1", roles={"agent"})
    clean1 = next(s for s in first.steps if s.step_id == "clean_linux")
    clean2 = next(s for s in second.steps if s.step_id == "clean_linux")
    assert clean1.outputs["changed"] is True and clean2.outputs["changed"] is False
    restart = app.run("service-restart", {"service": "win-time"}, requester="agent-1", roles={"agent"})
    assert next(s for s in restart.steps if s.step_id == "restart_win").outputs["changed"] is True


# -- issue 7, item 12: known_hosts read as OpenSSH reads it, end to end ------------------------------------
def _lab_host_key() -> str:
    lines = (VAR / "sshd" / "known_hosts").read_text().splitlines()
    return next(ln for ln in lines if ln.startswith("[127.0.0.1]:2222 ")).split(None, 1)[1]


def _with_known_hosts(tmp_path: Path, lab_settings: Settings, content: str | bytes | None) -> Firstline:
    path = tmp_path / "kh" / "known_hosts"
    path.parent.mkdir()
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    return _app_with(
        tmp_path,
        lab_settings,
        lambda text: text.replace(f"known_hosts: {{file: {VAR}/sshd/known_hosts}}", f"known_hosts: {path}"),
    )


def test_the_runbook_works_with_a_cert_authority_line_in_known_hosts(
    lab_hosts: None, lab_settings: Settings, tmp_path: Path
) -> None:
    ca = paramiko.Ed25519Key.from_private_key_file(str(VAR / "sshd" / "host_ca_key"))
    content = f"@cert-authority *.example.org,[127.0.0.1]:2222 {ca.get_name()} {ca.get_base64()}\n"
    content += f"[127.0.0.1]:2222 {_lab_host_key()}\n"
    app = _with_known_hosts(tmp_path, lab_settings, content)
    cancel_all("office-1")
    submit_held("office-1", 2)
    try:
        outcome = app.run("printer-queue-clear", {"printer": "office-1"}, requester="alice", roles={"employee"})
        assert outcome.state == "resolved", outcome.message
        assert queue_jobs("office-1") == []
    finally:
        app.close()
        cancel_all("office-1")


def test_a_revoked_host_key_escalates_and_nothing_runs(lab_hosts: None, lab_settings: Settings, tmp_path: Path) -> None:
    key = _lab_host_key()
    app = _with_known_hosts(tmp_path, lab_settings, f"[127.0.0.1]:2222 {key}\n@revoked * {key}\n")
    cancel_all("office-1")
    submit_held("office-1", 2)
    try:
        outcome = app.run("printer-queue-clear", {"printer": "office-1"}, requester="alice", roles={"employee"})
        assert outcome.state == "escalated"
        assert outcome.reason == "host_key_revoked", outcome.message
        assert "@revoked" in outcome.message and "\n" not in outcome.message
        assert len(queue_jobs("office-1")) == 2, "nothing ran on the host"
        ran = {s.step_id: s.status for s in outcome.steps}
        assert ran.get("clear_cups") in (None, "skipped")
        ticket = app.ticket(outcome.ticket_number)
        assert ticket["state"] == "escalated" and ticket["reason"] == "host_key_revoked"
    finally:
        app.close()
        cancel_all("office-1")


@pytest.mark.parametrize(
    "case",
    ["missing", "directory", "not-utf8", "cert-authority-without-key", "bad-base64", "unknown-marker"],
)
def test_an_unusable_known_hosts_is_a_config_error_naming_the_setting(
    lab_hosts: None, lab_settings: Settings, tmp_path: Path, case: str
) -> None:
    key = _lab_host_key()
    content: str | bytes | None = {
        "missing": None,
        "directory": None,
        "not-utf8": b"# caf\xe9\n" + f"[127.0.0.1]:2222 {key}\n".encode(),
        "cert-authority-without-key": f"@cert-authority *.example.org\n[127.0.0.1]:2222 {key}\n",
        "bad-base64": f"[127.0.0.1]:2222 ssh-ed25519 AAAA%%%%\n[127.0.0.1]:2222 {key}\n",
        "unknown-marker": f"@trusted * {key}\n[127.0.0.1]:2222 {key}\n",
    }[case]
    app = _with_known_hosts(tmp_path, lab_settings, content)
    if case == "directory":
        (tmp_path / "kh" / "known_hosts").mkdir()
    cancel_all("office-1")
    submit_held("office-1", 1)
    try:
        outcome = app.run("printer-queue-clear", {"printer": "office-1"}, requester="alice", roles={"employee"})
        assert outcome.state == "escalated"
        assert outcome.reason == "config_error", outcome.message
        assert "known_hosts" in outcome.message and "print-01" in outcome.message
        assert str(tmp_path) not in outcome.message
        assert len(queue_jobs("office-1")) == 1
        assert app.ticket(outcome.ticket_number)["reason"] == "config_error"
    finally:
        app.close()
        cancel_all("office-1")
