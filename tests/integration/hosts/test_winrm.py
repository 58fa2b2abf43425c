"""The winrm connector against the WS-Management emulator (lab/winrm_emulator.py), NOT Windows.

The emulator speaks the WinRS protocol pywinrm uses and plays scripted Windows behaviour; it
recognises only the connector's fixed scripts and never evaluates them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.base import AuthFailed, ConnectorError, InvalidInput, NotFound, Rejected, Timeout, Unreachable
from connectors.winrm import WinrmConnector
from tests.integration.hosts.helpers import Emulator, winrm_connector

pytestmark = pytest.mark.integration

TEMP = "C:\\Temp\\FirstlineLab"


def test_print_queue_clear_removes_the_jobs_on_the_server(winrm: WinrmConnector, emulator: Emulator) -> None:
    emulator.seed(printers={"office-win-1": [{}, {}, {"user": "CORP\\bob"}]})
    listed = winrm.run("print_queue_list", {"queue": "office-win-1"}, timeout=15)
    assert listed["count"] == 3 and {j["user"] for j in listed["jobs"]} == {"CORP\\jdoe", "CORP\\bob"}
    result = winrm.run("print_queue_clear", {"queue": "office-win-1"}, timeout=15)
    assert result == {"queue": "office-win-1", "cancelled": 3, "remaining": 0, "changed": True}
    assert emulator.state()["printers"]["office-win-1"] == []


def test_stuck_jobs_go_after_a_spooler_restart(winrm: WinrmConnector, emulator: Emulator) -> None:
    emulator.seed(printers={"office-win-1": [{}, {"stuck": True}]})
    pid_before = emulator.state()["services"]["Spooler"]["pid"]
    first = winrm.run("print_queue_clear", {"queue": "office-win-1"}, timeout=15)
    assert first["cancelled"] == 1 and first["remaining"] == 1
    assert winrm.run("spooler_restart", {}, timeout=30) == {
        "service": "Spooler",
        "running": True,
        "state": "Running",
        "changed": True,
    }
    assert winrm.run("print_queue_clear", {"queue": "office-win-1"}, timeout=15)["remaining"] == 0
    state = emulator.state()
    assert state["printers"]["office-win-1"] == []
    assert state["services"]["Spooler"]["pid"] != pid_before


def test_service_restart_and_status(winrm: WinrmConnector, emulator: Emulator) -> None:
    before = emulator.state()["services"]["W32Time"]["pid"]
    restarted = winrm.run("service_restart", {"service": "W32Time"}, timeout=15)
    assert restarted["running"] is True and restarted["changed"] is True and restarted["was_running"] is True
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
    assert result == {"path": TEMP, "freed_bytes": 4000, "files_removed": 1, "older_than_days": 7, "changed": True}
    again = winrm.run("disk_cleanup", {"path": TEMP}, timeout=30)
    assert again["files_removed"] == 0 and again["changed"] is False
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


# -- TLS: the trust anchor is exercised through the connector, each failure has its own message -----------
def _ca(name: str, *, days: int = 30) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(ca: tuple[Any, Any], names: list[x509.GeneralName], *, expired: bool = False) -> tuple[bytes, bytes]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    start, end = (
        (now - timedelta(days=30), now - timedelta(days=1))
        if expired
        else (now - timedelta(days=1), now + timedelta(days=30))
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fl-test")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _pem(cert: Any) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@contextlib.contextmanager
def _tls_listener(tmp_path: Path, cert_pem: bytes, key_pem: bytes) -> Iterator[int]:
    """A TLS server on loopback presenting *cert_pem*; it only completes (or fails) handshakes."""
    (tmp_path / "srv.crt").write_bytes(cert_pem)
    (tmp_path / "srv.key").write_bytes(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _status_error(conn: WinrmConnector) -> ConnectorError:
    try:
        with pytest.raises(ConnectorError) as info:
            conn.run("service_status", {"service": "Spooler"}, timeout=10)
        return info.value
    finally:
        conn.close()


def test_the_lab_ca_is_the_trust_anchor_and_another_ca_is_not(emulator: Emulator, tmp_path: Path) -> None:
    right = winrm_connector()  # ca_trust: the lab CA
    try:
        assert right.run("service_status", {"service": "Spooler"}, timeout=10)["running"] is True
    finally:
        right.close()
    other = tmp_path / "other-ca.crt"
    other.write_text(_pem(_ca("Some Other CA")[0]))
    for conn in (winrm_connector(ca_trust={"file": str(other)}), winrm_connector(ca_trust=None)):
        err = _status_error(conn)
        assert isinstance(err, AuthFailed) and err.reason == "certificate_untrusted"
        assert "not trusted" in str(err) and "'ca_trust'" in str(err) and str(tmp_path) not in str(err)
    assert emulator.state()["counters"]["shells_created"] == 1, "only the trusted connection got a shell"


def test_a_certificate_for_another_name_is_a_name_mismatch(lab_hosts: None, tmp_path: Path) -> None:
    ca = _ca("Mismatch Test CA")
    (tmp_path / "ca.crt").write_text(_pem(ca[0]))
    cert, key = _leaf(ca, [x509.DNSName("print-win-99.example.org")])
    with _tls_listener(tmp_path, cert, key) as port:
        err = _status_error(
            winrm_connector(endpoint=f"https://127.0.0.1:{port}/wsman", ca_trust={"file": str(tmp_path / "ca.crt")})
        )
    assert isinstance(err, AuthFailed) and err.reason == "certificate_name_mismatch", str(err)
    assert "'endpoint'" in str(err)


def test_an_expired_certificate_is_reported_as_expired(lab_hosts: None, tmp_path: Path) -> None:
    ca = _ca("Expiry Test CA")
    (tmp_path / "ca.crt").write_text(_pem(ca[0]))
    cert, key = _leaf(ca, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], expired=True)
    with _tls_listener(tmp_path, cert, key) as port:
        err = _status_error(
            winrm_connector(endpoint=f"https://127.0.0.1:{port}/wsman", ca_trust={"file": str(tmp_path / "ca.crt")})
        )
    assert isinstance(err, AuthFailed) and err.reason == "certificate_expired", str(err)
    assert "validity period" in str(err)


@pytest.mark.parametrize("case", ["missing", "directory", "not-pem", "not-utf8", "empty"])
def test_an_unusable_ca_trust_is_a_config_error_naming_the_setting(
    emulator: Emulator, tmp_path: Path, case: str
) -> None:
    path = tmp_path / "ca.crt"
    if case == "directory":
        path.mkdir()
    elif case == "not-pem":
        path.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    elif case == "not-utf8":
        path.write_bytes(b"\xff\xfe\x00garbage")
    elif case == "empty":
        path.write_text("")
    err = _status_error(winrm_connector(ca_trust={"file": str(path)}))
    assert err.reason == "config_error" and not err.transient, str(err)
    assert "'ca_trust' of target print-win-01" in str(err) and str(tmp_path) not in str(err)
    assert emulator.state()["counters"]["shells_created"] == 0


# -- names as Windows matches them (issue 7, item 11) ----------------------------------------------------------
@pytest.mark.parametrize("asked", ["OFFICE-WIN-1", "Office-Win-1", "office-win-1"])
def test_a_printer_name_in_another_case_is_the_same_windows_printer(
    winrm: WinrmConnector, emulator: Emulator, asked: str
) -> None:
    emulator.seed(printers={"office-win-1": [{}, {}]})
    assert winrm.run("print_queue_list", {"queue": asked}, timeout=15)["count"] == 2
    result = winrm.run("print_queue_clear", {"queue": asked}, timeout=15)
    assert result["cancelled"] == 2 and result["changed"] is True
    assert emulator.state()["printers"]["office-win-1"] == []
    assert emulator.state()["calls"][-1] == ["print_queue_clear", {"Queue": "office-win-1"}], "allow-listed spelling"


@pytest.mark.parametrize("asked", ["w32time", "W32TIME", "spooler"])
def test_a_windows_service_name_in_another_case_is_allow_listed(
    winrm: WinrmConnector, emulator: Emulator, asked: str
) -> None:
    assert winrm.run("service_status", {"service": asked}, timeout=15)["running"] is True


@pytest.mark.parametrize(
    "value",
    ["office-win-1 ", "ｏffice-win-1", "office-win-1\u200b", "office\u2011win-1", "office-win-1."],
    ids=["trailing-space", "fullwidth", "zero-width", "non-breaking-hyphen", "dot"],
)
def test_look_alike_printer_names_never_reach_windows(winrm: WinrmConnector, emulator: Emulator, value: str) -> None:
    emulator.seed(printers={"office-win-1": [{}]})
    with pytest.raises((InvalidInput, Rejected)):
        winrm.run("print_queue_clear", {"queue": value}, timeout=15)
    state = emulator.state()
    assert state["counters"]["commands"] == 0 and len(state["printers"]["office-win-1"]) == 1


@pytest.mark.parametrize("asked", ["c:\\temp\\firstlinelab", "C:\\TEMP\\FirstlineLab\\", "C:\\Temp\\FirstlineLab/"])
def test_a_windows_cleanup_path_in_another_case_is_the_allow_listed_path(
    winrm: WinrmConnector, emulator: Emulator, asked: str
) -> None:
    emulator.seed(dirs={TEMP: {"files": [{"name": "old.log", "size": 5, "age_days": 30}]}})
    result = winrm.run("disk_cleanup", {"path": asked}, timeout=30)
    assert result["path"] == TEMP and result["files_removed"] == 1


@pytest.mark.parametrize(
    "asked",
    ["C:\\Temp\\FirstlineLab.", "C:\\Temp\\FirstlineLab ", "C:\\Temp\\FIRSTL~1", "C:\\Temp\\Firstline\u200bLab"],
)
def test_windows_path_aliases_are_refused(winrm: WinrmConnector, emulator: Emulator, asked: str) -> None:
    with pytest.raises(Rejected) as info:
        winrm.run("disk_cleanup", {"path": asked}, timeout=30)
    assert info.value.reason == "not_allow_listed"
    assert emulator.state()["counters"]["commands"] == 0
