"""``firstline serve --workers 2`` with a broker: several portal processes start and answer; a
once-only value sealed by one process is taken once by another (the post/redirect/get of a
temporary password works whichever process answers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from runner import sealed
from tests.integration.scaleout.conftest import FIRSTLINE, REDIS, _claim_redis_db
from tests.portal_support import free_port

pytestmark = pytest.mark.integration

TAKE = """
import json, sys
from runner import sealed
from runner.api import open_app
app = open_app()
args = json.loads(sys.argv[1])
print(json.dumps([sealed.take_once(app.engine, app.runs.run_key, args["token"], args["owner"], args["ticket"], 120)
                  for _ in range(2)]))
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def test_two_portal_processes_and_a_once_only_value_across_processes(
    make_stack: Any, request: pytest.FixtureRequest
) -> None:
    number = _claim_redis_db()  # checked at start and by /readyz; nothing is published here
    request.addfinalizer(lambda: redis.Redis(*REDIS, db=number).flushdb())
    stack = make_stack(f"redis://{REDIS[0]}:{REDIS[1]}/{number}")
    port = free_port()
    proc = subprocess.Popen(
        [FIRSTLINE, "serve", "--port", str(port), "--workers", "2"],
        env=stack.env, cwd=stack.data_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 40
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "portal did not answer /healthz"
            time.sleep(0.1)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)  # asks the broker too
        assert ready.status_code == 200 and ready.json()["checks"]["dispatcher"] == "ok", ready.text
        served = [p for p in _children(proc.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(served) == 2, served  # two portal processes
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    app = stack.app
    key = app.runs.run_key
    assert key is not None
    token = sealed.put_once(app.engine, key, "session-1", "FL-000042", "Tmp-Pw-7x9q", 120)
    with app.engine.connect() as conn:
        stored = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM once_secret")]
    assert stored and "Tmp-Pw-7x9q" not in repr(stored)
    assert sealed.take_once(app.engine, key, token, "session-2", "FL-000042", 120) is None  # another session
    args = json.dumps({"token": token, "owner": "session-1", "ticket": "FL-000042"})
    other = subprocess.run(
        [sys.executable, "-c", TAKE, args], env=stack.env, capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(other.stdout.strip().splitlines()[-1]) == ["Tmp-Pw-7x9q", None]  # once, in another process
