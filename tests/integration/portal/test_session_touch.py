"""A signed-in request whose session is due for its ``last_seen_at`` refresh (once a minute)
must not stall the portal while that write waits for the database: the write runs off the
event loop (``portal.deps.current_principal``), so other requests keep being answered."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.databases import engine_for
from tests.portal_support import PortalServer, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]


def test_a_session_refresh_waiting_for_the_database_does_not_stall_other_requests(portal_with: Any) -> None:
    server: PortalServer = portal_with()
    employee = sign_in(server, "employee")
    old = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="microseconds")
    server.execute("UPDATE portal_session SET last_seen_at = :old", old=old)  # due for its refresh
    blocker = engine_for(server.database_url)
    conn = blocker.connect()
    held = conn.begin()
    # An open write on the session rows: SQLite's write lock, PostgreSQL's row lock. The
    # refresh of last_seen_at waits for it, as it would for a run's step writes.
    conn.execute(text("UPDATE portal_session SET display_name = display_name"))
    answers: dict[str, Any] = {}

    def me() -> None:
        try:
            answers["me"] = employee.client.get("/api/v1/me", timeout=60).status_code
        except httpx.HTTPError as exc:  # reported by the assertions below
            answers["me"] = repr(exc)

    waiting = threading.Thread(target=me)
    try:
        waiting.start()
        waiting.join(1.0)  # the request reaches its refresh and waits there
        assert waiting.is_alive(), f"the refresh did not wait for the open write: {answers}"
        with server.client() as other:
            try:
                health = other.get("/healthz", timeout=15)
            except httpx.TimeoutException:
                pytest.fail("/healthz got no answer while one request's session refresh waited for the database")
        assert health.status_code == 200
        assert waiting.is_alive()  # still waiting: /healthz was answered meanwhile
    finally:
        held.rollback()
        conn.close()
        blocker.dispose()
        waiting.join(60)
    assert answers["me"] == 200, answers
    (seen,) = server.query("SELECT last_seen_at FROM portal_session")[0]
    assert seen > old  # the refresh was written once the database was free
    employee.client.close()
