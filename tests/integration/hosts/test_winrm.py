"""The winrm connector against the WS-Management emulator (lab/winrm_emulator.py), NOT Windows.

The emulator speaks the WinRS protocol pywinrm uses and plays scripted Windows behaviour; it
recognises only the connector's fixed scripts and never evaluates them.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from connectors.base import AuthFailed, ConnectorError, InvalidInput, NotFound, Rejected, Timeout, Unreachable
from connectors.winrm import WinrmConnector
from tests.integration.hosts.helpers import VAR, Emulator, winrm_connector

pytestmark = pytest.mark.integration

TEMP = "C:\\Temp\\FirstlineLab"


def test_print_queue_clear_removes_the_jobs_on_the_server(winrm: WinrmConnector, emulator: Emulator) -> None:
    emulator.seed(printers={"office-win-1": [{}, {}, {"user": "CORP\\bob"}]})
    listed = winrm.run("print_queue_list", {"queue": "office-win-1"}, timeout=15)
    assert listed["count"] == 3 and {j["user"] for j in listed["jobs"]} == {"CORP\\jdoe", "CORP\\bob"}
    result = winrm.run("print_queue_clear", {"queue": "office-win-1"}, timeout=15)
    assert result == {"queue": "office-win-1", "cancelled": 3, "remaining": 0}
    assert emulator.state()["printers"]["office-win-1"] == []


def test_stuck_jobs_go_after_a_spooler_restart(winrm: WinrmConnector, emulator: Emulator) -> None:
    emulator.seed(printers={"office-win-1": [{}, {"stuck": True}]})
    pid_before = emulator.state()["services"]["Spooler"]["pid"]
    first = winrm.run("print_queue_clear", {"queue": "office-win-1"}, timeout=15)
    assert first["cancelled"] == 1 and first["remaining"] == 1
    assert winrm.run("spooler_restart", {}, timeout=30) == {"service": "Spooler", "running": True, "state": "Running"}
    assert winrm.run("print_queue_clear", {"queue": "office-win-1"}, timeout=15)["remaining"] == 0
    state = emulator.state()
    assert state["printers"]["office-win-1"] == []
    assert state["services"]["Spooler"]["pid"] != pid_before


def test_service_restart_and_status(winrm: WinrmConnector, emulator: Emulator) -> None:
    before = emulator.state()["services"]["W32Time"]["pid"]
    assert winrm.run("service_restart", {"service": "W32Time"}, timeout=15)["running"] is True
    assert emulator.state()["services"]["W32Time"]["pid"] != before
    assert winrm.run("service_status", {"service": "Spooler", "expect_running": True}, timeout=15)["running"]


def test_powershell_errors_become_clear_messages(emulator: Emulator) -> None:
    conn = winrm_connector(allowed_queues=None, allowed_services=["Nope", "ProtectedSvc"])
    try:
        with pytest.raises(NotFound, match="The specified printer was not found"):
            conn.run("print_queue_list", {"queue": "no-such-printer"}, timeout=15)
        with pytest.raises(NotFound, match="Cannot find any service with service name 'Nope'"):
            conn.run("service_status", {"service": "Nope"}, timeout=15)
        with pytest.raises(Rejected) as info:
            conn.run("service_restart", {"service": "ProtectedSvc"}, timeout=15)
        assert info.value.reason == "access_denied"
        assert "CLIXML" not in str(info.value) and "_x000D_" not in str(info.value)
    finally:
        conn.close()


def test_a_hanging_command_is_terminated_and_its_shell_deleted(winrm: WinrmConnector, emulator: Emulator) -> None:
    conn = winrm_connector(allowed_services=["HangSvc"])
    live_before = emulator.state()["live_shells"]
    try:
        started = time.monotonic()
        with pytest.raises(Timeout) as info:
            conn.run("service_restart", {"service": "HangSvc"}, timeout=2)
        assert time.monotonic() - started < 10
        assert info.value.cleanup_confirmed is True  # type: ignore[attr-defined]
        state = emulator.state()
        assert state["counters"]["terminated_running"] == 1
        assert state["live_shells"] == live_before and state["hanging_commands"] == 0
    finally:
        conn.close()


def test_cancel_signals_the_running_command(emulator: Emulator) -> None:
    conn = winrm_connector(allowed_services=["HangSvc"])
    errors: list[ConnectorError] = []

    def work() -> None:
        try:
            conn.run("service_restart", {"service": "HangSvc"}, timeout=60)
        except ConnectorError as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    for _ in range(100):
        if emulator.state()["hanging_commands"]:
            break
        time.sleep(0.05)
    assert conn.cancel() is True
    thread.join(30)
    assert not thread.is_alive() and len(errors) == 1
    assert errors[0].reason == "cancelled"
    assert errors[0].cleanup_confirmed is True  # type: ignore[attr-defined]
    state = emulator.state()
    assert state["hanging_commands"] == 0 and state["counters"]["terminated_running"] == 1
    conn.close()


def test_disk_cleanup_reports_what_it_freed(winrm: WinrmConnector, emulator: Emulator) -> None:
    files = [
        {"name": "old.log", "size": 4000, "age_days": 30},
        {"name": "new.log", "size": 10, "age_days": 1},
        {"name": "junction", "size": 999, "age_days": 90, "reparse": True},
    ]
    emulator.seed(dirs={TEMP: {"files": files}})
    free_before = winrm.run("disk_usage", {"path": TEMP}, timeout=15)["free_bytes"]
    result = winrm.run("disk_cleanup", {"path": TEMP}, timeout=30)
    assert result == {"path": TEMP, "freed_bytes": 4000, "files_removed": 1, "older_than_days": 7}
    names = {f["name"] for f in emulator.state()["dirs"][TEMP]["files"]}
    assert names == {"new.log", "junction"}
    assert winrm.run("disk_usage", {"path": TEMP}, timeout=15)["free_bytes"] == free_before + 4000


def test_cleanup_of_a_reparse_point_directory_is_refused(emulator: Emulator) -> None:
    conn = winrm_connector(cleanup_paths=["C:\\Temp\\LinkedAway"])
    try:
        with pytest.raises(Rejected) as info:
            conn.run("disk_cleanup", {"path": "C:\\Temp\\LinkedAway"}, timeout=15)
        assert info.value.reason == "path_not_canonical"
    finally:
        conn.close()


def test_hostile_values_never_reach_the_server(winrm: WinrmConnector, emulator: Emulator) -> None:
    for value in ["'; Stop-Computer;'", "$(Stop-Computer)", "`whoami`", "a\r\nStop-Computer", "a\x00b", "x" * 10**7]:
        for action, key in [("print_queue_clear", "queue"), ("service_restart", "service"), ("disk_cleanup", "path")]:
            with pytest.raises((InvalidInput, Rejected)):
                winrm.run(action, {key: value}, timeout=10)
    assert emulator.state()["counters"]["commands"] == 0


def test_a_hostile_value_that_got_past_the_connector_is_still_only_a_parameter(
    winrm: WinrmConnector, emulator: Emulator
) -> None:
    """Defence in depth: sent as data, it fails PowerShell's ValidatePattern and changes nothing."""
    emulator.seed(printers={"office-win-1": [{}]})
    with pytest.raises(Rejected) as info:
        winrm._run_script("print_queue_clear", {"Queue": "'; Stop-Computer;'"}, 10)
    assert info.value.reason == "invalid_argument"
    assert "does not match" in str(info.value)
    state = emulator.state()
    assert len(state["printers"]["office-win-1"]) == 1
    assert state["counters"]["unrecognized_scripts"] == 0


