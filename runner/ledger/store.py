"""Database engine and migrations. SQLite runs in WAL mode with one writer at a time."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from runner.errors import ConfigError, LedgerError
from runner.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision: migrations are named NNNN_<what>.py with revision "NNNN", each revising
# the one before (a unit test checks this is Alembic's single head).
REVISIONS = frozenset(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
HEAD_REVISION = max(REVISIONS)


def _unknown_revision(current: str) -> LedgerError:
    """A schema revision this Firstline has no migration for: written by a newer Firstline
    (downgrading is not supported) or by hand. Was Alembic's ``CommandError``, exit 3."""
    return LedgerError(
        f"the database (FIRSTLINE_DATABASE_URL) is at schema revision {current[:32]!r}, which this Firstline "
        f"does not know (it knows up to {HEAD_REVISION}): a newer Firstline wrote it? Run that version, or "
        "restore a backup made by this one"
    )


CONNECT_TIMEOUT = 5  # seconds for PostgreSQL to answer a new connection (the URL's ?connect_timeout= wins)


def make_engine(url: str, settings: Settings | None = None) -> Engine:
    """An engine for *url*. SQLite: WAL, ``BEGIN IMMEDIATE`` (see below). Any other database
    (PostgreSQL): a ``QueuePool`` sized by *settings* (their defaults when None) —
    ``database_pool_size`` connections kept open per process, up to ``database_max_overflow``
    more under load, ``database_pool_timeout`` seconds to wait for one before the checkout
    fails, connections older than ``database_pool_recycle`` seconds replaced, and each
    checked with a ping first (``database_pool_pre_ping``) so one dropped by a server restart
    is replaced instead of failing a request; a PostgreSQL connection that gets no answer
    fails after ``CONNECT_TIMEOUT`` seconds. Raises ``ConfigError`` for a URL or driver that
    cannot be used (never quoting the URL): the one place where such a URL becomes a sentence."""
    if any(not ch.isprintable() for ch in url):
        raise ConfigError(
            "FIRSTLINE_DATABASE_URL contains a line break or control character (the value is not shown); "
            "set it to the URL alone"
        )
    if url.startswith("sqlite:") and url.split("?", 1)[0] in (
        "sqlite:",
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
    ):
        # each connection would get a database of its own, and everything is gone at exit
        raise ConfigError(
            "FIRSTLINE_DATABASE_URL names an in-memory SQLite database, which keeps nothing; "
            "give a file, e.g. sqlite:////var/lib/firstline/firstline.db"
        )
    try:
        if url.startswith("sqlite:///"):
            from runner.settings import private_dir  # here: settings imports the ledger's tables

            private_dir(Path(url.removeprefix("sqlite:///")).parent)  # 0700, as every data directory
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            # pysqlite's own BEGIN handling is replaced by BEGIN IMMEDIATE: writers queue
            # instead of failing with "database is locked" half-way through a transaction.
            event.listen(engine, "begin", _begin_immediate)
        else:
            parsed = make_url(url)
            if parsed.host and any(ch in parsed.host for ch in "@/"):
                # "user:p@ss@host": the driver would report the rest of the password as a host name
                raise ConfigError(
                    "FIRSTLINE_DATABASE_URL: the host part is not a host name; percent-encode @ : / % in the "
                    "user and password (@ is %40)"
                )
            connect_args: dict[str, Any] = {}
            if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
                connect_args["connect_timeout"] = CONNECT_TIMEOUT  # libpq waits for ever on a silent port
            engine = create_engine(
                url,
                connect_args=connect_args,
                poolclass=QueuePool,
                pool_size=_pool_option(settings, "database_pool_size"),
                max_overflow=_pool_option(settings, "database_max_overflow"),
                pool_timeout=_pool_option(settings, "database_pool_timeout"),
                pool_recycle=_pool_option(settings, "database_pool_recycle"),
                pool_pre_ping=_pool_option(settings, "database_pool_pre_ping"),
            )
    except ImportError as exc:
        hint = "install it or use another URL"
        if _scheme(url) == "postgresql":  # SQLAlchemy's default PostgreSQL driver is not the one installed
            hint = "write postgresql+psycopg2://user:password@host:5432/database (the driver Firstline installs)"
        raise ConfigError(
            f"FIRSTLINE_DATABASE_URL names a database whose driver is not installed "
            f"({_scheme(url)}: Python module '{exc.name or '?'}' missing); {hint}"
        ) from exc
    except (SQLAlchemyError, ValueError) as exc:
        # the library's text may quote the whole URL, password included: never shown
        raise ConfigError(
            f"FIRSTLINE_DATABASE_URL is not a database URL Firstline can use (scheme '{_scheme(url)}'); "
            "e.g. sqlite:////var/lib/firstline/firstline.db or postgresql+psycopg2://user@host/db"
        ) from exc
    except OSError as exc:  # the SQLite file's directory cannot be created
        raise ConfigError(
            f"FIRSTLINE_DATABASE_URL cannot be used: {exc.filename or ''}: {exc.strerror or type(exc).__name__}"
        ) from exc
    return engine


