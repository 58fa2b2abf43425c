"""``firstline run`` stopped by its operator (Ctrl-C, or SIGTERM from a supervisor) while a
step runs on a host: the remote command is stopped, the ticket ends escalated
``interrupted`` and says so, and the CLI exits 130 (security.md 50: a cancelled run stops
its remote work). Before, the remote process outlived the CLI and the ticket stayed running
until the sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.api import open_app
from runner.settings import Settings
from tests.integration.hosts.helpers import svc_processes

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
FIRSTLINE = str(Path(sys.executable).with_name("firstline"))


def _hanging() -> list[str]:
    return [p for p in svc_processes() if "sleep 3599" in p or "svcctl restart hangd" in p]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_stops_its_remote_work_and_ends_its_ticket(
    lab_hosts: None, tmp_path: Path, sig: signal.Signals
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")},
        "FIRSTLINE_ENVIRONMENT": "test",
        "FIRSTLINE_DATA_DIR": str(tmp_path / "var"),
        "FIRSTLINE_INVENTORY": str(REPO / "lab" / "inventory.yaml"),
        "FIRSTLINE_RUNBOOKS_DIR": str(REPO / "runbooks"),
    }
    proc = subprocess.Popen(
        [FIRSTLINE, "run", "service-restart", "-p", "service=lab-hang"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as at a terminal: a test run started in the background (CI) has SIGINT ignored, and a
        # child inherits that, so Python would never turn it into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while not _hanging() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _hanging(), "the hanging restart never started"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert "was interrupted; the remote process group was killed" in stdout, stdout
    assert _hanging() == []
    app = open_app(Settings(environment="test", data_dir=tmp_path / "var", inventory=REPO / "lab" / "inventory.yaml"))
    try:
        ticket = app.ticket("FL-000001")
        assert (ticket["state"], ticket["reason"]) == ("escalated", "interrupted")
        assert ticket["steps"][0]["status"] == "failed"
    finally:
        app.close()
