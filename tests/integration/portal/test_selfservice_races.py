"""Self-service throttles on a real PostgreSQL (127.0.0.1:5432, a fresh database per test):
the check-and-count of a request is atomic, so threads racing past the limit never
overshoot it, and one proof-of-work solution is accepted once however many race with it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from runner.api import open_app
from runner.pow import solve
from runner.selfservice import ProofOfWorkRequired, SelfService
from runner.settings import Settings

pytestmark = pytest.mark.integration
ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def selfservice(tmp_path: Path) -> Iterator[Callable[..., SelfService]]:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    made: list[tuple[str, Any, SelfService]] = []

    def make(**overrides: Any) -> SelfService:
        name = f"fl_selfservice_{uuid.uuid4().hex[:10]}"
        try:
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not usable: {exc}")
        settings = Settings(
            environment="test",
            data_dir=tmp_path / name,
            database_url=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}",
            inventory=REPO / "lab" / "inventory.yaml",
            runbooks_dir=REPO / "runbooks",
            **overrides,
        )
        fl = open_app(settings)
        service = SelfService(fl)
        made.append((name, fl, service))
        return service

    yield make
    for name, fl, service in made:
        service.close()
        fl.close()
        fl.engine.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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
