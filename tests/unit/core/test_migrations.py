"""The ledger migrations on SQLite and on PostgreSQL (``both_databases``): an empty database
is brought to head and then holds every table and column the code declares; every revision
downgrades (one step at a time, down to nothing) and the upgrade after that rebuilds exactly
the same schema."""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, text
from sqlalchemy.exc import SAWarning

import runner.ledger
from runner.ledger import store
from tests.databases import MakeDatabaseUrl

pytestmark = pytest.mark.both_databases


def _alembic(engine: Engine, verb: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return store._current_revision(conn)


INDEXES = {  # the database's own text of each index (expression indexes included)
    "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'index'",
    "postgresql": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()",
}


def _schema(conn: Connection) -> dict[str, Any]:
    """Tables → their columns (name, type, nullable), unique constraints and primary key;
    ``indexes`` → every index's definition."""
    found = inspect(conn)
    out: dict[str, Any] = {}
    with warnings.catch_warnings():  # expression indexes: compared below by their definitions
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
        for table in sorted(found.get_table_names()):
            columns = sorted((c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table))
            uniques = sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table))
            out[table] = (columns, uniques, tuple(found.get_pk_constraint(table)["constrained_columns"]))
    out["indexes"] = sorted(
        (name, str(sql)) for name, sql in conn.execute(text(INDEXES[conn.dialect.name])) if "alembic" not in name
    )
    return out


def _declared() -> list[MetaData]:
    """The MetaData of every ``runner.ledger.*tables`` module (the code's view of the schema)."""
    found = []
    for info in pkgutil.iter_modules(runner.ledger.__path__):
        if info.name.endswith("tables"):
            meta = getattr(importlib.import_module(f"runner.ledger.{info.name}"), "metadata", None)
            if isinstance(meta, MetaData):
                found.append(meta)
    return found


def test_migrations_build_the_declared_schema_and_downgrade_and_upgrade_again(
    tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    engine = create_engine(make_database_url(tmp_path / "migrations.db", migrated=False))
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        _alembic(engine, "upgrade", "head")
        assert _revision(engine) == store.HEAD_REVISION
        with engine.connect() as conn:
            first = _schema(conn)
        missing = [
            f"{table.name}.{column.name}"
            for meta in _declared()
            for table in meta.tables.values()
            for column in table.columns
            if table.name not in first or column.name not in {c[0] for c in first[table.name][0]}
        ]
        assert missing == [], f"declared in runner/ledger/*tables.py but not created by a migration: {missing}"

        steps = 0
        while _revision(engine) is not None:
            before = _revision(engine)
            _alembic(engine, "downgrade", "-1")
            assert _revision(engine) != before
            steps += 1
        assert steps == int(store.HEAD_REVISION)
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
            assert _schema(conn)["indexes"] == []

        _alembic(engine, "upgrade", "head")
        with engine.connect() as conn:
            assert _schema(conn) == first
        store.upgrade(engine)  # at head already: nothing to do, nothing changes
        with engine.connect() as conn:
            assert _schema(conn) == first
    finally:
        engine.dispose()


def test_revision_0015_moves_the_end_of_unresolved_tickets_from_resolved_at_to_closed_at(
    tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    """Before 0015 every final state set ``resolved_at``. After it: ``closed_at`` holds the
    time each final ticket ended, ``resolved_at`` only that of ``resolved`` ones; the
    downgrade gives back the old values."""
    engine = create_engine(make_database_url(tmp_path / "m15.db", migrated=False))
    try:
        _alembic(engine, "upgrade", "0014")
        ended = {
            "resolved": "2026-11-01T10:00:00Z",
            "escalated": "2026-11-01T11:00:00Z",
            "closed": "2026-11-01T12:00:00Z",
        }
        rows = [(state, at) for state, at in ended.items()] + [("running", None), ("queued", None)]
        with engine.begin() as conn:
            for i, (state, at) in enumerate(rows, start=1):
                conn.execute(
                    text(
                        "INSERT INTO ticket (id, requester, subject, channel, category, type, runbook, runbook_sha256,"
                        " params, state, impact, urgency, priority, correlation_id, opened_at, updated_at, resolved_at,"
                        " deadline_at) VALUES (:id, 'alice', 'alice', 'cli', 'Account', 'incident', 'account-unlock',"
                        " :sha, '{}', :state, 3, 3, 4, :cid, '2026-11-01T09:00:00Z', '2026-11-01T09:00:00Z', :at,"
                        " '2026-11-01T13:00:00Z')"
                    ),
                    {
                        "id": i,
                        "sha": "0" * 64,
                        "state": state,
                        "cid": f"00000000-0000-0000-0000-00000000000{i}",
                        "at": at,
                    },
                )

        def read() -> dict[str, tuple[Any, ...]]:
            with engine.connect() as conn:
                cols = "state, resolved_at, closed_at" if _revision(engine) == "0015" else "state, resolved_at"
                return {r[0]: tuple(r[1:]) for r in conn.execute(text(f"SELECT {cols} FROM ticket"))}

        _alembic(engine, "upgrade", "0015")
        assert read() == {
            "resolved": (ended["resolved"], ended["resolved"]),
            "escalated": (None, ended["escalated"]),
            "closed": (None, ended["closed"]),
            "running": (None, None),
            "queued": (None, None),
        }
        _alembic(engine, "downgrade", "0014")
        assert read() == {
            "resolved": (ended["resolved"],),
            "escalated": (ended["escalated"],),
            "closed": (ended["closed"],),
            "running": (None,),
            "queued": (None,),
        }
    finally:
        engine.dispose()


def test_a_schema_revision_this_firstline_does_not_know_is_named_not_an_internal_error(tmp_path: Path) -> None:
    """A database a newer Firstline wrote: Alembic's CommandError made every command exit 3."""
    from runner.errors import LedgerError

    engine = create_engine(f"sqlite:///{tmp_path / 'fl.db'}")
    store.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for check in (lambda: store.upgrade(engine), lambda: store.ensure_schema(engine, migrate=False)):
        with pytest.raises(LedgerError, match=r"schema revision '9999', which this Firstline does not know"):
            check()
    engine.dispose()
