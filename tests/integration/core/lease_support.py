"""A connector for the worker-death and serialisation tests: its "directory" is a folder
(``FL_REC_DIR``), so several processes see the same accounts, and every call is appended
to ``calls.jsonl`` there (process id, action, user, start / end, wall-clock time), so the
test can count each step's invocations and compare the time intervals of processes.

``FL_REC_BLOCK=<action>``: the first call of that action in this process never returns
(it is killed there). ``FL_REC_HOLD=<action>``: the first call of that action waits for
the file ``go`` in the folder. Run as a script, it executes one ticket in a fresh process:
``python -m tests.integration.core.lease_support '<json: settings, ticket>'``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from connectors.base import ActionSpec, Connector, InputSpec, TargetConfig


class RecordingConfig(TargetConfig):
    label: str = "recording"


class RecordingConnector(Connector):
    """``account_status`` and ``unlock_account`` on accounts kept as files (``locked/<name>``:
    locked), names compared without case as a directory does."""

    name = "fake"
    config_model = RecordingConfig
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "account_status": ActionSpec("account_status", (InputSpec("user"),), outputs=frozenset({"locked"})),
        "unlock_account": ActionSpec(
            "unlock_account", (InputSpec("user"),), outputs=frozenset({"changed"}), changes_state=True
        ),
    }
    _used: ClassVar[set[str]] = set()

    @staticmethod
    def folder() -> Path:
        return Path(os.environ["FL_REC_DIR"])

    def _record(self, action: str, user: str, phase: str) -> None:
        line = json.dumps({"pid": os.getpid(), "action": action, "user": user, "phase": phase, "t": time.time()})
        with (self.folder() / "calls.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")  # one short O_APPEND write: whole lines from every process

    def _gate(self, action: str) -> None:
        first = action not in RecordingConnector._used
        RecordingConnector._used.add(action)
        if first and os.environ.get("FL_REC_BLOCK") == action:
            while True:
                time.sleep(3600)
        if first and os.environ.get("FL_REC_HOLD") == action:
            while not (self.folder() / "go").exists():
                time.sleep(0.02)

    def account_status(self, *, timeout: float, user: str) -> dict[str, Any]:
        self._record("account_status", user, "start")
        self._gate("account_status")
        locked = (self.folder() / "locked" / user.casefold()).exists()
        self._record("account_status", user, "end")
        return {"locked": locked}

    def unlock_account(self, *, timeout: float, user: str) -> dict[str, Any]:
        self._record("unlock_account", user, "start")
        self._gate("unlock_account")
        path = self.folder() / "locked" / user.casefold()
        changed = path.exists()
        path.unlink(missing_ok=True)
        self._record("unlock_account", user, "end")
        return {"changed": changed}


def calls(folder: Path) -> list[dict[str, Any]]:
    """Every recorded call event, in the order written."""
    path = folder / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    from runner.service import Firstline
    from runner.settings import Settings

    cfg = json.loads(sys.argv[1])
    app = Firstline(Settings(**cfg["settings"]), connectors={"fake": RecordingConnector})
    out = app.execute(cfg["ticket"])
    print(json.dumps({"state": out.state if out else None, "reason": out.reason if out else None}), flush=True)
    app.close()


if __name__ == "__main__":
    main()
