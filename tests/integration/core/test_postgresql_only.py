"""What only PostgreSQL has (everything else runs on both databases, see tests/databases.py):
the row lock on the audit head that keeps the chain linear with concurrent writers, a server
database that is migrated only by ``firstline db upgrade``, and the connection pool
(``FIRSTLINE_DATABASE_POOL_*``): bounded per process, and dropped connections replaced."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url, select, text

from runner.errors import LedgerError
from runner.ledger import store
from runner.ledger.audit import Actor
from runner.ledger.tables import audit_event
from runner.service import Firstline
from runner.settings import Settings
from tests.databases import MakeDatabaseUrl, engine_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database", ["postgresql"], indirect=True, scope="session"),
]
REPO = Path(__file__).resolve().parents[3]
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")


def _settings(tmp_path: Path, url: str, **kw: Any) -> Settings:
    key = tmp_path / "audit.key"
    if not key.exists():
        key.write_text("k" * 64)
        key.chmod(0o600)
    return Settings(
        environment=kw.pop("environment", "test"),
        database_url=url,
        runbooks_dir=tmp_path,
        inventory=tmp_path / "none.yaml",
        audit_key_file=key,
        log_file=tmp_path / "fl.log",
        **kw,
    )


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Firstline]:
    fl = Firstline(_settings(tmp_path, database_url), connectors={})
    yield fl
    fl.close()


def _waiting_on_a_lock(app: Firstline) -> int:
    name = make_url(app.settings.database_url).database
    with app.engine.connect() as c:
        return int(
            c.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :n AND wait_event_type = 'Lock'"),
                {"n": name},
            ).scalar_one()
        )


def test_a_second_writer_waits_for_the_audit_head_and_the_chain_stays_linear(app: Firstline) -> None:
    """Writer A appends and holds its transaction open after its events were written (a
    ``before_commit`` hook after the audit's own); writer B's append waits on A's row lock
    on the audit head (seen in pg_stat_activity), then follows A's event. Without the lock B
    would read the same head and fork the chain (or fail on the duplicate seq)."""
    actor = Actor("agent7", ("agent",))
    a_appended, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer_a() -> None:
        try:
            with store.transaction(app.engine) as conn:
                app.audit.append(conn, actor, "test.first", outcome="success", target="a")

                def hold() -> None:  # runs after the audit's hook has written the event
                    a_appended.set()
                    assert release.wait(30)

                assert store.before_commit(conn, hold)
        except BaseException as exc:
            errors.append(exc)
            a_appended.set()

    def writer_b() -> None:
        try:
            with store.transaction(app.engine) as conn:
                app.audit.append(conn, actor, "test.second", outcome="success", target="b")
        except BaseException as exc:
            errors.append(exc)

    a = threading.Thread(target=writer_a)
    a.start()
    assert a_appended.wait(30)
    b = threading.Thread(target=writer_b)
    b.start()
    deadline = time.monotonic() + 30
    waiting = 0
    while time.monotonic() < deadline and not (waiting := _waiting_on_a_lock(app)) and b.is_alive():
        time.sleep(0.02)
    release.set()
    a.join(30)
    b.join(30)
    assert errors == []
    assert waiting == 1, "writer B never waited for writer A's lock on the audit head"
    with app.engine.connect() as c:
        rows = c.execute(select(audit_event.c.seq, audit_event.c.action).order_by(audit_event.c.seq)).all()
    assert [r.action for r in rows][-2:] == ["test.first", "test.second"]
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert app.verify_audit().ok


def test_a_server_database_is_migrated_only_by_db_upgrade(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> None:
    url = make_database_url(tmp_path / "unused.db", migrated=False)
    settings = _settings(tmp_path, url, environment="prod")
    with pytest.raises(LedgerError, match="firstline db upgrade"):
        Firstline(settings, connectors={})
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update(
        FIRSTLINE_ENVIRONMENT="prod",
        FIRSTLINE_DATABASE_URL=url,
        FIRSTLINE_AUDIT_KEY_FILE=str(tmp_path / "audit.key"),
        FIRSTLINE_DATA_DIR=str(tmp_path / "data"),
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FIRSTLINE, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    r = cli("tickets", "list")
    assert r.returncode == 2 and "firstline db upgrade" in r.stderr, r.stderr
    engine = engine_for(url)
    with engine.connect() as c:
        assert store._current_revision(c) is None  # the refused start migrated nothing
    engine.dispose()
    r = cli("db", "upgrade")
    assert r.returncode == 0 and store.HEAD_REVISION in r.stdout, r.stderr
    Firstline(settings, connectors={}).close()  # current now: opens without migrating
    assert cli("tickets", "list").returncode == 0


def test_the_pool_is_bounded_per_process_and_replaces_dropped_connections(tmp_path: Path, database_url: str) -> None:
    settings = _settings(
        tmp_path, database_url, database_pool_size=2, database_max_overflow=1, database_pool_timeout=0.5
    )
    app = Firstline(settings, connectors={})
    name = make_url(database_url).database
    others = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()")
    watcher = engine_for(database_url)
    try:
        held = [app.engine.connect() for _ in range(3)]  # pool_size + max_overflow
        with pytest.raises(sa_exc.TimeoutError):
            app.engine.connect()
        with watcher.connect() as w:
            assert w.execute(others, {"n": name}).scalar_one() == 3
        for conn in held:
            conn.close()
        with watcher.connect() as w:  # the two pooled connections stay open, the overflow one closed
            assert w.execute(others, {"n": name}).scalar_one() == 2
            w.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n "
                    "AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
        # both pooled connections are dead now: the pre-ping replaces them instead of failing
        assert app.list_tickets() == []
        assert app.verify_audit().ok
    finally:
        watcher.dispose()
        app.close()
