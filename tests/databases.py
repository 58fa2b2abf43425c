"""One way for tests to get a database, on SQLite or on PostgreSQL (issue 9).

Registered by ``tests/conftest.py``; see docs/testing.md "SQLite and PostgreSQL".

* ``database`` — ``"sqlite"`` or ``"postgresql"``: the kind this test runs on. A test module
  marked ``pytestmark = [..., pytest.mark.both_databases]`` (or a test so marked) is run once
  on each (ids ``[sqlite]`` / ``[postgresql]``; the PostgreSQL run also carries the
  ``postgresql`` and ``integration`` markers). Unmarked tests run on SQLite only, as before.
  The parameter is session-scoped, so session fixtures (the portal's) may depend on it.
* ``make_database_url(sqlite_file, migrated=True)`` — a fresh, empty-of-rows database of that
  kind for this test: SQLite, the URL of *sqlite_file* (not created: the first open migrates
  it, as in production with the embedded default); PostgreSQL, a new database copied from a
  template that already holds the schema at head (``migrated=False``: an empty database, for
  tests of the migrations themselves). PostgreSQL databases are dropped after the test.
* ``database_url`` — ``make_database_url(tmp_path / "ledger.db")``.
* ``test_databases`` — the session's ``TestDatabases`` (for session-scoped fixtures).
* ``dump_rows(engine)`` — every row of every table as bytes (what "grep every store" reads
  on PostgreSQL, where there is no database file to read).

PostgreSQL: the server at ``FIRSTLINE_TEST_POSTGRES_URL`` (default
``postgresql+psycopg2://postgres@127.0.0.1:5432/postgres``, trust authentication on this
machine kind) must be up: when it is not, every PostgreSQL-parametrized test FAILS naming
the server and the reason (never a skip). Databases are named ``flt_<pid>_<random>_<n>`` so
concurrent pytest processes never collide; a session drops its own, and databases left by a
pytest process that no longer runs (a killed run) are dropped at the next session's start.
``--database sqlite`` (or ``postgresql``) selects one kind for a quick local loop; the default
``both`` is what CI runs.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, make_url, text
from sqlalchemy.pool import NullPool

from runner.ledger.store import make_engine, upgrade

KINDS = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
NAME = re.compile(r"^flt_(\d+)_[0-9a-f]+_(?:\d+|template)$")

MakeDatabaseUrl = Callable[..., str]


class PostgresUnavailable(RuntimeError):
    """The test PostgreSQL server cannot be used; the message names it and the reason."""


class TestDatabases:
    """Creates, recycles and drops the session's test databases.

    ``url(kind, sqlite_file, migrated=True)`` → a URL (see the module docstring);
    ``release(url)`` gives a PostgreSQL database made here back (SQLite: nothing; the file
    lives in a pytest temporary directory); ``close()`` drops every database made here.
    Raises ``PostgresUnavailable`` when the server is needed and cannot be used.

    Speed (``CREATE DATABASE`` costs 0.1–1.5 s on a busy machine: it checkpoints): a released
    migrated database is recycled on a helper thread — other sessions on it ended, its schema
    compared with the template's (tables, columns, defaults, indexes, constraints, triggers,
    revision), every row deleted and every sequence restarted — and handed to the next test;
    one whose schema a test changed is dropped instead. Empty (``migrated=False``) databases
    are always new and always dropped. A test therefore always starts on a database that
    holds nothing and whose schema is exactly the migrations' head.
    """

    __test__ = False  # not a test class

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.prefix = f"flt_{os.getpid()}_{secrets.token_hex(3)}"
        self._admin: Engine | None = None
        self._template: str | None = None
        self._fingerprint = ""
        self._wipe = ""
        self._failure: str | None = None
        self._made: set[str] = set()
        self._free: list[str] = []
        self._count = 0
        self._strategy = ""
        self._lock = threading.Lock()
        self._freed = threading.Condition()  # guards _free and _recycling
        self._recycling = 0
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._helper: threading.Thread | None = None

    # -- PostgreSQL ------------------------------------------------------------------------
    def _server(self) -> Engine:
        if self._failure is not None:
            raise PostgresUnavailable(self._failure)
        if self._admin is None:
            where = self.admin_url.render_as_string(hide_password=True)
            admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            try:
                with admin.connect() as c:
                    version = int(c.execute(text("SHOW server_version_num")).scalar_one())
            except Exception as exc:
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()
                self._failure = (
                    f"PostgreSQL for the tests is not usable at {where} "
                    f"({type(exc).__name__}: {reason[0] if reason else ''}). The PostgreSQL-parametrized tests "
                    "need it: start it (this machine kind runs it on 127.0.0.1:5432, trust), point "
                    "FIRSTLINE_TEST_POSTGRES_URL at one, or run `pytest --database sqlite` for a SQLite-only loop."
                )
                admin.dispose()
                raise PostgresUnavailable(self._failure) from exc
            self._strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""
            self._admin = admin
            self._drop_stale()
        return self._admin

    def _url_of(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self._server().connect() as c:
            c.execute(text(sql))

    def _drop_stale(self) -> None:
        """Drop databases of pytest processes on this machine that no longer run."""
        assert self._admin is not None
        with self._admin.connect() as c:
            names = [r[0] for r in c.execute(text("SELECT datname FROM pg_database WHERE datname LIKE 'flt\\_%'"))]
            for name in names:
                found = NAME.match(name)
                if found and not _alive(int(found.group(1))):
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def template(self) -> str:
        """The name of the session's template database (schema at head), built once."""
        with self._lock:
            if self._template is None:
                name = f"{self.prefix}_template"
                self._execute(f'CREATE DATABASE "{name}"')
                self._made.add(name)
                engine = make_engine(self._url_of(name))
                try:
                    upgrade(engine)
                    with engine.connect() as c:
                        self._fingerprint = _fingerprint(c)
                        meta = MetaData()
                        meta.reflect(c)
                        tables = [t.name for t in reversed(meta.sorted_tables) if t.name != "alembic_version"]
                        sequences = c.execute(
                            text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
                        ).scalars()
                        self._wipe = "".join(f'DELETE FROM "{t}";' for t in tables) + "".join(
                            f'ALTER SEQUENCE "{q}" RESTART;' for q in sequences
                        )
                finally:
                    engine.dispose()  # CREATE DATABASE ... TEMPLATE needs it without sessions
                self._template = name
            return self._template

    def _create(self, template: str | None) -> str:
        with self._lock:
            self._count += 1
            name = f"{self.prefix}_{self._count}"
            self._made.add(name)
        copy = f' TEMPLATE "{template}"{self._strategy}' if template else ""
        self._execute(f'CREATE DATABASE "{name}"{copy}')
        return name

    def postgresql(self, *, migrated: bool = True) -> str:
        if not migrated:
            return self._url_of(self._create(None))
        template = self.template()
        with self._freed:  # a recycle under way (~30 ms) is quicker than a copy (0.1-1.5 s)
            if not self._free and self._recycling:
                self._freed.wait_for(lambda: bool(self._free) or not self._recycling, timeout=5)
            name = self._free.pop() if self._free else None
        return self._url_of(name or self._create(template))

    def _background(self, job: Callable[[], None]) -> None:
        if self._helper is None:
            self._helper = threading.Thread(target=self._work, name="test-databases", daemon=True)
            self._helper.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            with contextlib.suppress(Exception):  # a database that could not be recycled: close() drops it
                job()

    def _drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with self._lock:
            self._made.discard(name)

    def _recycle(self, name: str) -> None:
        """Empty *name* for the next test (one connection: end other sessions, compare the
        schema, delete every row, restart the sequences), or drop it when it cannot be."""
        same = False
        engine = create_engine(self._url_of(name), poolclass=NullPool)
        try:
            with engine.connect() as c:
                deadline = time.monotonic() + 10
                while (pids := c.execute(_OTHER_SESSIONS).scalars().all()) and time.monotonic() < deadline:
                    for pid in pids:
                        c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                    c.commit()
                    time.sleep(0.02)
                if not pids and _fingerprint(c) == self._fingerprint:
                    c.exec_driver_sql(self._wipe)
                    c.commit()
                    same = True
        except Exception:
            same = False
        finally:
            engine.dispose()
        if not same:
            self._drop(name)
            return
        with self._freed:
            self._free.append(name)
            self._freed.notify()

    # -- both ------------------------------------------------------------------------------
    def url(self, kind: str, sqlite_file: Path, *, migrated: bool = True) -> str:
        if kind == "sqlite":
            return f"sqlite:///{sqlite_file}"
        if kind == "postgresql":
            return self.postgresql(migrated=migrated)
        raise ValueError(f"unknown database kind {kind!r}; one of {KINDS}")

    def release(self, url: str, *, migrated: bool = True) -> None:
        """A test is done with *url*: recycle it (migrated) or drop it, in the background."""
        if url.startswith("sqlite"):
            return
        name = make_url(url).database or ""
        if name not in self._made:
            return
        if not migrated:
            self._background(lambda: self._drop(name))
            return
        with self._freed:
            self._recycling += 1

        def recycle() -> None:
            try:
                self._recycle(name)
            finally:
                with self._freed:
                    self._recycling -= 1
                    self._freed.notify_all()

        self._background(recycle)

    def close(self) -> None:
        if self._helper is not None:
            self._jobs.put(None)
            self._helper.join(120)
            self._helper = None
        if self._admin is None:
            return
        for name in sorted(self._made):
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.clear()
        self._free.clear()
        self._admin.dispose()
        self._admin = None


