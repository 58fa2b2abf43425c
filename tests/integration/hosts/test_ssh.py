"""The ssh connector against the real lab sshd (127.0.0.1:2222) and CUPS print server."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paramiko
import pytest

from connectors.base import AuthFailed, ConnectorError, InvalidInput, NotFound, Rejected, Timeout, Unreachable
from connectors.ssh import SshConnector
from tests.integration.hosts.helpers import (
    SVC_LAB,
    VAR,
    as_svc,
    cancel_all,
    queue_jobs,
    service_pid,
    ssh_connector,
    submit_held,
    svc_processes,
)

pytestmark = pytest.mark.integration


# -- print queues --------------------------------------------------------------------------
def test_print_queue_clear_empties_the_real_cups_queue(ssh: SshConnector) -> None:
    cancel_all("office-2")
    submit_held("office-2", 3)
    assert len(queue_jobs("office-2")) == 3
    listed = ssh.run("print_queue_list", {"queue": "office-2"}, timeout=15)
    assert listed["count"] == 3 and all(j["id"].startswith("office-2-") for j in listed["jobs"])
    result = ssh.run("print_queue_clear", {"queue": "office-2"}, timeout=15)
    assert result == {"queue": "office-2", "cancelled": 3, "remaining": 0, "changed": True}
    assert queue_jobs("office-2") == []


def test_clearing_an_empty_queue_changes_nothing(ssh: SshConnector) -> None:
    cancel_all("office-2")
    assert ssh.run("print_queue_clear", {"queue": "office-2"}, timeout=15) == {
        "queue": "office-2",
        "cancelled": 0,
        "remaining": 0,
        "changed": False,
    }


def test_expect_empty_fails_while_jobs_remain(ssh: SshConnector) -> None:
    cancel_all("office-2")
    submit_held("office-2", 1)
    try:
        with pytest.raises(Rejected) as info:
            ssh.run("print_queue_list", {"queue": "office-2", "expect_empty": True}, timeout=15)
        assert info.value.reason == "jobs_remain"
    finally:
        cancel_all("office-2")


def test_a_queue_the_print_server_does_not_have_is_not_found(lab_hosts: None) -> None:
    conn = ssh_connector(allowed_queues=None)
    try:
        with pytest.raises(NotFound, match="does not exist"):
            conn.run("print_queue_list", {"queue": "no-such-queue"}, timeout=15)
    finally:
        conn.close()


# -- services --------------------------------------------------------------------------------
def test_service_restart_really_restarts_the_daemon(ssh: SshConnector) -> None:
    as_svc(str(SVC_LAB / "bin" / "svcctl"), "start", "labd")
    before = service_pid("labd")
    assert before is not None
    result = ssh.run("service_restart", {"service": "labd"}, timeout=20)
    assert result == {"service": "labd", "running": True, "state": "running", "changed": True, "was_running": True}
    after = service_pid("labd")
    assert after is not None and after != before
    assert "fl-lab-labd" in Path(f"/proc/{after}/cmdline").read_text()
    assert not Path(f"/proc/{before}").exists() or ") Z" in Path(f"/proc/{before}/stat").read_text()


def test_a_daemon_that_dies_right_after_its_restart_is_not_reported_restarted() -> None:
    """The lab's flakyd starts and dies a second later: running when checked at once, so
    without the second look ``restart_settle_seconds`` later the restart was "resolved"."""
    conn = ssh_connector(allowed_services=["flakyd", "labd"], restart_settle_seconds=2.0)
    try:
        with pytest.raises(Rejected) as info:
            conn.run("service_restart", {"service": "flakyd"}, timeout=20)
        assert info.value.reason == "not_running"
        assert "stopped again within 2 s of the restart" in str(info.value)
        assert service_pid("flakyd") is None  # it is indeed gone
        result = conn.run("service_restart", {"service": "labd"}, timeout=20)  # a daemon that stays is fine
        assert result["running"] is True and result["changed"] is True
    finally:
        conn.close()


def test_service_status_reports_a_stopped_service(ssh: SshConnector) -> None:
    as_svc(str(SVC_LAB / "bin" / "svcctl"), "stop", "printd")
    conn = ssh_connector(allowed_services=["printd"])
    try:
        assert conn.run("service_status", {"service": "printd"}, timeout=15) == {
            "service": "printd",
            "running": False,
            "state": "stopped",
        }
        with pytest.raises(Rejected) as info:
            conn.run("service_status", {"service": "printd", "expect_running": True}, timeout=15)
        assert info.value.reason == "not_running"
    finally:
        conn.close()


def test_a_service_unknown_to_the_service_manager_is_not_found(lab_hosts: None) -> None:
    conn = ssh_connector(allowed_services=["ghost"])
    try:
        with pytest.raises(NotFound, match="does not exist"):
            conn.run("service_restart", {"service": "ghost"}, timeout=15)
    finally:
        conn.close()


def test_a_non_zero_exit_gives_one_clear_message(lab_hosts: None) -> None:
    """This host runs no systemd: systemctl exits non-zero, and the message says why in one line."""
    conn = ssh_connector(service_manager="systemd", service_command=None)
    try:
        with pytest.raises(Rejected) as info:
            conn.run("service_status", {"service": "labd"}, timeout=15)
        message = str(info.value)
        assert "reading the state of service 'labd' on print-01 failed (exit " in message
        assert "\n" not in message and len(message) < 500
    finally:
        conn.close()


def _hang_processes() -> list[str]:
    return [p for p in svc_processes() if "sleep 3599" in p or "svcctl restart hangd" in p]


def test_a_hanging_restart_times_out_and_its_remote_process_group_is_killed(ssh: SshConnector) -> None:
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        ssh.run("service_restart", {"service": "hangd"}, timeout=2)
    assert time.monotonic() - started < 10
    assert info.value.cleanup_confirmed is True  # type: ignore[attr-defined]
    assert "cleanup confirmed" in str(info.value)
    assert _hang_processes() == []


def test_cancel_stops_the_remote_work_of_a_running_action(ssh: SshConnector) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            ssh.run("service_restart", {"service": "hangd"}, timeout=60)
        except ConnectorError as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    for _ in range(100):
        if _hang_processes():
            break
        time.sleep(0.05)
    assert _hang_processes(), "the hanging restart never started"
    assert ssh.cancel() is True
    thread.join(15)
    assert not thread.is_alive()
    assert len(errors) == 1 and errors[0].reason == "cancelled"
    assert errors[0].cleanup_confirmed is True  # type: ignore[attr-defined]
    assert _hang_processes() == []


# -- disks -------------------------------------------------------------------------------------
def _make_file(path: Path, size: int, age_days: float) -> None:
    if not path.parent.exists():
        path.parent.mkdir(parents=True)
        shutil.chown(path.parent, "svc-firstline", "svc-firstline")
    path.write_bytes(b"x" * size)
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    shutil.chown(path, "svc-firstline", "svc-firstline")


def test_disk_cleanup_deletes_only_old_files_inside_the_allow_listed_path(ssh: SshConnector) -> None:
    cache, keep = SVC_LAB / "cache", SVC_LAB / "keep"
    tag = uuid.uuid4().hex[:8]
    for leftover in cache.iterdir():
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    _make_file(cache / f"old-{tag}.log", 1000, 30)
    _make_file(cache / "sub" / f"old-{tag}.log", 234, 10)
    _make_file(cache / f"new-{tag}.log", 50, 0)
    victim = keep / f"victim-{tag}.log"
    _make_file(victim, 777, 60)
    (cache / f"link-{tag}").symlink_to(victim)  # a symlink to an old file outside: never followed
    (cache / f"dirlink-{tag}").symlink_to(keep, target_is_directory=True)
    # the disk space the two old files hold (their allocated blocks), not their sizes (1000 + 234)
    freed = sum((p.stat().st_blocks * 512) for p in (cache / f"old-{tag}.log", cache / "sub" / f"old-{tag}.log"))

    result = ssh.run("disk_cleanup", {"path": str(cache)}, timeout=30)

    assert result == {
        "path": str(cache),
        "freed_bytes": freed,
        "files_removed": 2,
        "older_than_days": 7,
        "changed": True,
    }
    again = ssh.run("disk_cleanup", {"path": str(cache)}, timeout=30)
    assert again["files_removed"] == 0 and again["changed"] is False
    assert not (cache / f"old-{tag}.log").exists() and not (cache / "sub" / f"old-{tag}.log").exists()
    assert (cache / f"new-{tag}.log").exists()
    assert victim.exists() and (cache / f"link-{tag}").is_symlink()
    victim.unlink()


def test_cleanup_refuses_an_allow_listed_path_that_became_a_symlink(lab_hosts: None) -> None:
    link = SVC_LAB / "tmp" / f"cache-{uuid.uuid4().hex[:8]}"
    victim = SVC_LAB / "keep" / f"victim-{link.name}.log"
    _make_file(victim, 10, 60)
    link.symlink_to(SVC_LAB / "keep", target_is_directory=True)
    conn = ssh_connector(cleanup_paths=[str(link)])
    try:
        with pytest.raises(Rejected) as info:
            conn.run("disk_cleanup", {"path": str(link)}, timeout=15)
        assert info.value.reason == "path_not_canonical"
        assert victim.exists()
    finally:
        conn.close()
        link.unlink()
        victim.unlink()


def test_disk_usage_reports_the_file_system(ssh: SshConnector) -> None:
    result = ssh.run("disk_usage", {"path": str(SVC_LAB / "cache")}, timeout=15)
    st = os.statvfs(SVC_LAB / "cache")
    assert result["total_bytes"] == st.f_blocks * st.f_frsize
    assert 0 <= result["used_percent"] <= 100


# -- hostile values: nothing executes -------------------------------------------------------
def _hostile(sentinel: Path) -> list[str]:
    return [
        f"x; touch {sentinel}",
        f"$(touch {sentinel})",
        f"`touch {sentinel}`",
        f"'; touch {sentinel}; '",
        f'"; touch {sentinel}; "',
        f"x\ntouch {sentinel}",
        f"x && touch {sentinel}",
        f"x | touch {sentinel}",
    ]


def test_hostile_values_are_refused_and_nothing_runs(ssh: SshConnector, sentinel: Path) -> None:
    for value in [*_hostile(sentinel), "a\x00b", "x" * 10_000_000]:
        for action, key in [
            ("print_queue_clear", "queue"),
            ("service_restart", "service"),
            ("disk_cleanup", "path"),
        ]:
            with pytest.raises((InvalidInput, Rejected)):
                ssh.run(action, {key: value}, timeout=10)
    assert ssh.pool.connects == 0, "refused before any connection"


def test_argv_quoting_delivers_hostile_values_verbatim_to_the_remote_program(ssh: SshConnector, sentinel: Path) -> None:
    """Second line of defence, proved on the real sshd: quoted argv reaches printf as data."""
    for value in _hostile(sentinel):
        res = ssh.pool.run(["printf", "%s", value], timeout=10)
        assert res.exit_status == 0
        assert res.stdout == value


def test_output_is_capped(ssh: SshConnector) -> None:
    res = ssh.pool.run(["head", "-c", "3000000", "/dev/zero"], timeout=20)
    assert res.truncated and len(res.stdout) == ssh.config.max_output_bytes


# -- connections, keys, host keys ---------------------------------------------------------------
def test_the_connection_is_pooled_and_reconnected_when_it_died(ssh: SshConnector) -> None:
    for _ in range(3):
        ssh.run("print_queue_list", {"queue": "office-1"}, timeout=15)
    assert ssh.pool.connects == 1
    transport = ssh.pool.transport()
    sock = transport.sock
    assert isinstance(sock, __import__("socket").socket)
    sock.shutdown(2)  # the server side sees the connection drop
    time.sleep(0.2)
    ssh.run("print_queue_list", {"queue": "office-1"}, timeout=15)
    assert ssh.pool.connects == 2


def test_tcp_nodelay_is_set_on_the_pooled_socket(ssh: SshConnector) -> None:
    import socket

    sock = ssh.pool.transport().sock
    assert isinstance(sock, socket.socket)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_an_unknown_host_key_is_refused(lab_hosts: None, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    conn = ssh_connector(known_hosts=str(empty))
    with pytest.raises(AuthFailed) as info:
        conn.run("print_queue_list", {"queue": "office-1"}, timeout=15)
    assert info.value.reason == "host_key_unknown"
    assert "unknown" in str(info.value)


def test_a_changed_host_key_is_refused_with_a_clear_message(lab_hosts: None, tmp_path: Path) -> None:
    other = paramiko.Ed25519Key.from_private_key_file(str(VAR / "sshd" / "secrets" / "client_key"))
    forged = tmp_path / "known_hosts"
    forged.write_text(f"[127.0.0.1]:2222 {other.get_name()} {other.get_base64()}\n")
    conn = ssh_connector(known_hosts=str(forged))
    with pytest.raises(AuthFailed) as info:
        conn.run("print_queue_list", {"queue": "office-1"}, timeout=15)
    assert info.value.reason == "host_key_changed"
    assert "CHANGED" in str(info.value)


def _wrong_key(tmp_path: Path) -> dict[str, Any]:
    key = paramiko.RSAKey.generate(2048)
    path = tmp_path / "wrong_key"
    key.write_private_key_file(str(path))
    return {"file": str(path)}


def test_a_wrong_key_is_refused(lab_hosts: None, tmp_path: Path) -> None:
    conn = ssh_connector(private_key=_wrong_key(tmp_path))
    with pytest.raises(AuthFailed) as info:
        conn.run("print_queue_list", {"queue": "office-1"}, timeout=15)
    assert info.value.reason == "auth_failed"
    assert "refused the credentials of user svc-firstline" in str(info.value)


def test_password_is_a_fallback_only_when_the_inventory_allows_it(lab_hosts: None, tmp_path: Path) -> None:
    password_ref = {"file": str(VAR / "sshd" / "secrets" / "password")}
    conn = ssh_connector(private_key=_wrong_key(tmp_path), auth="key_or_password", password=password_ref)
    try:
        assert conn.run("print_queue_list", {"queue": "office-1"}, timeout=15)["queue"] == "office-1"
    finally:
        conn.close()


def test_an_unreachable_host_is_reported_as_unreachable(lab_hosts: None) -> None:
    conn = ssh_connector(port=2299, connect_timeout=3)
    with pytest.raises(Unreachable, match="cannot reach print-01"):
        conn.run("print_queue_list", {"queue": "office-1"}, timeout=5)


# -- queue names as CUPS matches them (issue 7, item 11) ---------------------------------------------
@pytest.mark.parametrize(
    ("cups_name", "asked"),
    [
        ("bugtest-case", "BugTest-Case"),  # the reported input: the inventory says BugTest-Case
        ("bugtest-case", "BUGTEST-CASE"),
        ("bugtest-case", "bugtest-case"),
        ("Floor2-Color", "floor2-color"),  # CUPS itself spells the queue in mixed case
        ("Floor2-Color", "FLOOR2-COLOR"),
    ],
)
def test_a_queue_named_in_another_case_is_the_same_cups_queue(ssh: SshConnector, cups_name: str, asked: str) -> None:
    cancel_all(cups_name)
    submit_held(cups_name, 2)
    try:
        listed = ssh.run("print_queue_list", {"queue": asked}, timeout=15)
        assert listed["count"] == 2, "lpstat listed the jobs; a case-sensitive reading saw none"
        assert all(j["id"].startswith(f"{cups_name}-") for j in listed["jobs"])
        result = ssh.run("print_queue_clear", {"queue": asked}, timeout=15)
        assert result == {"queue": asked, "cancelled": 2, "remaining": 0, "changed": True}
        assert queue_jobs(cups_name) == []
    finally:
        cancel_all(cups_name)


@pytest.mark.parametrize(
    "value",
    [
        "office-1 ",
        " office-1",
        "ｏffice-1",
        "office-1\u200b",
        "\u200boffice-1",
        "office\u00ad-1",
        "оffice-1",
        "office-1.",
    ],
    ids=[
        "trailing-space",
        "leading-space",
        "fullwidth",
        "zero-width",
        "zero-width-first",
        "soft-hyphen",
        "cyrillic",
        "dot",
    ],
)
def test_look_alike_queue_names_are_refused_before_anything_runs(ssh: SshConnector, value: str) -> None:
    cancel_all("office-1")
    submit_held("office-1", 1)
    try:
        with pytest.raises((InvalidInput, Rejected)):
            ssh.run("print_queue_clear", {"queue": value}, timeout=15)
        assert ssh.pool.connects == 0
        assert len(queue_jobs("office-1")) == 1
    finally:
        cancel_all("office-1")


def test_an_upper_case_allow_listed_queue_acts_on_the_allow_listed_queue(ssh: SshConnector) -> None:
    cancel_all("office-1")
    submit_held("office-1", 1)
    result = ssh.run("print_queue_clear", {"queue": "OFFICE-1"}, timeout=15)
    assert result["cancelled"] == 1 and result["changed"] is True
    assert queue_jobs("office-1") == []


def test_a_service_name_in_another_case_is_refused_on_linux(ssh: SshConnector) -> None:
    """Service names follow the service manager: init scripts and systemd units are case-sensitive."""
    as_svc(str(SVC_LAB / "bin" / "svcctl"), "start", "labd")
    before = service_pid("labd")
    with pytest.raises(Rejected) as info:
        ssh.run("service_restart", {"service": "LABD"}, timeout=15)
    assert info.value.reason == "not_allow_listed"
    assert service_pid("labd") == before


# -- known_hosts read as OpenSSH reads it (issue 7, item 12), against the real sshd ------------------------
def _lab_host_key() -> str:
    """'ssh-ed25519 AAAA...' of the lab sshd, as lab/sshd.sh wrote it."""
    lines = (VAR / "sshd" / "known_hosts").read_text().splitlines()
    line = next(ln for ln in lines if ln.startswith("[127.0.0.1]:2222 "))
    return line.split(None, 1)[1]


def _other_key() -> str:
    key = paramiko.Ed25519Key.from_private_key_file(str(VAR / "sshd" / "secrets" / "client_key"))
    return f"{key.get_name()} {key.get_base64()}"


def test_the_lab_known_hosts_carries_the_marker_lines(lab_hosts: None) -> None:
    text = (VAR / "sshd" / "known_hosts").read_text()
    assert "\n@cert-authority " in text and "\n@revoked " in text and text.startswith("#")


@pytest.mark.parametrize(
    "variant",
    [
        "ca-first",
        "hashed",
        "wildcard-port",
        "question-mark",
        "list-with-negation",
        "upper-case",
        "revoked-other-key",
        "two-keys",
        "unsupported-type",
    ],
)
def test_known_hosts_variants_that_openssh_accepts_connect(lab_hosts: None, tmp_path: Path, variant: str) -> None:
    key = _lab_host_key()
    hashed = paramiko.HostKeys.hash_host("[127.0.0.1]:2222")
    sk = (
        "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEB"
        "AQEBAQEBAQEBAQEBAAAABHNzaDo="
    )
    text = {
        "ca-first": f"@cert-authority * {_other_key()}\n[127.0.0.1]:2222 {key}\n",
        "hashed": f"# hashed\n{hashed} {key}\n",
        "wildcard-port": f"[127.0.0.*]:2222 {key}\n",
        "question-mark": f"[127.0.0.?]:2222 {key}\n",
        "list-with-negation": f"foo.example.org,!10.0.0.1,[127.0.0.1]:2222 {key}\n",
        "upper-case": f"[127.0.0.1]:2222 {key} COMMENT@HOST\n",
        "revoked-other-key": f"@revoked * {_other_key()}\n[127.0.0.1]:2222 {key}\n",
        "two-keys": f"[127.0.0.1]:2222 {_other_key()}\n[127.0.0.1]:2222 {key}\n",
        "unsupported-type": f"[127.0.0.1]:2222 {sk}\n[127.0.0.1]:2222 {key}\n",
    }[variant]
    path = tmp_path / "known_hosts"
    path.write_text(text)
    conn = ssh_connector(known_hosts=str(path))
    try:
        assert conn.run("print_queue_list", {"queue": "office-1"}, timeout=15)["queue"] == "office-1"
    finally:
        conn.close()


@pytest.mark.parametrize("variant", ["revoked-after", "revoked-before", "revoked-for-another-name", "negated"])
def test_a_revoked_or_excluded_host_key_is_refused_before_any_command(
    lab_hosts: None, tmp_path: Path, variant: str
) -> None:
    key = _lab_host_key()
    text = {
        "revoked-after": f"[127.0.0.1]:2222 {key}\n@revoked [127.0.0.1]:2222 {key}\n",
        "revoked-before": f"@revoked * {key}\n[127.0.0.1]:2222 {key}\n",
        "revoked-for-another-name": f"@revoked print-01.example.org {key}\n[127.0.0.1]:2222 {key}\n",
        "negated": f"*,![127.0.0.1]:2222 {key}\n",
    }[variant]
    path = tmp_path / "known_hosts"
    path.write_text(text)
    conn = ssh_connector(known_hosts=str(path))
    with pytest.raises(AuthFailed) as info:
        conn.run("print_queue_list", {"queue": "office-1"}, timeout=15)
    if variant == "negated":
        assert info.value.reason == "host_key_unknown"
    else:
        assert info.value.reason == "host_key_revoked"
        assert "@revoked" in str(info.value) and "refusing to connect" in str(info.value)
    assert conn.pool.connects == 0


def test_only_a_cert_authority_for_the_host_is_unknown_with_a_hint(lab_hosts: None, tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(f"@cert-authority [127.0.0.1]:2222 {_other_key()}\n")
    conn = ssh_connector(known_hosts=str(path))
    with pytest.raises(AuthFailed) as info:
        conn.run("print_queue_list", {"queue": "office-1"}, timeout=15)
    assert info.value.reason == "host_key_unknown"
    assert "host certificates are not supported" in str(info.value)