def _pool_option(settings: Settings | None, name: str) -> Any:
    """*settings*' value of the pool setting *name*, or the setting's default."""
    return getattr(settings, name) if settings is not None else Settings.model_fields[name].default


def _scheme(url: str) -> str:
    """The URL's scheme (``postgresql+psycopg``), clipped to safe characters; never the rest."""
    head = url.split("://", 1)[0] if "://" in url else ""
    return "".join(ch for ch in head[:40] if ch.isalnum() or ch in "+-._") or "none"


READ_ONLY = "firstline_read_only"  # execution option set by ``reading``


def _begin_immediate(conn: Connection) -> None:
    # Straight to the driver: this runs once per transaction on the hot path. A reader
    # (``reading``) takes a deferred BEGIN: in WAL mode it sees a snapshot and never waits
    # for, nor holds up, the single writer; every other transaction may write and so takes
    # the write lock up front (BEGIN IMMEDIATE), queueing instead of failing half-way.
    begin = "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"
    conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]


# SQLite's lower() folds ASCII letters only ('Ä' stays 'Ä'); PostgreSQL's folds them all.
# Every SQLite connection gets this one, Python's str.lower, for the auditor's
# case-insensitive "part of" target (``runner.queries._Lower``).
SQLITE_LOWER = "firstline_lower"


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    dbapi_conn.create_function(SQLITE_LOWER, 1, _unicode_lower, deterministic=True)
    cur = dbapi_conn.cursor()
    # WAL is a property of the file and outlives this connection: set it on an empty file
    # or Firstline's own, never on another application's database (refused by ``upgrade``
    # and ``ensure_schema`` without changing anything in it, its journal mode included).
    tables = {row[0] for row in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables or "alembic_version" in tables:
        cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic), quickly when already there."""
    try:
        with engine.connect() as conn:
            current = _current_revision(conn)
            if current == HEAD_REVISION:
                return
            if current is not None and current not in REVISIONS:
                raise _unknown_revision(current)
            if current is None and (tables := inspect(conn).get_table_names()):
                # another application's database: never add our tables beside its own
                raise LedgerError(
                    f"FIRSTLINE_DATABASE_URL: the database holds {len(tables)} table(s) but no Firstline schema "
                    "(another application's database?); point it at an empty database or Firstline's own"
                )
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise LedgerError(f"database is not usable (FIRSTLINE_DATABASE_URL): {_first_line(exc)}") from exc


def _first_line(exc: SQLAlchemyError) -> str:
    """The driver's reason, first line only (``connection refused``), with its class name.
    The URL (and its password) is never part of it: drivers name host and port only; the
    password is masked in every log too (``runner.api`` remembers it)."""
    orig = getattr(exc, "orig", None)
    reason = str(orig if orig is not None else exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {reason[0][:300] if reason else ''}".rstrip(": ")


def ensure_schema(engine: Engine, *, migrate: bool) -> None:
    """Make sure the schema is current: migrate it (*migrate*), or check it is at
    ``HEAD_REVISION`` and raise ``LedgerError`` naming ``firstline db upgrade`` when not."""
    if migrate:
        upgrade(engine)
        return
    try:
        with engine.connect() as conn:
            current = _current_revision(conn)
            tables = inspect(conn).get_table_names() if current is None else []
    except SQLAlchemyError as exc:
        raise LedgerError(f"database is not usable (FIRSTLINE_DATABASE_URL): {_first_line(exc)}") from exc
    if current is None and tables:
        raise LedgerError(
            f"FIRSTLINE_DATABASE_URL: the database holds {len(tables)} table(s) but no Firstline schema "
            "(another application's database?); point it at an empty database or Firstline's own"
        )
    if current is not None and current not in REVISIONS:
        raise _unknown_revision(current)
    if current != HEAD_REVISION:
        found = f"at revision {current}" if current else "empty (no Firstline schema)"
        raise LedgerError(
            f"the database (FIRSTLINE_DATABASE_URL) is {found}; this Firstline needs revision {HEAD_REVISION}. "
            "Run `firstline db upgrade` first."
        )


def _current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return row[0] if row else None


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only (nothing it writes is committed).

    On SQLite it begins a deferred transaction, so a page or a progress stream reading
    the ledger does not queue behind a run's step writes (WAL readers see the last
    committed snapshot); on PostgreSQL it is an ordinary connection from the pool.
    Raises nothing itself; the driver's errors surface as ``sqlalchemy.exc.SQLAlchemyError``
    from ``execute`` as with ``engine.connect()``.
    """
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        yield conn


