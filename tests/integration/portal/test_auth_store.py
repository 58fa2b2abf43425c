"""Portal sign-in state (revision 0004) on SQLite and PostgreSQL (``both_databases``):
throttles counted by atomic upserts (also from several threads at once), sessions and API
tokens stored as digests."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from runner.api import open_app
from runner.auth import AuthService, Principal, SignInFailed, SignInThrottled
from runner.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def auth(tmp_path: Path, database_url: str) -> Iterator[AuthService]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=database_url,
        inventory=REPO / "lab" / "inventory.yaml",
        runbooks_dir=REPO / "runbooks",
        signin_max_per_account=5,
        signin_window_seconds=600,
        signin_min_seconds=0,
    )
    fl = open_app(settings)
    yield AuthService(fl)
    fl.close()


def test_throttle_upserts_are_atomic_across_threads(auth: AuthService) -> None:
    keys = [("account", "alice"), ("address", "198.51.100.7")]
    errors: list[BaseException] = []

    def fail_once() -> None:
        try:
            auth._record_failure(keys)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fail_once) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with auth.engine.connect() as c:
        counts = sorted(r[0] for r in c.execute(text("SELECT failures FROM portal_throttle")))
    assert counts == [8, 8]
    with pytest.raises(SignInThrottled):
        auth._check_throttle(keys)  # 8 failures for the account name: over its limit of 5
    auth._clear_account_throttle(keys[0])
    auth._check_throttle(keys)  # the address (8 of 20) alone does not block


def test_sessions_and_tokens_are_stored_as_digests(auth: AuthService) -> None:
    who = Principal("p@example.org", "corp", "p", "uid=p,dc=example,dc=org", "P", frozenset({"employee"}))
    token_id, token = auth.create_token(who, "script")
    assert auth.token_principal(token) is not None
    with auth.engine.connect() as c:
        stored = [tuple(r) for r in c.execute(text("SELECT * FROM portal_api_token"))]
    assert token not in str(stored)
    assert hashlib.sha256(token.encode()).hexdigest() in str(stored)
    assert auth.revoke_token(who, token_id)
    assert auth.token_principal(token) is None


def test_an_api_token_expires_after_api_token_days(auth: AuthService, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token carries the roles its owner had when it was made: it must not outlive a change
    of them for ever. It works until ``api_token_days`` (default 90) have passed, then not."""
    import runner.auth as auth_mod

    assert auth.settings.api_token_days == 90
    who = Principal("q@example.org", "corp", "q", "uid=q,dc=example,dc=org", "Q", frozenset({"agent", "employee"}))
    _, token = auth.create_token(who, "script")
    made = auth_mod._now()
    (listed,) = auth.list_tokens(who)
    expires = datetime.fromisoformat(str(listed["expires_at"]).replace("Z", "+00:00"))
    assert abs((expires - made) - timedelta(days=90)) < timedelta(minutes=1) and listed["expired"] is False
    monkeypatch.setattr(auth_mod, "_now", lambda: made + timedelta(days=89, hours=23))
    assert auth.token_principal(token) is not None
    monkeypatch.setattr(auth_mod, "_now", lambda: made + timedelta(days=90, minutes=1))
    assert auth.token_principal(token) is None
    assert auth.list_tokens(who)[0]["expired"] is True


def _sign_in_events(auth: AuthService) -> list[tuple[str, str | None, str | None, str]]:
    with auth.engine.connect() as c:
        rows = c.execute(
            text("SELECT outcome, target, reason, detail FROM audit_event WHERE action = 'portal.sign_in' ORDER BY seq")
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_refused_and_throttled_sign_ins_are_audited_without_the_typed_name(auth: AuthService) -> None:
    """Tries blocked by the throttle left no trace, and failed ones no target: an attack on one
    account could not be seen in the chain (a tester's find). Now every refused try names the
    typed name's keyed pseudonym — the same for every spelling of it, never the text, which may
    be a password typed into the name field — and the throttle's refusals are audited (1st,
    2nd, 4th, 8th ... in a window, with the count)."""
    typed = "Zq-typed-into-the-name-field-77"
    spellings = [typed, typed.upper(), f"{typed}@example.org"]
    for i in range(5):  # the account limit
        with pytest.raises(SignInFailed):
            auth.sign_in(spellings[i % 3], "wrong password", client_ip=f"198.51.100.{i}", user_agent="t")
    for i in range(8):
        with pytest.raises(SignInThrottled):
            auth.sign_in(spellings[i % 3], "wrong password", client_ip=f"203.0.113.{i}", user_agent="t")
    events = _sign_in_events(auth)
    refused = [e for e in events if e[2] == "invalid_credentials"]
    blocked = [e for e in events if e[2] == "throttled"]
    assert len(refused) == 5 and len(blocked) == 4  # refused tries 1, 2, 4 and 8 of the window
    targets = {e[1] for e in events}
    assert len(targets) == 1 and next(iter(targets)).startswith("corp:?")  # one pseudonym for every spelling
    assert [json.loads(e[3])["refused_in_window"] for e in blocked] == [1, 2, 4, 8]
    with auth.engine.connect() as c:
        everything = str([tuple(r) for r in c.execute(text("SELECT * FROM audit_event"))])
    assert typed.lower() not in everything.lower()
