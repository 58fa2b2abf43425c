"""The run seam across processes, on SQLite and PostgreSQL (``both_databases``): four
processes that claim one queued ticket at the same instant run it once (the claim is one
atomic UPDATE in the ledger, whichever database holds it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from runner.ledger.tables import step_result, ticket
from runner.service import Firstline
from runner.settings import Settings
from tests.databases import MakeDatabaseUrl
from tests.fakes import FakeConnector, Manual
from tests.unit.core.conftest import UNLOCK

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
REPO = Path(__file__).resolve().parents[3]

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


@pytest.fixture
def app(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> Iterator[Firstline]:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "fake-unlock.yaml").write_text(UNLOCK)
    (tmp_path / "inventory.yaml").write_text("defaults: {fake: f1}\ntargets:\n  f1: {connector: fake}\n")
    settings = Settings(
        environment="test",
        database_url=make_database_url(tmp_path / "seam.db"),
        runbooks_dir=tmp_path / "runbooks",
        inventory=tmp_path / "inventory.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "fl.log",
    )
    FakeConnector.script, FakeConnector.calls = {}, []
    fl = Firstline(settings, connectors={"fake": FakeConnector})
    fl.vet("fake-unlock", "reviewer")
    yield fl
    fl.close()


def test_processes_claiming_one_ticket_run_it_once(app: Firstline, tmp_path: Path) -> None:
    sub = app.submit(
        "fake-unlock", {"user": "alice"}, requester="agent7", roles={"agent"}, channel="api", dispatcher=Manual()
    )
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
    # each worker's result is its one JSON line; a log line (stdout) may come before or after it
    outs = [
        json.loads([line for line in (p.communicate(timeout=120)[0] or "{}").splitlines() if line.startswith("{")][-1])
        for p in procs
    ]
    assert sum(o["ran"] for o in outs) == 1, outs
    assert sum(o["calls"].count("unlock_account") for o in outs) == 1
    with app.engine.connect() as c:
        assert c.execute(select(ticket.c.state).where(ticket.c.id == sub.ticket_id)).scalar() == "resolved"
        assert len(c.execute(select(step_result).where(step_result.c.ticket_id == sub.ticket_id)).all()) == 3
    assert app.verify_audit().ok
