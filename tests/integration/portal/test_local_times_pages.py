"""The people's pages show times on the configured clock (``FIRSTLINE_TIME_ZONE``): the
employee's ticket list, the agent's ticket page and the API tokens page. The ledger and the
auditor's pages keep UTC."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.portal_support import PortalServer, sign_in

pytestmark = [pytest.mark.integration]

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")


def _on_the_clock(stored: str) -> str:
    when = datetime.fromisoformat(stored.replace("Z", "+00:00"))
    when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(AMS)
    return f"{when:%Y-%m-%d %H:%M} {when.tzname()}"


def test_times_on_the_peoples_pages_are_on_the_configured_clock(
    portal_with: Callable[..., PortalServer], ldap_users: Any
) -> None:
    portal = portal_with(time_zone="Europe/Amsterdam")
    user, pw = ldap_users.create_user()
    me = sign_in(portal, user, pw)
    ran = me.post("/api/v1/runs", json={"runbook": "account-status", "params": {}}, headers={"X-CSRF-Token": me.csrf})
    assert ran.status_code in (200, 201), ran.text
    (opened,) = portal.query("SELECT opened_at FROM ticket WHERE subject = :u", u=user)[0]
    listing = me.get("/me/tickets").text
    shown = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', listing)
    assert [text for _, text in shown] == [_on_the_clock(str(opened))], shown
    assert " UTC" not in shown[0][1] and shown[0][1].endswith(("CET", "CEST"))
    token = me.post("/api/v1/tokens", json={"label": "laptop"}, headers={"X-CSRF-Token": me.csrf})
    assert token.status_code in (200, 201), token.text
    (created,) = portal.query("SELECT created_at FROM portal_api_token WHERE username = :u", u=user.lower())[0]
    tokens = me.get("/me/tokens").text
    assert f">{_on_the_clock(str(created))}</time>" in tokens, tokens[-2000:]
    me.client.close()
    agent = sign_in(portal, "agent")
    number = ran.json()["ticket"]
    page = agent.get(f"/agent/tickets/{number}").text
    times = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', page)
    assert times, page[:2000]
    for stamp, text in times:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T", text), text
        assert text[:16] + text[19:] == _on_the_clock(stamp)
    # the auditor's pages keep UTC (what an audit compares across sites)
    auditor = sign_in(portal, "auditor")
    assert "UTC" in auditor.get("/audit/events").text
    agent.client.close()
    auditor.client.close()
