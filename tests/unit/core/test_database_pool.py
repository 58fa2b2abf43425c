"""The PostgreSQL connection pool takes its size, overflow, timeout, recycle and pre-ping
from Settings (``FIRSTLINE_DATABASE_POOL_*``); SQLite ignores them. No server is needed:
an engine connects lazily."""

from __future__ import annotations

import pytest
from sqlalchemy.pool import QueuePool

from runner.ledger.store import make_engine
from runner.settings import Settings

URL = "postgresql+psycopg2://firstline@127.0.0.1:1/firstline"  # never connected to here


def test_the_pool_follows_the_settings() -> None:
    settings = Settings(
        environment="test",
        database_pool_size=3,
        database_max_overflow=7,
        database_pool_timeout=4.5,
        database_pool_recycle=120,
        database_pool_pre_ping=False,
    )
    engine = make_engine(URL, settings)
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow, pool.timeout()) == (3, 7, 4.5)
    assert (pool._recycle, pool._pre_ping) == (120, False)
    engine.dispose()


def test_the_defaults_are_documented_ones() -> None:
    for engine in (make_engine(URL), make_engine(URL, Settings(environment="test"))):
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool.timeout(), pool._recycle, pool._pre_ping) == (
            5,
            10,
            30.0,
            1800,
            True,
        )
        engine.dispose()


def test_pool_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRSTLINE_DATABASE_POOL_SIZE", "12")
    monkeypatch.setenv("FIRSTLINE_DATABASE_MAX_OVERFLOW", "0")
    settings = Settings(environment="test")
    assert (settings.database_pool_size, settings.database_max_overflow) == (12, 0)
    engine = make_engine(URL, settings)
    assert (engine.pool.size(), engine.pool._max_overflow) == (12, 0)  # type: ignore[attr-defined]
    engine.dispose()


@pytest.mark.parametrize("field", ["database_pool_size", "database_pool_timeout"])
def test_a_pool_without_connections_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Settings(environment="test", **{field: 0})