_FINGERPRINT = text(
    """
    SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
        SELECT 'c ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' '
               || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') AS item
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
           AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL SELECT 'i ' || pg_get_indexdef(i.indexrelid)
          FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = current_schema()::regnamespace
        UNION ALL SELECT 'k ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
        UNION ALL SELECT 't ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
        UNION ALL SELECT 'r ' || relkind::text || ' ' || relname FROM pg_class
         WHERE relnamespace = current_schema()::regnamespace AND relkind NOT IN ('r', 'p', 'i')
        UNION ALL SELECT 'v ' || version_num FROM alembic_version
    ) AS schema_items
    """
)
_OTHER_SESSIONS = text(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _fingerprint(conn: Connection) -> str:
    """The schema of *conn*'s database as one string (raises if alembic_version is gone)."""
    return str(conn.execute(_FINGERPRINT).scalar_one())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dump_rows(engine: Engine) -> bytes:
    """Every row of every table of *engine*'s database, as bytes (bytes columns raw, others
    as text): for tests that must find no secret anywhere in a database without a file."""
    out = bytearray()
    with engine.connect() as c:
        for table in sorted(inspect(c).get_table_names()):
            out += f"\n== {table}\n".encode()
            for row in c.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        out += bytes(value)
                    else:
                        out += str(value).encode()
                    out += b"\t"
                out += b"\n"
    return bytes(out)


def database_bytes(url: str) -> bytes:
    """What a database at *url* holds, as bytes: an SQLite file with its WAL and shared
    memory (deleted rows' leftovers included), or every row of every table otherwise."""
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        paths = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        return b"".join(p.read_bytes() for p in paths if p.exists())
    engine = engine_for(url)
    try:
        return dump_rows(engine)
    finally:
        engine.dispose()


# -- pytest plumbing (imported by tests/conftest.py) -----------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("both", *KINDS),
        default="both",
        help="which database the both_databases tests run on (default both; CI runs both)",
    )


