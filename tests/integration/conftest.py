"""Shared fixtures for integration tests: an isolated ledger per test over the lab inventory.

Area conftests (directory/, hosts/) start the real lab services they need.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.api import open_app
from runner.service import Firstline
from runner.settings import Settings
from tests.databases import MakeDatabaseUrl, database_bytes

REPO = Path(__file__).resolve().parents[2]


def start_lab(*services: str) -> None:
    """Start lab services (idempotent); fail the test run with the script's output if one cannot start."""
    for svc in services:
        proc = subprocess.run(
            ["bash", str(REPO / "lab" / f"{svc}.sh"), "start"], capture_output=True, text=True, timeout=600, check=False
        )
        if proc.returncode != 0:
            pytest.fail(f"lab service {svc} did not start:\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture
def lab_settings(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> Settings:
    """SQLite ``<tmp>/ledger.db``; a fresh PostgreSQL database in ``both_databases`` modules."""
    return Settings(
        environment="test",
        database_url=make_database_url(tmp_path / "ledger.db"),
        runbooks_dir=REPO / "runbooks",
        inventory=REPO / "lab" / "inventory.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "firstline.log",
        checkpoint_every=10,
    )


@pytest.fixture
def lab_app(lab_settings: Settings) -> Iterator[Firstline]:
    app = open_app(lab_settings)
    yield app
    app.close()


def store_bytes(app: Firstline) -> bytes:
    """Everything Firstline persisted for this app: the database (SQLite: its file, WAL and
    shared memory; PostgreSQL: every row of every table), logs, audit checkpoints, exports."""
    s = app.settings
    paths = [s.audit_key_file.parent / "audit-checkpoints.jsonl"]
    if s.log_file is not None:
        paths.append(s.log_file)
    blob = database_bytes(s.database_url) + b"".join(p.read_bytes() for p in paths if p.exists())
    blob += "".join(app.export_audit("jsonl")).encode() + "".join(app.export_audit("csv")).encode()
    return blob
