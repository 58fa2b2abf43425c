"""Host-connector checks that no other test would miss (issue 7, "tests that must be able to fail").

Each test here was written for a check that could be deleted with the whole suite still
green (found by mutating the check, see ``docs/testing.md``).
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import Rejected
from connectors.known_hosts import KnownHosts, KnownHostsError
from connectors.ssh_exec import ExecResult
from tests.unit.hosts.test_known_hosts import ECDSA, HOST, text
from tests.unit.hosts.test_ssh_connector import make
from tests.unit.hosts.test_winrm_connector import BASE as BASE_WINRM
from tests.unit.hosts.test_winrm_connector import make as make_winrm


@pytest.mark.parametrize(
    ("pattern", "address", "port"),
    [
        ("10.0.0.1", "10.0.0.12", 22),  # a name that only starts like the listed one
        ("[10.0.0.1]:2222", "10.0.0.1", 22222),  # [host]:port compared whole, port included
        ("db", "db.example.org", 22),
        ("web?", "web10", 22),  # ? is exactly one character
    ],
)
def test_a_known_hosts_pattern_must_match_the_whole_host_name(pattern: str, address: str, port: int) -> None:
    """OpenSSH matches the whole name: the key of 10.0.0.1 says nothing about 10.0.0.12."""
    assert KnownHosts.parse(f"{pattern} {text(HOST)}\n").for_host(address, port).verdict(HOST) == "unknown"


def test_a_key_whose_data_is_of_another_type_than_the_line_says_is_refused() -> None:
    """``ssh-ed25519 <ecdsa key data>`` is a corrupt line, not a trusted key."""
    line = f"[127.0.0.1]:2222 ssh-ed25519 {ECDSA.get_base64()}\n"
    with pytest.raises(KnownHostsError, match="line 1: the key data is not a ssh-ed25519 key"):
        KnownHosts.parse(line)


@pytest.mark.parametrize(
    ("manager", "status"),
    [
        ("systemd", ExecResult(0, "LoadState=loaded\nActiveState=failed\nSubState=failed\n", "")),
        ("systemd", ExecResult(0, "LoadState=loaded\nActiveState=activating\nSubState=auto-restart\n", "")),
        ("sysv", ExecResult(3, "", "labd is not running")),
    ],
)
def test_a_restart_is_a_success_only_when_the_service_runs_afterwards(manager: str, status: ExecResult) -> None:
    """``systemctl restart`` answers 0 for a unit that dies at once: the state read after the
    restart decides, and a service that does not run fails the step (``not_running``)."""
    conn = make(service_manager=manager)
    seen: list[list[str]] = []

    def remote(argv: list[str], deadline: float, **_: Any) -> ExecResult:
        seen.append(argv)
        return ExecResult(0, "", "") if "restart" in argv else status

    conn._exec = remote  # type: ignore[method-assign]
    with pytest.raises(Rejected) as err:
        conn.run("service_restart", {"service": "labd"}, timeout=10)
    assert err.value.reason == "not_running"
    # read (was_running), restarted, then read back
    assert len(seen) == 3 and "restart" in seen[1] and "restart" not in seen[0] + seen[2]


@pytest.mark.parametrize("state", [{"running": False, "state": "Stopped"}, {"running": False, "state": "StartPending"}])
def test_a_windows_restart_is_a_success_only_when_the_service_runs_afterwards(state: dict[str, Any]) -> None:
    """Restart-Service returned, but Get-Service afterwards says the service does not run."""
    conn = make_winrm()
    ran: list[str] = []

    def script(action: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        ran.append(action)
        return {"service": params["Service"], **state}

    conn._run_script = script  # type: ignore[method-assign]
    service = BASE_WINRM["allowed_services"][0]
    with pytest.raises(Rejected) as err:
        conn.run("service_restart", {"service": service}, timeout=10)
    assert err.value.reason == "not_running" and ran == ["service_restart"]
