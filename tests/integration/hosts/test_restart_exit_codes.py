"""On the lab sshd: a restart the service manager refuses by its exit status is a plain failure.

The lab's svcctl (lab/hosts_lab.sh) answers as LSB init scripts and systemctl do: a restart of a
service that does not exist exits 5 ("not installed"; ``systemctl restart`` of a missing unit
too), a restart refused to this user exits 4 ("insufficient privilege", service ``lockedd``,
with a message that names no permission). Neither did anything: ``not_found`` and
``access_denied``, never outcome unknown. (Before, exit 4 was "unknown service" and exit 5 an
outcome-unknown failure.)
"""

from __future__ import annotations

import pytest

from connectors.base import ConnectorError, NotFound
from tests.integration.hosts.helpers import service_pid, ssh_connector


def test_restart_of_a_service_that_does_not_exist_is_not_found(lab_hosts: None) -> None:
    conn = ssh_connector(allowed_services=["ghost"])
    try:
        with pytest.raises(NotFound) as info:
            conn.run("service_restart", {"service": "ghost"}, timeout=20)
        with pytest.raises(NotFound):  # status: exit 4, as systemctl status of a missing unit
            conn.run("service_status", {"service": "ghost"}, timeout=20)
    finally:
        conn.close()
    assert info.value.outcome_unknown is False
    assert "exit 5" in str(info.value) and "nothing was restarted" in str(info.value)


def test_restart_refused_by_the_manager_is_access_denied(lab_hosts: None) -> None:
    conn = ssh_connector(allowed_services=["lockedd"])
    try:
        with pytest.raises(ConnectorError) as info:
            conn.run("service_restart", {"service": "lockedd"}, timeout=20)
        status = conn.run("service_status", {"service": "lockedd"}, timeout=20)
    finally:
        conn.close()
    assert (info.value.reason, info.value.outcome_unknown) == ("access_denied", False), info.value
    assert "reserved to its operators" in str(info.value)
    assert status["running"] is False and service_pid("lockedd") is None


def test_restart_that_sudo_refuses_is_access_denied(lab_hosts: None) -> None:
    """The lab's real sudo (lab/sshd.sh installs it; no sudoers rule for the user): with ``sudo -n``
    it refuses with "sudo: a password is required", exit 1, and runs nothing - before, exit 1 with
    that message was a restart that may have stopped the service (outcome unknown)."""
    before = service_pid("labd")
    conn = ssh_connector(sudo=True)
    try:
        with pytest.raises(ConnectorError) as info:
            conn.run("service_restart", {"service": "labd"}, timeout=20)
    finally:
        conn.close()
    assert (info.value.reason, info.value.outcome_unknown) == ("access_denied", False), info.value
    assert "sudo: a password is required" in str(info.value)
    assert service_pid("labd") == before
