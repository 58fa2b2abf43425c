"""`firstline worker` says its ready and stopping lines in the CLI's language
(FIRSTLINE_LANG): they were English whatever the setting. A real worker on a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable

import pytest

from tests.integration.scaleout.conftest import FIRSTLINE, Stack, Worker

pytestmark = pytest.mark.integration


def test_the_worker_speaks_dutch_when_the_cli_does(broker_url: str, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(broker_url, lang="nl")
    proc = subprocess.Popen(
        [FIRSTLINE, "worker", "--concurrency", "1"],
        env=stack.env,
        cwd=stack.data_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = Worker(proc)
    stack.workers.append(worker)

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            worker.lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    ready = worker.wait_for("firstline-worker gereed: wachtrijen ")
    assert "-plaats(en); broker " in ready, ready
    os.kill(proc.pid, signal.SIGTERM)
    stopping = worker.wait_for("firstline-worker stopt")
    assert stopping.strip() == "firstline-worker stopt: de lopende uitvoeringen worden afgemaakt"
    proc.wait(timeout=30)
    assert not any("worker ready" in line or "worker stopping" in line for line in worker.seen), worker.seen
