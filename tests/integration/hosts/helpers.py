"""Helpers for the host tests: connectors built from the lab inventory, real CUPS state,
the WinRM emulator's control endpoint, and processes of the SSH service user."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from connectors.registry import registry
from connectors.ssh import SshConnector, SshTargetConfig
from connectors.winrm import WinrmConnector, WinrmTargetConfig
from runner.inventory import load_inventory
from runner.secrets import SecretStore

REPO = Path(__file__).resolve().parents[3]
LAB = REPO / "lab"
VAR = REPO / "var" / "lab"
CUPS_SOCK = VAR / "cups" / "run" / "cups.sock"
SVC_USER = "svc-firstline"
SVC_LAB = Path("/home/svc-firstline/lab")


def inventory_target(name: str) -> Any:
    return load_inventory(LAB / "inventory.yaml", registry()).target(name)


def ssh_connector(**update: Any) -> SshConnector:
    base = inventory_target("print-01")
    cfg = SshTargetConfig.model_validate({**base.model_dump(), **update})
    return SshConnector("print-01", cfg, SecretStore(LAB))


def winrm_connector(**update: Any) -> WinrmConnector:
    base = inventory_target("print-win-01")
    cfg = WinrmTargetConfig.model_validate({**base.model_dump(), **update})
    return WinrmConnector("print-win-01", cfg, SecretStore(LAB))


# -- CUPS: the real queue, read and fed locally (the test machine is the print server) --------
def _cups(*argv: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, CUPS_SERVER=str(CUPS_SOCK))
    return subprocess.run(list(argv), input=data, env=env, capture_output=True, check=False, timeout=30)


def submit_held(queue: str, n: int, title: str = "fl-test") -> None:
    for i in range(n):
        proc = _cups("lp", "-d", queue, "-H", "hold", "-t", f"{title}-{i}", data=b"hello\n")
        assert proc.returncode == 0, proc.stderr


def queue_jobs(queue: str) -> list[str]:
    proc = _cups("lpstat", "-o", queue)
    assert proc.returncode == 0, proc.stderr
    return [line.split()[0] for line in proc.stdout.decode().splitlines() if line.strip()]


def cancel_all(queue: str) -> None:
    _cups("cancel", "-a", queue)


# -- processes of the service user ---------------------------------------------------------
def svc_processes() -> list[str]:
    out = subprocess.run(["ps", "-u", SVC_USER, "-o", "stat=,args="], capture_output=True, text=True, check=False)
    return [line.split(None, 1)[1] for line in out.stdout.splitlines() if " " in line and not line.startswith("Z")]


def service_pid(name: str) -> int | None:
    pf = SVC_LAB / "run" / f"{name}.pid"
    try:
        pid = int(pf.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return None if ") Z" in stat else pid


def as_svc(*argv: str) -> None:
    subprocess.run(["runuser", "-u", SVC_USER, "--", *argv], check=True, capture_output=True, timeout=30)


# -- the WinRM emulator's control endpoint -------------------------------------------------
class Emulator:
    url = "https://127.0.0.1:15986/_emulator/"

    def __init__(self) -> None:
        self.token = (VAR / "winrm" / "secrets" / "control_token").read_text().strip()
        self.ctx = ssl.create_default_context(cafile=str(VAR / "ca" / "ca.crt"))

    def _call(self, path: str, data: Any = None) -> dict[str, Any]:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=body,
            headers={"X-Emulator-Token": self.token},
            method="POST" if body is not None else "GET",
        )
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
            result: dict[str, Any] = json.load(resp)
            return result

    def state(self) -> dict[str, Any]:
        return self._call("state")

    def reset(self) -> dict[str, Any]:
        return self._call("reset", {})

    def seed(self, **data: Any) -> dict[str, Any]:
        return self._call("seed", data)
