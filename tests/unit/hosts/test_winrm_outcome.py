"""WinRM: a change that ran and then failed is outcome unknown, never "nothing was applied".

``Restart-Service`` stops and starts the service; when the state read after it (at once or
``restart_settle_seconds`` later) says it does not run, or is not understood, or the script
failed after stopping it, the audit recorded ``failure`` (nothing applied). The same for a
clean-up whose walk stopped at a file it could not remove after removing others, and a queue
clear whose script failed after the removals. Only errors that come before any change ("no
such service / printer", "not allowed", "not a plain directory") and errors before the
script ran (no connection) stay plain failures.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import ConnectorError, NotFound, Rejected, Unreachable
from connectors.winrm import _ran
from tests.unit.hosts.test_winrm_connector import make


def answering(*answers: Any, **over: Any) -> tuple[Any, list[str]]:
    conn = make(**{"restart_settle_seconds": 0.01, **over})
    asked: list[str] = []

    def run(action: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        asked.append(action)
        answer = answers[len(asked) - 1]
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    conn._run_script = run  # type: ignore[method-assign]
    return conn, asked


@pytest.mark.parametrize(
    "answers",
    [
        ({"running": False, "state": "Stopped"},),  # not running right after the restart
        ({"running": True, "state": "Running"}, {"running": False, "state": "Stopped"}),  # stopped again
        ({"running": "True", "state": "Running"},),  # not understood
        ({"running": True, "state": "Running"}, _ran(Rejected("winrm: service_status failed: RPC error"))),
        (_ran(Rejected("winrm: service_restart failed: Failed to start service 'W32Time'.")),),
    ],
)
def test_a_restart_that_ran_and_failed_is_outcome_unknown(answers: tuple[Any, ...]) -> None:
    conn, _asked = answering(*answers)
    with pytest.raises(ConnectorError) as info:
        conn.run("service_restart", {"service": "Spooler"}, timeout=5)
    assert info.value.outcome_unknown is True


@pytest.mark.parametrize(
    "answers",
    [({"running": False, "state": "Stopped"},), (_ran(Rejected("winrm: spooler_restart failed: Failed to start")),)],
)
def test_a_spooler_restart_that_ran_and_failed_is_outcome_unknown(answers: tuple[Any, ...]) -> None:
    conn, _asked = answering(*answers)
    with pytest.raises(ConnectorError) as info:
        conn.run("spooler_restart", {}, timeout=5)
    assert info.value.outcome_unknown is True


@pytest.mark.parametrize(
    "error",
    [
        _ran(NotFound("winrm: service_restart failed: Cannot find any service")),
        _ran(Rejected("denied", reason="access_denied")),
        Unreachable("winrm: cannot reach print-win-01"),  # before the script ran
    ],
)
def test_no_such_service_or_not_allowed_stays_a_failure(error: ConnectorError) -> None:
    conn, _asked = answering(error)
    with pytest.raises(ConnectorError) as info:
        conn.run("service_restart", {"service": "Spooler"}, timeout=5)
    assert info.value.outcome_unknown is False


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (
            _ran(Rejected("winrm: disk_cleanup failed: Access to the path 'x.log' is denied.", reason="access_denied")),
            True,
        ),
        (_ran(NotFound("winrm: disk_cleanup failed: Could not find file 'x.log'.")), True),  # vanished mid-walk
        (_ran(Rejected("winrm: ... is not a plain directory.", reason="path_not_canonical")), False),
        (Unreachable("winrm: cannot reach print-win-01"), False),
    ],
)
def test_a_cleanup_that_stopped_during_its_walk_is_outcome_unknown(error: ConnectorError, unknown: bool) -> None:
    conn, _asked = answering(error)
    with pytest.raises(ConnectorError) as info:
        conn.run("disk_cleanup", {"path": "C:\\Temp\\Firstline"}, timeout=5)
    assert info.value.outcome_unknown is unknown


@pytest.mark.parametrize(
    ("answer", "unknown"),
    [
        (_ran(Rejected("winrm: print_queue_clear failed: The spooler service is not reachable.")), True),
        ({"cancelled": "2", "remaining": 0}, True),  # ran to its end, result not understood
        (_ran(NotFound("winrm: print_queue_clear failed: The specified printer was not found.")), False),
    ],
)
def test_a_queue_clear_that_failed_after_it_ran_is_outcome_unknown(answer: Any, unknown: bool) -> None:
    conn, _asked = answering(answer, allowed_queues=["office-win-1"])
    with pytest.raises(ConnectorError) as info:
        conn.run("print_queue_clear", {"queue": "office-win-1"}, timeout=5)
    assert info.value.outcome_unknown is unknown
