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

Inside a transaction, on a connection with no cursor-execute listener, the text goes to the
DBAPI cursor of that same connection (``Rows`` holds what it returned): ``exec_driver_sql``
would add only its execution context, about 9 µs per statement on SQLite (18 µs against
5 µs for the cursor alone, ``bench/ledger_statements.py``). The driver's errors are
translated by SQLAlchemy's own handler, as ``exec_driver_sql`` does (a disconnect
invalidates the connection); a cursor-execute listener or no transaction sends the
statement through ``exec_driver_sql``, so events and autobegin are unchanged
(``exec_driver_sql`` fires no ``before_execute``: that event is for clause constructs).
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, cast

from sqlalchemy import Connection
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
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


class Result(Protocol):
    """What ``execute`` returns: SQLAlchemy's ``CursorResult`` or ``Rows`` (the same calls)."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> Any: ...

    def scalar(self) -> Any: ...

    def scalar_one(self) -> Any: ...

    def mappings(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def _row_type(keys: tuple[str, ...]) -> Any:
    """A named tuple type for *keys* (``row.seq`` and ``row[0]``, as SQLAlchemy's ``Row``)."""
    found = _ROW_TYPES.get(keys)
    if found is None:
        found = _ROW_TYPES.setdefault(keys, namedtuple("Row", keys, rename=True))  # type: ignore[misc]
    return found


class _Mappings:
    """``Rows.mappings()``: each row as a dict of column name to value."""

    __slots__ = ("_dicts",)

    def __init__(self, keys: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
        self._dicts = [dict(zip(keys, row, strict=True)) for row in rows]

    def first(self) -> dict[str, Any] | None:
        return self._dicts[0] if self._dicts else None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._dicts)


class Rows:
    """The rows and row count a DBAPI cursor returned, read at once (the cursor is closed).

    Answers as ``CursorResult`` does for the calls the ledger makes: ``rowcount``, ``first()``,
    ``scalar()``, ``scalar_one()`` (``NoResultFound`` / ``MultipleResultsFound``),
    ``mappings()`` and iteration over rows with named fields."""

    __slots__ = ("_keys", "_rows", "rowcount")

    def __init__(self, cursor: Any) -> None:
        description = cursor.description
        self._keys: tuple[str, ...] = tuple(column[0] for column in description) if description else ()
        self._rows: list[Sequence[Any]] = list(cursor.fetchall()) if description else []
        self.rowcount: int = cursor.rowcount  # after the fetch: SQLite counts RETURNING rows as they come

    def first(self) -> Any:
        return _row_type(self._keys)._make(self._rows[0]) if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self._rows[0][0]

    def mappings(self) -> _Mappings:
        return _Mappings(self._keys, self._rows)

    def __iter__(self) -> Iterator[Any]:
        kind = _row_type(self._keys)
        return (kind._make(row) for row in self._rows)


def execute(conn: Connection, statement: Executable, params: Mapping[str, Any] | None = None) -> Result:
    """``conn.execute(statement, params)``, faster for a statement used again and again.

    *statement* must be a module-level constant (its identity keys the cache); *params* as
    for ``conn.execute`` (for an insert or update, the keys that name columns are the
    columns written). The result supports ``rowcount``, ``first()``, ``scalar()``,
    ``scalar_one()``, ``mappings()`` and iteration; an insert's new key comes from
    ``.returning(...)`` on the statement, not from ``inserted_primary_key``. Raises what
    ``conn.execute`` raises.
    """
    values = params or {}
    key = (id(statement), conn.dialect.name, tuple(values))
    try:
        plan = _PLANS[key]
    except KeyError:
        plan = _plan(conn, statement, key)
    if plan is None:
        return conn.execute(statement, dict(values))
    sql, order, constants = plan
    merged = {**constants, **values} if constants else values
    args: Any = dict(merged) if order is None else tuple(merged[name] for name in order)
    dispatch = conn.dispatch
    if dispatch.before_cursor_execute or dispatch.after_cursor_execute or not conn.in_transaction():
        return conn.exec_driver_sql(sql, args)
    return _on_cursor(conn, sql, args)


def _on_cursor(conn: Connection, sql: str, args: Any) -> Rows:
    """*sql* with *args* on the DBAPI cursor of *conn* (inside its transaction); the driver's
    errors raised as ``exec_driver_sql`` raises them (SQLAlchemy's own handler)."""
    cursor = None
    try:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, args)
            return Rows(cursor)
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as exc:
        conn._handle_dbapi_exception(exc, sql, args, cursor, None)


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
