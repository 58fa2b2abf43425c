"""Core statements on a run's hot path, compiled once and sent through ``exec_driver_sql``.

Every run writes some twenty ledger rows (its ticket, claim, lease, target lock, step rows,
audit events). ``conn.execute(statement, {...})`` spends most of its time in SQLAlchemy
itself — the compiled-cache key, parameter processing, the execution context — not in the
database: about 73 µs per insert on SQLite against 23 µs for the same SQL text through
``Connection.exec_driver_sql`` (``bench/ledger_statements.py`` prints both, with the DBAPI
cursor alone beside them). ``execute`` compiles a statement once per dialect and set of
parameter names and then sends only the SQL text and the values.

The SQL is SQLAlchemy's own (no hand-written SQL), and the connection, its transaction, its
events and its error translation (``DBAPIError`` subclasses, which ``write_retrying``
relies on) are the ones ``conn.execute`` would use. What ``exec_driver_sql`` skips is type
processing and Python-side column defaults, so a statement that needs either — a bind
parameter whose type converts values for this dialect, a column with ``default`` or
``onupdate`` — is simply run by ``conn.execute`` instead (decided once, at its first use).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Connection, CursorResult
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.expression import Executable

# (id of the statement, dialect name, parameter names) -> (SQL text, parameter order, constants)
# or None when the statement must go through conn.execute. The statements are module
# constants (never garbage-collected), which keeps id() stable.
_Plan = tuple[str, tuple[str, ...] | None, dict[str, Any]]
_PLANS: dict[tuple[int, str, tuple[str, ...]], _Plan | None] = {}
_PLANS_MU = threading.Lock()
_KEEP: dict[int, Executable] = {}  # holds each planned statement so its id() is never reused


def execute(conn: Connection, statement: Executable, params: Mapping[str, Any] | None = None) -> CursorResult[Any]:
    """``conn.execute(statement, params)``, faster for a statement used again and again.

    *statement* must be a module-level constant (its identity keys the cache); *params* as
    for ``conn.execute`` (for an insert or update, the keys that name columns are the
    columns written). The result supports ``rowcount``, ``first()``, ``scalar_one()`` and
    ``mappings()``; an insert's new key comes from ``.returning(...)`` on the statement, not
    from ``inserted_primary_key``. Raises what ``conn.execute`` raises.
    """
    values = params or {}
    key = (id(statement), conn.dialect.name, tuple(values))
    try:
        plan = _PLANS[key]
    except KeyError:
        plan = _plan(conn, statement, key)
    if plan is None:
        return conn.execute(statement, dict(values))  # type: ignore[no-any-return]
    sql, order, constants = plan
    merged = {**constants, **values} if constants else values
    if order is None:
        return conn.exec_driver_sql(sql, dict(merged))
    return conn.exec_driver_sql(sql, tuple(merged[name] for name in order))


def _plan(conn: Connection, statement: Executable, key: tuple[int, str, tuple[str, ...]]) -> _Plan | None:
    dialect = conn.dialect
    compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect, column_keys=list(key[2])))
    plan: _Plan | None = None
    plain = (
        "__[POSTCOMPILE" not in compiled.string
        and not compiled.escaped_bind_names
        and all(b.type._cached_bind_processor(dialect) is None and not b.expanding for b in compiled.binds.values())
    )
    table = getattr(statement, "table", None) if isinstance(statement, UpdateBase) else None
    defaults = table is not None and any(c.default is not None or c.onupdate is not None for c in table.c)
    if plain and not defaults:
        given = set(key[2])
        every = compiled.construct_params(params=dict.fromkeys(given), _check=False)
        constants = {k: v for k, v in every.items() if k not in given}
        order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup is not None else None
        plan = (compiled.string, order, constants)
    with _PLANS_MU:
        _KEEP[id(statement)] = statement
        _PLANS[key] = plan
    return plan
