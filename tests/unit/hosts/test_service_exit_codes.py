"""A failed restart is classified by the service manager's documented exit status.

systemctl(1) uses the LSB exit codes; for ``restart`` it maps the manager's refusal of the job
request: 3 not applicable/not supported, 4 no permission, 5 no such unit, 6 the unit failed to
load - nothing was queued, nothing done. ``systemctl restart`` of a unit that does not exist
exits 5, which was read as a restart that may have changed something (outcome unknown) rather
than "no such service". LSB init scripts (LSB Core, init script actions) exit 2 invalid
arguments, 3 unimplemented, 4 insufficient privilege, 5 not installed before acting; exit 4 of
a script's restart was reported as "unknown service". Everything else (1, a failed job, 6/7
from a script, signals) may follow a stop and stays outcome unknown.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import ConnectorError, NotFound
from connectors.ssh import SshConnector, SshTargetConfig
from connectors.ssh_exec import ExecResult

CFG: dict[str, Any] = {
    "connector": "ssh",
    "address": "192.0.2.1",  # TEST-NET: never contacted
    "username": "svc-firstline",
    "private_key": {"env": "UNUSED"},
    "known_hosts": {"env": "UNUSED"},
    "allowed_services": ["labd"],
}
SCRIPT = {"service_manager": "script", "service_command": ["/opt/svcctl"]}


def restart(reply: ExecResult, **over: Any) -> ConnectorError:
    conn = SshConnector("app-01", SshTargetConfig.model_validate({**CFG, **over}), lambda ref: "unused")
    calls: list[list[str]] = []

    def run(argv: list[str], *, timeout: float, max_output: int | None = None) -> ExecResult:
        calls.append(list(argv))
        return reply

    conn.pool.run = run  # type: ignore[method-assign,assignment]
    with pytest.raises(ConnectorError) as info:
        conn.run("service_restart", {"service": "labd"}, timeout=10)
    # the state read before the restart (was_running: it decides nothing when it fails), then
    # the restart itself, and no state read after a restart that failed
    assert len(calls) == 2 and "restart" in calls[-1] and "restart" not in calls[0], calls
    return info.value


def failed(status: int, stderr: str) -> ExecResult:
    return ExecResult(status, "", stderr)


@pytest.mark.parametrize(
    ("status", "stderr", "reason", "unknown"),
    [
        (5, "Failed to restart labd.service: Unit labd.service not found.", "not_found", False),
        (4, "Failed to restart labd.service: Access denied", "access_denied", False),
        (
            4,
            "Failed to restart labd.service: Operation refused, unit labd.service may be requested by "
            "dependency only (it is configured to refuse manual start/stop).",
            "access_denied",
            False,
        ),
        (
            3,
            "Failed to restart labd.service: Job type restart is not applicable for unit labd.service.",
            "rejected",
            False,
        ),
        (6, "Failed to restart labd.service: Unit labd.service has a bad unit file setting.", "rejected", False),
        (
            1,
            "Job for labd.service failed because the control process exited with error code.",
            "rejected",
            True,
        ),
        (2, "systemctl: something else", "rejected", True),  # not a code systemctl documents for restart
        (143, "", "rejected", True),  # killed
    ],
)
def test_systemctl_restart_exit_status(status: int, stderr: str, reason: str, unknown: bool) -> None:
    error = restart(failed(status, stderr))
    assert (error.reason, error.outcome_unknown) == (reason, unknown), error
    if status == 5:
        assert isinstance(error, NotFound) and "does not exist" in str(error)


@pytest.mark.parametrize(
    ("status", "reason", "unknown"),
    [
        (5, "not_found", False),  # program is not installed
        (4, "access_denied", False),  # user had insufficient privilege (was: "unknown service")
        (3, "rejected", False),  # unimplemented feature
        (2, "rejected", False),  # invalid or excess argument(s)
        (1, "rejected", True),  # generic or unspecified error: may have stopped it
        (6, "rejected", True),  # not configured: a script may say so after its stop
        (7, "rejected", True),  # not running
    ],
)
def test_lsb_script_restart_exit_status(status: int, reason: str, unknown: bool) -> None:
    for manager in (SCRIPT, {"service_manager": "sysv"}):
        error = restart(failed(status, "labd: it did not work"), **manager)
        assert (error.reason, error.outcome_unknown) == (reason, unknown), (manager, error)


def test_a_refusal_in_the_text_stays_access_denied_whatever_the_status() -> None:
    error = restart(failed(1, "/opt/svcctl: line 3: /run/labd.pid: Permission denied"), **SCRIPT)
    assert (error.reason, error.outcome_unknown) == ("access_denied", False)


@pytest.mark.parametrize(
    "stderr",
    [
        "sudo: a password is required",
        "sudo: a terminal is required to read the password; either use the -S option to read from standard "
        "input or configure an askpass helper",
        "Sorry, user svc-firstline is not allowed to execute '/usr/bin/systemctl restart -- labd' as root on app-01.",
        "Sorry, user svc-firstline may not run sudo on app-01.",
        "svc-firstline is not in the sudoers file.",
    ],
)
def test_sudo_refusals_are_access_denied_and_changed_nothing(stderr: str) -> None:
    error = restart(failed(1, stderr), sudo=True)
    assert (error.reason, error.outcome_unknown) == ("access_denied", False), error
    # without sudo configured, such a line is the service's own output: not read as sudo's
    assert restart(failed(1, stderr)).outcome_unknown is True


def test_sysv_unrecognized_service_is_not_found_not_stopped() -> None:
    """Debian's ``service`` (init-system-helpers) without systemd, for a name with no init script,
    as seen on the lab machine: stderr "ghost: unrecognized service", exit 1. It was read as
    "stopped" (status) and as a restart that may have stopped the service (outcome unknown).
    (On the lab sshd itself ``service`` is not found: /usr/sbin is not on the user's PATH.)"""
    answer = failed(1, "labd: unrecognized service\n")
    error = restart(answer, service_manager="sysv")
    assert isinstance(error, NotFound) and error.outcome_unknown is False
    conn = SshConnector("app-01", SshTargetConfig.model_validate({**CFG, "service_manager": "sysv"}), lambda ref: "")
    conn.pool.run = lambda argv, **kw: answer  # type: ignore[method-assign,assignment]
    with pytest.raises(NotFound):
        conn.run("service_status", {"service": "labd"}, timeout=10)
    # an init script's own exit 1 for status is still "not running"
    conn.pool.run = lambda argv, **kw: failed(1, "labd is dead but its pid file exists")  # type: ignore[method-assign,assignment]
    assert conn.run("service_status", {"service": "labd"}, timeout=10)["running"] is False
