"""WinRM: a restart that ran and then failed is outcome unknown, never "nothing was applied".

``Restart-Service`` stops and starts the service; when the state read after it (at once or
``restart_settle_seconds`` later) says it does not run, or is not understood, or the script
failed after stopping it, the audit recorded ``failure`` (nothing applied). Only "no such
service" and "not allowed" (raised before anything happens) stay plain failures.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import ConnectorError, NotFound, Rejected
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
        ({"running": True, "state": "Running"}, Rejected("winrm: service_status failed: RPC error")),
        (Rejected("winrm: service_restart failed: Failed to start service 'W32Time'."),),
    ],
)
def test_a_restart_that_ran_and_failed_is_outcome_unknown(answers: tuple[Any, ...]) -> None:
    conn, _asked = answering(*answers)
    with pytest.raises(ConnectorError) as info:
        conn.run("service_restart", {"service": "Spooler"}, timeout=5)
    assert info.value.outcome_unknown is True


@pytest.mark.parametrize(
    "answers",
    [({"running": False, "state": "Stopped"},), (Rejected("winrm: spooler_restart failed: Failed to start"),)],
)
def test_a_spooler_restart_that_ran_and_failed_is_outcome_unknown(answers: tuple[Any, ...]) -> None:
    conn, _asked = answering(*answers)
    with pytest.raises(ConnectorError) as info:
        conn.run("spooler_restart", {}, timeout=5)
    assert info.value.outcome_unknown is True


@pytest.mark.parametrize(
    "error",
    [NotFound("winrm: service_restart failed: Cannot find any service"), Rejected("denied", reason="access_denied")],
)
def test_no_such_service_or_not_allowed_stays_a_failure(error: ConnectorError) -> None:
    conn, _asked = answering(error)
    with pytest.raises(ConnectorError) as info:
        conn.run("service_restart", {"service": "Spooler"}, timeout=5)
    assert info.value.outcome_unknown is False
