"""Database engine and migrations. SQLite runs in WAL mode with one writer at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError

from runner.errors import LedgerError

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision: migrations are named NNNN_<what>.py with revision "NNNN", each revising
# the one before (a unit test checks this is Alembic's single head).
HEAD_REVISION = max(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def make_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            # pysqlite's own BEGIN handling is replaced by BEGIN IMMEDIATE: writers queue
            # instead of failing with "database is locked" half-way through a transaction.
            event.listen(engine, "begin", _begin_immediate)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ValueError) as exc:
        raise LedgerError(f"cannot use database URL: {exc}") from exc
    return engine


def _begin_immediate(conn: Connection) -> None:
    # Straight to the driver: this runs once per transaction on the hot path.
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic), quickly when already there."""
    try:
        with engine.connect() as conn:
            if _current_revision(conn) == HEAD_REVISION:
                return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise LedgerError(
            f"database is not usable: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}"
        ) from exc


def ensure_schema(engine: Engine, *, migrate: bool) -> None:
    """Make sure the schema is current: migrate it (*migrate*), or check it is at
    ``HEAD_REVISION`` and raise ``LedgerError`` naming ``firstline db upgrade`` when not."""
    if migrate:
        upgrade(engine)
        return
    try:
        with engine.connect() as conn:
            current = _current_revision(conn)
    except SQLAlchemyError as exc:
        raise LedgerError(f"database is not usable: {exc.__class__.__name__}") from exc
    if current != HEAD_REVISION:
        found = f"at revision {current}" if current else "empty (no Firstline schema)"
        raise LedgerError(
            f"the database is {found}; this Firstline needs revision {HEAD_REVISION}. "
            "Run `firstline db upgrade` first."
        )


def _current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return row[0] if row else None


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.begin() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise LedgerError(f"ledger write failed: {exc.__class__.__name__}") from exc