def _kinds(config: pytest.Config) -> list[str]:
    chosen = str(config.getoption("--database"))
    return list(KINDS) if chosen == "both" else [chosen]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("both_databases") is None:
        return
    params = [
        pytest.param(kind, id=kind, marks=[pytest.mark.postgresql, pytest.mark.integration])
        if kind == "postgresql"
        else pytest.param(kind, id=kind)
        for kind in _kinds(metafunc.config)
    ]
    metafunc.parametrize("database", params, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--database sqlite|postgresql``: leave out tests parametrized on the other kind
    (also those pinned to it with ``parametrize("database", [...], indirect=True)``)."""
    kinds = _kinds(config)
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("database") if callspec is not None else None
        (drop if kind is not None and kind not in kinds else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def test_databases() -> Iterator[TestDatabases]:
    dbs = TestDatabases(os.environ.get("FIRSTLINE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    yield dbs
    dbs.close()


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest, test_databases: TestDatabases) -> str:
    """``"sqlite"`` or ``"postgresql"`` (see the module docstring)."""
    kind: str = getattr(request, "param", "sqlite")
    problem = None
    if kind == "postgresql":
        try:
            test_databases.template()  # fail here, once, with the reason, when the server is not there
        except PostgresUnavailable as exc:
            problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    return kind


@pytest.fixture
def make_database_url(database: str, test_databases: TestDatabases) -> Iterator[MakeDatabaseUrl]:
    made: list[tuple[str, bool]] = []

    def make(sqlite_file: Path, *, migrated: bool = True) -> str:
        try:
            url = test_databases.url(database, sqlite_file, migrated=migrated)
        except PostgresUnavailable as exc:
            problem = str(exc)
        else:
            made.append((url, migrated))
            return url
        pytest.fail(problem, pytrace=False)

    yield make
    for url, migrated in made:
        test_databases.release(url, migrated=migrated)


@pytest.fixture
def database_url(make_database_url: MakeDatabaseUrl, tmp_path: Path) -> str:
    return make_database_url(tmp_path / "ledger.db")


def engine_for(url: str) -> Engine:
    """A plain engine without a pool (tests reading or poking at a database directly)."""
    kwargs: dict[str, Any] = {"poolclass": NullPool}
    return create_engine(url, **kwargs)
