"""Self-service throttles on SQLite and PostgreSQL (``both_databases``, a fresh database per
test): the check-and-count of a request is atomic, so threads racing past the limit never
overshoot it, and one proof-of-work solution is accepted once however many race with it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from runner.api import open_app
from runner.pow import solve
from runner.selfservice import ProofOfWorkRequired, SelfService
from runner.settings import Settings
from tests.databases import MakeDatabaseUrl

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def selfservice(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> Iterator[Callable[..., SelfService]]:
    made: list[tuple[Any, SelfService]] = []

    def make(**overrides: Any) -> SelfService:
        data_dir = tmp_path / f"selfservice{len(made)}"
        settings = Settings(
            environment="test",
            data_dir=data_dir,
            database_url=make_database_url(data_dir / "firstline.db"),
            inventory=REPO / "lab" / "inventory.yaml",
            runbooks_dir=REPO / "runbooks",
            **overrides,
        )
        fl = open_app(settings)
        service = SelfService(fl)
        made.append((fl, service))
        return service

    yield make
    for fl, service in made:
        service.close()
        fl.close()


def race(n: int, work: Callable[[], Any]) -> list[Any]:
    """Run *work* in *n* threads released together; their results (or exceptions)."""
    gate = threading.Barrier(n)
    results: list[Any] = []
    lock = threading.Lock()

    def one() -> None:
        gate.wait()
        try:
            out: Any = work()
        except BaseException as exc:
            out = exc
        with lock:
            results.append(out)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_account_and_address_limits_hold_under_concurrent_requests(selfservice: Callable[..., SelfService]) -> None:
    ss = selfservice(reset_per_account_hour=3, reset_per_address_hour=7, reset_pow_after=1000)
    results = race(16, lambda: ss._throttle("corp:alice", "reset", "198.51.100.7", None))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(r or "counted" for r in results).count("counted") == 3  # never more than the limit
    assert {r for r in results if r} == {"account_hour"}
    # one address, many accounts: the address limit holds too
    results = race(16, lambda: ss._throttle(f"corp:u{uuid.uuid4().hex[:6]}", "reset", "198.51.100.8", None))
    assert [r for r in results if r is None].__len__() == 7
    with ss.engine.connect() as c:
        rows = c.execute(text("SELECT COUNT(*) FROM selfservice_request WHERE key = 'global'")).scalar_one()
    assert rows == 3 + 7


def test_a_proof_of_work_solution_is_accepted_once_under_a_race(selfservice: Callable[..., SelfService]) -> None:
    ss = selfservice(reset_pow_after=0, reset_pow_bits=8)
    challenge = ss.pow.issue("198.51.100.9", ss._now().timestamp())
    nonce = solve(challenge.token, challenge.bits)
    ident = ss.pow.verify(challenge.token, nonce, "198.51.100.9", ss._now().timestamp())
    assert ident is not None
    results = race(12, lambda: ss._throttle(f"corp:u{uuid.uuid4().hex[:6]}", "reset", "198.51.100.9", ident))
    assert len([r for r in results if r is None]) == 1
    assert all(isinstance(r, ProofOfWorkRequired) for r in results if r is not None), results
