"""The run seam on a real PostgreSQL (127.0.0.1:5432, a fresh database per test): the claim
is atomic across threads and across processes (the latter on SQLite too), redelivery does nothing, step rows are
visible to another process while a step runs, the sweep ends stale queued and running
tickets, an old ``in_progress`` ticket migrates to ``running``, and a production service
never migrates as a side effect (``firstline db upgrade`` does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text, update

from runner.errors import LedgerError
from runner.ledger import store
from runner.ledger.tables import step_result, ticket
from runner.service import Firstline
from runner.settings import Settings
from tests.fakes import FakeConnector
from tests.unit.core.conftest import RESET, UNLOCK

pytestmark = pytest.mark.integration
ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parents[3]
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"fl_seam_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the machine kind starts PostgreSQL; say so plainly if it is not there
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not usable: {exc}")
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _settings(tmp_path: Path, url: str, environment: str = "test") -> Settings:
    books = tmp_path / "runbooks"
    if not books.exists():
        books.mkdir()
        (books / "fake-unlock.yaml").write_text(UNLOCK)
        (books / "fake-reset.yaml").write_text(RESET)
        (tmp_path / "inventory.yaml").write_text("defaults: {fake: f1}\ntargets:\n  f1: {connector: fake}\n")
        (tmp_path / "audit.key").write_text("k" * 64)
        (tmp_path / "audit.key").chmod(0o600)
    return Settings(
        environment=environment,  # type: ignore[arg-type]
        database_url=url,
        runbooks_dir=books,
        inventory=tmp_path / "inventory.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "fl.log",
    )


@pytest.fixture(autouse=True)
def _reset_fake() -> Iterator[None]:
    FakeConnector.script = {}
    FakeConnector.calls = []
    yield


@pytest.fixture
def app(tmp_path: Path, pg_url: str) -> Iterator[Firstline]:
    fl = Firstline(_settings(tmp_path, pg_url), connectors={"fake": FakeConnector})
    fl.vet("fake-unlock", "reviewer")
    fl.vet("fake-reset", "reviewer")
    yield fl
    fl.close()


class Manual:
    name = "manual"

    def __init__(self) -> None:
        self.sent: list[int] = []

    @contextmanager
    def reserve(self) -> Iterator[Any]:
        yield self.sent.append

    def depth(self) -> int:
        return 0

    def close(self) -> None:
        return None


def _submit(app: Firstline, user: str = "alice") -> Any:
    return app.submit(
        "fake-unlock", {"user": user}, requester="agent7", roles={"agent"}, channel="api", dispatcher=Manual()
    )


def test_threads_claiming_one_ticket_run_it_once(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}] * 8, "unlock_account": [{}] * 8}
    for round_ in range(3):
        sub = _submit(app, f"user{round_}")
        barrier = threading.Barrier(8)
        results: list[Any] = []

        def worker(
            tid: int = sub.ticket_id, barrier: threading.Barrier = barrier, results: list[Any] = results
        ) -> None:
            barrier.wait()
            results.append(app.execute(tid))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r is not None for r in results) == 1, round_
    assert [c[1] for c in FakeConnector.calls].count("unlock_account") == 3
    assert app.verify_audit().ok


_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from runner.service import Firstline
    from runner.settings import Settings
    from tests.fakes import FakeConnector
    cfg = json.loads(sys.argv[1])
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    app = Firstline(Settings(**cfg["settings"]), connectors={"fake": FakeConnector})
    while time.time() < cfg["at"]:
        time.sleep(0.001)
    out = app.execute(cfg["ticket"])
    print(json.dumps({"ran": out is not None, "calls": [c[1] for c in FakeConnector.calls]}))
    """
)


def test_processes_claiming_one_ticket_run_it_once_on_sqlite(tmp_path: Path) -> None:
    sqlite_app = Firstline(_settings(tmp_path, f"sqlite:///{tmp_path / 'seam.db'}"), connectors={"fake": FakeConnector})
    try:
        sqlite_app.vet("fake-unlock", "reviewer")
        test_processes_claiming_one_ticket_run_it_once(sqlite_app, tmp_path)
    finally:
        sqlite_app.close()