def first_row(engine: Engine, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    """The first row of one read-only *sql* statement (``?`` placeholders, *params* in
    order) as a column-name → value dict, or None; straight on the pooled DBAPI connection.

    For the few reads on every request's path (the session look-up): SQLAlchemy's
    statement and result machinery costs about 35 µs of the ~55 µs such a read takes on
    SQLite (measured 2026-11-30, runner/auth.py). *sql* is a constant of ours, never built
    from input. SQLite runs it as its own read transaction (autocommit connection); on
    PostgreSQL the pool's reset-on-return ends the transaction. Raises ``LedgerError``.
    """
    style = engine.dialect.paramstyle
    if style in ("format", "pyformat"):
        sql = sql.replace("?", "%s")
    elif style != "qmark":  # pragma: no cover - drivers Firstline supports use one of these
        raise ConfigError(f"database driver paramstyle {style!r} is not supported")
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(sql, params)
                row = cursor.fetchone()
                names = [d[0] for d in cursor.description or ()]
            finally:
                cursor.close()
        finally:
            raw.close()  # back to the pool (rolled back there)
    except Exception as exc:  # the DBAPI's own error classes differ per driver
        raise LedgerError(f"ledger read failed: {exc.__class__.__name__}") from exc
    return dict(zip(names, row, strict=True)) if row is not None else None


AFTER_COMMIT = "firstline.after_commit"


def after_commit(conn: Connection, work: Callable[[], object]) -> None:
    """Run *work* once the transaction *conn* is in has committed, and never if it rolls
    back (``transaction`` and ``write_retrying`` run it; any other writer leaves it to the
    next one of those on the same pooled connection, or drops it). For what must follow a
    commit outside the database, such as the audit checkpoint file (``AuditLog``): written
    inside the transaction, a rolled-back or retried append would leave a signed line
    naming a hash the chain never had. *work* must not raise."""
    conn.info.setdefault(AFTER_COMMIT, []).append(work)


BEFORE_COMMIT = "firstline.before_commit"


def before_commit(conn: Connection, work: Callable[[], object]) -> bool:
    """Run *work* as the last thing of the transaction *conn* is in, right before its
    commit (inside it: what *work* writes commits or rolls back with the rest), when that
    transaction is run by ``transaction`` or ``write_retrying``; returns False, and
    registers nothing, for any other transaction. Hooks run in the order registered; one
    may register another. For what should hold a contended lock for as short a time as
    possible: the audit chain's head (``AuditLog.append``)."""
    found: list[Callable[[], object]] | None = conn.info.get(BEFORE_COMMIT)
    if found is None:
        return False
    found.append(work)
    return True


def _run_before_commit(info: dict[Any, Any]) -> None:
    found: list[Callable[[], object]] = info.get(BEFORE_COMMIT) or []
    while found:
        found.pop(0)()


def _take_after_commit(info: dict[Any, Any]) -> list[Callable[[], object]]:
    found: list[Callable[[], object]] = info.pop(AFTER_COMMIT, None) or []
    return found


def _run_after_commit(work: list[Callable[[], object]]) -> None:
    for fn in work:
        fn()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed when the block ends, rolled back when it raises.
    ``LedgerError`` for the database's errors. What the block registered with
    ``before_commit`` runs at the block's end, inside the transaction; what it registered
    with ``after_commit`` runs after the commit, outside the writer lock."""
    done: list[Callable[[], object]] = []
    try:
        with writer(engine), engine.begin() as conn:
            # conn.info read once: once the database dropped the connection inside the
            # transaction, asking again raises PendingRollbackError over the real error
            info = conn.info
            _take_after_commit(info)  # left by a writer that never ran them
            info[BEFORE_COMMIT] = []
            try:
                yield conn
                _run_before_commit(info)
            finally:
                info.pop(BEFORE_COMMIT, None)
                done = _take_after_commit(info)
    except SQLAlchemyError as exc:
        raise LedgerError(f"ledger write failed: {exc.__class__.__name__}") from exc
    _run_after_commit(done)


_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_WRITERS_MU = threading.Lock()


WRITER_WAIT = 30.0  # seconds, as SQLite's own busy timeout (make_engine)


def writer(engine: Engine) -> AbstractContextManager[Any]:
    """On SQLite, one write transaction at a time per process, queued on a lock in this
    process: SQLite lets one writer in and makes the others retry with sleeps that grow to
    100 ms (its busy handler), so under load a writer could sleep while the database was
    free (request p99 1.4–1.8 s in ``bench/burst.py``'s embedded case). Other processes
    still meet SQLite's own lock. On other databases: nothing (they queue writers themselves).
    ``LedgerError`` after ``WRITER_WAIT`` seconds, as SQLite's own "database is locked"."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITERS_MU:
        found = _WRITERS.get(engine)
        if found is None:
            found = _WRITERS[engine] = threading.RLock()
    return _held(found)


@contextmanager
def _held(lock: threading.RLock) -> Iterator[None]:
    if not lock.acquire(timeout=WRITER_WAIT):
        raise LedgerError(f"ledger write failed: the database stayed busy for {WRITER_WAIT:g} s")
    try:
        yield
    finally:
        lock.release()


T = TypeVar("T")


def _connection_lost(exc: SQLAlchemyError) -> bool:
    """The database went away or is restarting (not a constraint or a mistake of ours)."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def write_retrying(engine: Engine, work: Callable[[Connection], T], *, seconds: float) -> T:
    """``work(conn)`` in one transaction, tried again on a fresh connection while the
    database is unreachable (``OperationalError`` or an invalidated connection: a
    PostgreSQL restart takes about half a second) for up to *seconds*, waiting 0.1 s
    doubling to 1 s between tries. *work* must only write through *conn* (it may run more
    than once; every try but the last is rolled back). A failure while committing is not
    tried again (the commit may have been applied): ``LedgerError``, as for any other error
    or when *seconds* have passed.
    """
    deadline = time.monotonic() + seconds
    pause = 0.1
    while True:
        committing = False
        try:
            with writer(engine), engine.connect() as conn:
                # read once, as in ``transaction``: a connection the database dropped
                # mid-transaction (a PostgreSQL restart) must still be tried again below
                info = conn.info
                trans = conn.begin()
                _take_after_commit(info)
                info[BEFORE_COMMIT] = []
                try:
                    result = work(conn)
                    _run_before_commit(info)
                except BaseException:
                    _take_after_commit(info)  # this try's: it is rolled back
                    if trans.is_active:
                        trans.rollback()
                    raise
                finally:
                    info.pop(BEFORE_COMMIT, None)
                done = _take_after_commit(info)
                committing = True
                trans.commit()
            _run_after_commit(done)
            return result
        except SQLAlchemyError as exc:
            if committing or not _connection_lost(exc) or time.monotonic() + pause > deadline:
                raise LedgerError(f"ledger write failed: {exc.__class__.__name__}") from exc
        time.sleep(pause)
        pause = min(1.0, pause * 2)
