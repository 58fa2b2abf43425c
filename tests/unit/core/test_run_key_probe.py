"""Every process of one database must seal with the same run key (``runner.sealed.check_key``).

A worker started with another ``FIRSTLINE_RUN_KEY`` (or, in ``dev``, a key file of its own in
another data directory) took runs and escalated each one with a secret value
``secrets_unavailable``, nothing saying why (found by a tester). The probe row makes the
second key fail at start; a rotation (new key first, old key after) is accepted and seals
the probe again, after which a process with the old key alone is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from runner.errors import ConfigError
from runner.ledger.sealed_tables import run_key_probe
from runner.sealed import KEY_MISMATCH, RunKey, check_key
from runner.service import Firstline

A, B = Fernet.generate_key(), Fernet.generate_key()


def _token(app: Firstline) -> str:
    with app.engine.connect() as conn:
        return str(conn.execute(select(run_key_probe.c.token)).scalar_one())


def test_the_first_key_is_the_ledgers_and_another_one_is_refused(app: Firstline) -> None:
    check_key(app.engine, RunKey([A]))
    first = _token(app)
    check_key(app.engine, RunKey([A]))  # the same key again: fine, nothing rewritten
    assert _token(app) == first
    with pytest.raises(ConfigError) as info:
        check_key(app.engine, RunKey([B]))
    assert str(info.value) == KEY_MISMATCH
    assert _token(app) == first  # a refused key changes nothing


def test_a_rotation_is_accepted_and_then_the_old_key_alone_is_refused(app: Firstline) -> None:
    check_key(app.engine, RunKey([A]))
    check_key(app.engine, RunKey([B, A]))  # new key first, old after: the probe is sealed with B now
    assert RunKey([B]).open(_token(app)) is not None
    check_key(app.engine, RunKey([B]))
    with pytest.raises(ConfigError):
        check_key(app.engine, RunKey([A]))


def test_the_probe_holds_no_secret(app: Firstline) -> None:
    check_key(app.engine, RunKey([A]))
    assert RunKey([A]).open(_token(app)) == {"probe": "the run key of this ledger"}


def test_a_portal_with_another_key_exits_2_before_it_listens(tmp_path: Path) -> None:
    """``firstline serve``: one line on stderr, exit 2, nothing served."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update(
        FIRSTLINE_ENVIRONMENT="test",
        FIRSTLINE_DATA_DIR=str(data),
        FIRSTLINE_INVENTORY=str(Path(__file__).resolve().parents[3] / "lab" / "inventory.yaml"),
        FIRSTLINE_RUN_KEY=A.decode(),
    )
    firstline = str(Path(sys.executable).with_name("firstline"))
    seeded = subprocess.run([firstline, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    from runner.ledger.store import make_engine

    engine = make_engine(f"sqlite:///{data / 'firstline.db'}")
    try:
        check_key(engine, RunKey([A]))
    finally:
        engine.dispose()
    env["FIRSTLINE_RUN_KEY"] = B.decode()
    r = subprocess.run(
        [firstline, "serve", "--host", "127.0.0.1", "--port", "1"], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "FIRSTLINE_RUN_KEY is not the key the other processes" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "Firstline portal on" not in r.stdout
