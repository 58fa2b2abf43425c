"""/readyz asks the broker when runs go to Celery: a broker that cannot be reached makes the
portal not ready (a load balancer then stops sending it requests that would fail)."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

from portal import runs


def _ctx(broker_url: str | None) -> Any:
    return SimpleNamespace(
        firstline=SimpleNamespace(inventory=object()),
        extras={},
        settings=SimpleNamespace(broker_url=broker_url),
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_broker_makes_the_portal_not_ready() -> None:
    problem = runs.ready(_ctx(f"redis://127.0.0.1:{_closed_port()}/0"))
    assert problem == "broker not reachable (FIRSTLINE_BROKER_URL)"


def test_without_a_broker_nothing_is_asked() -> None:
    assert runs.ready(_ctx(None)) is None
