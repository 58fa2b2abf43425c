"""``runner.ledger.prepared.execute``: the same rows as ``conn.execute``, sent as SQL text
(no per-call compile) when that is safe, through ``conn.execute`` when it is not."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, bindparam, event, select, update
from sqlalchemy.exc import IntegrityError, MultipleResultsFound, NoResultFound

from runner.errors import LedgerError
from runner.ledger import prepared
from runner.ledger.store import make_engine, transaction

meta = MetaData()
item = Table(
    "item",
    meta,
    Column("id", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("note", String(64)),
)
stamped = Table(
    "stamped",
    meta,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), default="plain"),  # a Python-side default
    Column("at", DateTime),  # SQLite converts datetimes in Python: a bind processor
)

_INSERT = item.insert().returning(item.c.id)
_MOVE = update(item).where(item.c.id == bindparam("b_id"), item.c.state == "queued")
_MOVE_ANY = update(item).where(item.c.id == bindparam("b_id"), item.c.state.in_(("queued", "running")))
_STAMP = stamped.insert()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    meta.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def compiled_per_call(engine: Engine) -> Iterator[list[bool]]:
    """For each statement sent: whether SQLAlchemy compiled it for that call."""
    seen: list[bool] = []

    def spy(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if not statement.startswith(("BEGIN", "PRAGMA")):
            seen.append(context.compiled is not None)

    event.listen(engine, "before_cursor_execute", spy)
    yield seen
    event.remove(engine, "before_cursor_execute", spy)


def test_the_same_rows_as_core_without_compiling_per_call(engine: Engine, compiled_per_call: list[bool]) -> None:
    with transaction(engine) as conn:
        first = prepared.execute(conn, _INSERT, {"state": "queued", "note": None}).scalar_one()
        second = prepared.execute(conn, _INSERT, {"state": "running", "note": "x"}).scalar_one()
        # the constant of the WHERE clause ('queued') travels with the text
        moved = prepared.execute(conn, _MOVE, {"b_id": first, "state": "running", "note": "moved"}).rowcount
        not_queued = prepared.execute(conn, _MOVE, {"b_id": second, "state": "done", "note": "no"}).rowcount
    assert (moved, not_queued) == (1, 0)
    assert compiled_per_call == [False, False, False, False]
    with engine.connect() as conn:
        rows = conn.execute(select(item).order_by(item.c.id)).all()
    assert [tuple(r) for r in rows] == [(first, "running", "moved"), (second, "running", "x")]


def test_other_parameter_names_are_another_statement(engine: Engine) -> None:
    with transaction(engine) as conn:
        a = prepared.execute(conn, _INSERT, {"state": "queued", "note": "n"}).scalar_one()
        prepared.execute(conn, _MOVE, {"b_id": a, "state": "running"})  # note left as it is
    with engine.connect() as conn:
        assert tuple(conn.execute(select(item.c.state, item.c.note)).one()) == ("running", "n")


def test_defaults_and_converting_types_go_through_core(engine: Engine, compiled_per_call: list[bool]) -> None:
    at = datetime(2026, 12, 1, 8, 55, tzinfo=UTC).replace(tzinfo=None)
    with transaction(engine) as conn:
        prepared.execute(conn, _STAMP, {"at": at})
    assert compiled_per_call == [True]
    with engine.connect() as conn:
        row = conn.execute(select(stamped.c.kind, stamped.c.at)).one()
    assert (row.kind, row.at) == ("plain", at)  # the default applied, the datetime converted back


def test_an_expanding_in_list_goes_through_core(engine: Engine, compiled_per_call: list[bool]) -> None:
    with transaction(engine) as conn:
        a = prepared.execute(conn, _INSERT, {"state": "running", "note": None}).scalar_one()
        assert prepared.execute(conn, _MOVE_ANY, {"b_id": a, "state": "done"}).rowcount == 1
    assert compiled_per_call == [False, True]


# -- the DBAPI cursor path (inside a transaction, no cursor-execute listener) ------------

_READ = select(item.c.id, item.c.state, item.c.note).where(item.c.state == bindparam("b_state")).order_by(item.c.id)
_UNIQUE = Table("unique_item", meta, Column("name", String(16), primary_key=True))
_ADD_UNIQUE = _UNIQUE.insert()


def _answers(result: Any) -> dict[str, Any]:
    """Everything the ledger asks of a result, as plain values."""
    return {"rows": [(r.id, r.state, r.note, r[0]) for r in result]}


def test_the_cursor_path_answers_as_exec_driver_sql(engine: Engine) -> None:
    with transaction(engine) as conn:
        ids = [prepared.execute(conn, _INSERT, {"state": "queued", "note": n}).scalar_one() for n in ("a", None, "c")]
        through_cursor = prepared.execute(conn, _READ, {"b_state": "queued"})
        assert isinstance(through_cursor, prepared.Rows)  # this test is about that path
        sql, _order, _constants = next(p for k, p in prepared._PLANS.items() if k[0] == id(_READ) and p)
        through_sqlalchemy = conn.exec_driver_sql(sql, ("queued",))
        assert _answers(through_cursor) == _answers(through_sqlalchemy)
        again = prepared.execute(conn, _READ, {"b_state": "queued"})
        assert again.mappings().first() == {"id": ids[0], "state": "queued", "note": "a"}
        assert [m["note"] for m in prepared.execute(conn, _READ, {"b_state": "queued"}).mappings()] == ["a", None, "c"]
        assert prepared.execute(conn, _READ, {"b_state": "queued"}).first().note == "a"
        assert prepared.execute(conn, _READ, {"b_state": "queued"}).scalar() == ids[0]
        none = prepared.execute(conn, _READ, {"b_state": "gone"})
        assert (none.first(), none.scalar(), none.mappings().first(), list(none)) == (None, None, None, [])
        with pytest.raises(NoResultFound):
            prepared.execute(conn, _READ, {"b_state": "gone"}).scalar_one()
        with pytest.raises(MultipleResultsFound):
            prepared.execute(conn, _READ, {"b_state": "queued"}).scalar_one()
        # rowcount of an update, and of an insert with RETURNING (SQLite counts as rows come)
        assert prepared.execute(conn, _MOVE_ALL, {"b_from": "queued", "state": "running"}).rowcount == 3
        assert prepared.execute(conn, _INSERT, {"state": "x", "note": None}).rowcount == 1


_MOVE_ALL = update(item).where(item.c.state == bindparam("b_from"))


def test_the_cursor_path_raises_the_errors_sqlalchemy_raises(engine: Engine) -> None:
    """``write_retrying`` tells a busy database from a broken one by SQLAlchemy's classes."""
    meta.create_all(engine)
    with pytest.raises(LedgerError) as caught:
        with transaction(engine) as conn:
            prepared.execute(conn, _ADD_UNIQUE, {"name": "once"})
            assert isinstance(prepared.execute(conn, _ADD_UNIQUE, {"name": "twice"}), prepared.Rows)
            prepared.execute(conn, _ADD_UNIQUE, {"name": "once"})
    assert isinstance(caught.value.__cause__, IntegrityError)  # SQLAlchemy's class, the driver's error inside
    assert isinstance(caught.value.__cause__.orig, sqlite3.IntegrityError)
    with engine.connect() as conn:  # rolled back: the first insert is gone too, the connection usable
        assert conn.execute(select(_UNIQUE.c.name)).all() == []


def test_a_listener_or_no_transaction_goes_through_sqlalchemy(engine: Engine, compiled_per_call: list[bool]) -> None:
    with transaction(engine) as conn:
        prepared.execute(conn, _INSERT, {"state": "queued", "note": None})
        assert not isinstance(prepared.execute(conn, _READ, {"b_state": "queued"}), prepared.Rows)
    assert compiled_per_call == [False, False]  # both seen by the listener


def test_outside_a_transaction_sqlalchemy_begins_one(engine: Engine) -> None:
    with engine.connect() as conn:
        result = prepared.execute(conn, _INSERT, {"state": "queued", "note": None})
        assert not isinstance(result, prepared.Rows)
        assert result.scalar_one() == 1
        assert conn.in_transaction()  # autobegun, as conn.execute would
        conn.commit()
    with engine.connect() as conn:
        assert conn.execute(select(item.c.state)).scalars().all() == ["queued"]
