"""runner.formonce: a claim whose request died (no ``done``, no ``release``: the process
stopped, or the database failed as the token was given back) does not block its token for a
day: after ABANDONED_SECONDS the next submit takes it over; a claim still at work is waited
for and never taken over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from runner import formonce
from runner.formonce import FormInFlight, FormOnce
from runner.ledger import store
from runner.ledger.tables import form_submission


@pytest.fixture
def once(tmp_path: Path) -> FormOnce:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    store.upgrade(engine)
    return FormOnce(engine)


def _age(once: FormOnce, seconds: float) -> None:
    stamp = (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with store.transaction(once.engine) as conn:
        conn.execute(update(form_submission).values(created_at=stamp))


def test_an_abandoned_claim_is_taken_over(once: FormOnce) -> None:
    token = "T" * 32
    assert once.claim("session-1", token) is None  # the first submit... which then dies
    _age(once, formonce.ABANDONED_SECONDS + 5)
    assert once.claim("session-1", token) is None  # the resend goes on (it would have raised FormInFlight)
    once.done("session-1", token, "FL-000007")
    assert once.claim("session-1", token) == "FL-000007"


def test_a_claim_at_work_is_not_taken_over(once: FormOnce, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formonce, "WAIT_SECONDS", 0.2)
    token = "W" * 32
    assert once.claim("session-1", token) is None
    _age(once, formonce.ABANDONED_SECONDS - 60)
    with pytest.raises(FormInFlight):
        once.claim("session-1", token)
