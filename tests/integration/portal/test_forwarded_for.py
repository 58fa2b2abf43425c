"""`X-Forwarded-For` counts only from `FIRSTLINE_TRUSTED_PROXIES`: with the default (none), a
client on loopback cannot put another address into the audit log (uvicorn's own proxy-header
handling, which believes 127.0.0.1 by default, is off)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.portal_support import sign_in

pytestmark = pytest.mark.integration


def test_forwarded_for_from_an_untrusted_peer_is_ignored(portal_with: Any) -> None:
    server = portal_with(trusted_proxies=[])
    s = sign_in(server, "agent", address="203.0.113.9")
    rows = server.query(
        "SELECT client_ip FROM audit_event WHERE action = 'portal.sign_in' AND outcome = 'success' "
        "ORDER BY seq DESC LIMIT 1"
    )
    assert rows == [("127.0.0.1",)]
    s.client.close()


def test_forwarded_for_from_a_trusted_proxy_names_the_client(portal_with: Any) -> None:
    server = portal_with(trusted_proxies=["127.0.0.1/32"])
    s = sign_in(server, "agent", address="203.0.113.9")
    rows = server.query(
        "SELECT client_ip FROM audit_event WHERE action = 'portal.sign_in' AND outcome = 'success' "
        "ORDER BY seq DESC LIMIT 1"
    )
    assert rows == [("203.0.113.9",)]
    s.client.close()