def test_shells_are_pooled(winrm: WinrmConnector, emulator: Emulator) -> None:
    for _ in range(4):
        winrm.run("service_status", {"service": "Spooler"}, timeout=15)
    assert winrm.shells_opened == 1
    assert emulator.state()["counters"]["shells_created"] == 1


def test_a_wrong_password_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    bad = tmp_path / "pw"
    bad.write_text("not-the-password")
    conn = winrm_connector(password={"file": str(bad)})
    with pytest.raises(AuthFailed, match="refused the credentials"):
        conn.run("service_status", {"service": "Spooler"}, timeout=10)


def test_an_untrusted_certificate_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    conn = winrm_connector(ca_trust=None)  # system CAs only: the lab CA is not among them
    with pytest.raises(AuthFailed) as info:
        conn.run("service_status", {"service": "Spooler"}, timeout=10)
    assert info.value.reason == "certificate_invalid"


def test_plain_http_works_only_when_explicitly_allowed(emulator: Emulator) -> None:
    conn = winrm_connector(endpoint="http://127.0.0.1:15985/wsman", allow_insecure_http=True, ca_trust=None)
    try:
        assert conn.run("service_status", {"service": "Spooler"}, timeout=10)["running"]
    finally:
        conn.close()


def test_an_unreachable_endpoint_is_reported(emulator: Emulator) -> None:
    conn = winrm_connector(endpoint="https://127.0.0.1:15999/wsman")
    with pytest.raises(Unreachable, match="cannot reach print-win-01"):
        conn.run("service_status", {"service": "Spooler"}, timeout=10)


def test_the_lab_ca_file_is_the_trust_anchor() -> None:
    assert (VAR / "ca" / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
