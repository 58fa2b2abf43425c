"""Ids and positions from a request beyond an Integer column's range (2**31-1 on PostgreSQL;
SQLite overflows past 2**63-1) match nothing instead of reaching the database driver: a token
revoke with id 10**30 is "no such token" (it was a 500 with a traceback on the server's
console), a ticket's steps after position 10**30 are none (the SSE stream broke off)."""

from __future__ import annotations

import pytest

from runner import mytickets
from runner.auth import AuthService, Principal
from runner.ledger.tables import MAX_ROW_ID
from runner.service import Firstline
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases

WHO = Principal(
    account="alice@example.org",
    directory="corp",
    username="alice",
    dn="uid=alice,ou=people,dc=example,dc=org",
    display_name="Alice",
    roles=frozenset({"employee"}),
)


@pytest.mark.parametrize("token_id", [10**30, 2**63, MAX_ROW_ID + 1, 0, -1])
def test_revoking_an_out_of_range_token_id_is_no_such_token(app: Firstline, token_id: int) -> None:
    auth = AuthService(app)
    real, _secret = auth.create_token(WHO, "script")
    assert auth.revoke_token(WHO, token_id) is False
    assert auth.revoke_token(WHO, real) is True  # the real one was untouched until now


@pytest.mark.parametrize("after", [10**30, 2**63, MAX_ROW_ID + 1])
def test_steps_after_an_out_of_range_position_are_none(app: Firstline, after: int) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    outcome = app.run("fake-unlock", {"user": "alice"}, requester="alice", roles={"agent"})
    followed = mytickets.follow(app, "alice", outcome.ticket_number, after=after)
    assert followed.steps == [] and followed.done
    assert mytickets.follow(app, "alice", outcome.ticket_number, after=0).steps  # the steps are there