def test_processes_claiming_one_ticket_run_it_once(app: Firstline, tmp_path: Path) -> None:
    sub = _submit(app)
    s = app.settings
    cfg = {
        "settings": {
            "environment": "test",
            "database_url": s.database_url,
            "runbooks_dir": str(s.runbooks_dir),
            "inventory": str(s.inventory),
            "audit_key_file": str(s.audit_key_file),
            "log_file": str(tmp_path / "worker.log"),
        },
        "ticket": sub.ticket_id,
        "at": time.time() + 6,  # every process is up and connected before they race
    }
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, json.dumps(cfg)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
        )
        for _ in range(4)
    ]
    outs = [json.loads((p.communicate(timeout=120)[0] or "{}").strip().splitlines()[-1]) for p in procs]
    assert sum(o["ran"] for o in outs) == 1, outs
    assert sum(o["calls"].count("unlock_account") for o in outs) == 1
    with app.engine.connect() as c:
        assert c.execute(select(ticket.c.state).where(ticket.c.id == sub.ticket_id)).scalar() == "resolved"
        assert len(c.execute(select(step_result).where(step_result.c.ticket_id == sub.ticket_id)).all()) == 3


def test_another_process_sees_the_running_step_row(app: Firstline) -> None:
    proceed = threading.Event()

    def unlock(_inputs: dict[str, Any]) -> dict[str, Any]:
        assert proceed.wait(20)
        return {"changed": True}

    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [unlock]}
    sub = _submit(app)
    runner = threading.Thread(target=app.execute, args=(sub.ticket_id,))
    runner.start()
    reader = create_engine(app.settings.database_url)  # its own connections, as another process would
    try:
        from runner.ledger.progress import events_after

        deadline = time.monotonic() + 20
        seen = None
        while time.monotonic() < deadline:
            got = events_after(reader, sub.ticket_id, 0)
            assert got is not None
            if any(st["step_id"] == "unlock" and st["status"] == "running" for st in got.steps):
                seen = got
                break
            time.sleep(0.02)
        assert seen is not None and seen.state == "running" and not seen.done
        proceed.set()
        runner.join(20)
        final = events_after(reader, sub.ticket_id, seen.last_seq)
        assert final is not None and final.done and final.state == "resolved"
        assert [(st["step_id"], st["status"]) for st in final.steps] == [("unlock", "ok"), ("verify", "ok")]
    finally:
        proceed.set()
        reader.dispose()


def test_sweep_and_redelivery_on_postgresql(app: Firstline) -> None:
    queued, running = _submit(app, "q1"), _submit(app, "r1")
    past = "2000-01-01T00:00:00.000000+00:00"
    with app.engine.begin() as c:
        c.execute(update(ticket).where(ticket.c.id == queued.ticket_id).values(deadline_at=past))
        c.execute(update(ticket).where(ticket.c.id == running.ticket_id).values(state="running", deadline_at=past))
    assert app.sweep() == [queued.ticket_number, running.ticket_number]
    with app.engine.connect() as c:
        rows = c.execute(select(ticket.c.id, ticket.c.state, ticket.c.reason).order_by(ticket.c.id)).all()
    assert [(r.state, r.reason) for r in rows] == [("escalated", "never_started"), ("escalated", "run_lost")]
    assert app.execute(queued.ticket_id) is None and FakeConnector.calls == []


def test_old_in_progress_ticket_migrates_to_running(pg_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = create_engine(pg_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ticket (requester, subject, channel, category, type, runbook, runbook_sha256, params,"
                " state, impact, urgency, priority, correlation_id, opened_at, updated_at, deadline_at) VALUES"
                " ('a','a','cli','c','request','r','s','{}','in_progress',3,2,4,'x','t','t','t')"
            )
        )
    store.upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT state FROM ticket")).scalar() == "running"
        conn.execute(text("UPDATE ticket SET state = 'awaiting_approval'"))  # 17 characters fit now
    engine.dispose()


def test_production_needs_db_upgrade_and_the_command_does_it(pg_url: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path, pg_url, environment="prod")
    with pytest.raises(LedgerError, match="firstline db upgrade"):
        Firstline(settings, connectors={"fake": FakeConnector})
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update(
        FIRSTLINE_ENVIRONMENT="prod",
        FIRSTLINE_DATABASE_URL=pg_url,
        FIRSTLINE_AUDIT_KEY_FILE=str(tmp_path / "audit.key"),
        FIRSTLINE_DATA_DIR=str(tmp_path / "data"),
    )
    r = subprocess.run(
        [FIRSTLINE, "tickets", "list"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "firstline db upgrade" in r.stderr, r.stderr
    r = subprocess.run([FIRSTLINE, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and store.HEAD_REVISION in r.stdout, r.stderr
    app = Firstline(settings, connectors={"fake": FakeConnector})  # current now: opens without migrating
    app.close()
    r = subprocess.run(
        [FIRSTLINE, "tickets", "list"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
