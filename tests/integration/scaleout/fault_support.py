"""Support for the fault tests (test_faults.py): a recording connector every process loads,
private broker and PostgreSQL instances the tests may restart, and the counts report.

* ``FaultConnector`` (connector name ``fake``): accounts are files in ``FL_FAULT_DIR``
  (``locked/<name>`` = locked) so every process sees one "directory"; each call appends a
  line to ``calls.jsonl`` there (pid, action, user, start/end, wall-clock time) with one
  short ``O_APPEND`` write, so calls are counted across processes. ``FL_FAULT_SLEEP``
  (seconds) stretches each call; ``FL_FAULT_STALL="account_status:chk,unlock_account:unl"``
  makes a call of that action on a user starting with that prefix wait until the file
  ``go`` exists in the folder (for ever if nobody writes it: the test kills the process).
* ``plugin_path(tmp)``: a folder holding a ``*.dist-info`` whose entry point registers
  ``FaultConnector`` in the ``firstline.connectors`` group; put it on ``PYTHONPATH`` and
  ``firstline worker`` / ``firstline serve`` load it like any installed connector.
* ``PrivateRedis`` / ``PrivateRabbit`` / ``PrivatePostgres``: the machine's own binaries,
  run the way the machine runs them (Redis without persistence, RabbitMQ with its durable
  defaults, PostgreSQL with ``pg_ctl``), on a free loopback port, so a test can restart
  the server without touching the machine services other tests and sessions share.
* ``report(name, counts)``: merges *counts* into ``var/fault-report.json`` of the repo.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from connectors.base import ActionSpec, Connector, InputSpec, TargetConfig

REPO = Path(__file__).resolve().parents[3]
REPORT = REPO / "var" / "fault-report.json"

UNLOCK_RUNBOOK = """\
schema_version: 1
name: fake-unlock
title: {en: Unlock an account, nl: Account ontgrendelen}
category: identity/account
type: incident
audience: [self_service, agent]
parameters:
  - {name: user, type: account, default: "{{ requester }}"}
steps:
  - id: check
    connector: fake
    action: account_status
    with: {user: "{{ params.user }}"}
  - id: unlock
    connector: fake
    action: unlock_account
    with: {user: "{{ params.user }}"}
    when: "{{ steps.check.locked }}"
verify: {connector: fake, action: account_status, with: {user: "{{ params.user }}"}, expect: {locked: false}}
on_failure: {escalate_to: service-desk-l2}
resolution: {code: solved_by_automation, note: "Account {{ params.user }} unlocked."}
"""
INVENTORY = "defaults: {fake: f1}\ntargets:\n  f1: {connector: fake}\n"


class FaultConfig(TargetConfig):
    label: str = "fault"


class FaultConnector(Connector):
    """``account_status`` (read) and ``unlock_account`` (state-changing) on file accounts."""

    name = "fake"
    config_model = FaultConfig
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "account_status": ActionSpec("account_status", (InputSpec("user"),), outputs=frozenset({"locked"})),
        "unlock_account": ActionSpec(
            "unlock_account", (InputSpec("user"),), outputs=frozenset({"changed"}), changes_state=True
        ),
    }

    @staticmethod
    def folder() -> Path:
        return Path(os.environ["FL_FAULT_DIR"])

    def _record(self, action: str, user: str, phase: str) -> None:
        line = json.dumps({"pid": os.getpid(), "action": action, "user": user, "phase": phase, "t": time.time()})
        with (self.folder() / "calls.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _gate(self, action: str, user: str) -> None:
        for rule in filter(None, os.environ.get("FL_FAULT_STALL", "").split(",")):
            stalled_action, _, prefix = rule.partition(":")
            if action == stalled_action and user.startswith(prefix):
                while not (self.folder() / "go").exists():
                    time.sleep(0.02)
        pause = float(os.environ.get("FL_FAULT_SLEEP", "0") or 0)
        if pause:
            time.sleep(pause)

    def account_status(self, *, timeout: float, user: str) -> dict[str, Any]:
        self._record("account_status", user, "start")
        self._gate("account_status", user)
        locked = (self.folder() / "locked" / user.casefold()).exists()
        self._record("account_status", user, "end")
        return {"locked": locked}

    def unlock_account(self, *, timeout: float, user: str) -> dict[str, Any]:
        self._record("unlock_account", user, "start")
        self._gate("unlock_account", user)
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


def plugin_path(where: Path) -> Path:
    """A folder for ``PYTHONPATH`` whose dist-info registers ``FaultConnector`` as ``fake``."""
    site = where / "fault-plugin"
    info = site / "firstline_fault_connector-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: firstline-fault-connector\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[firstline.connectors]\nfake = tests.integration.scaleout.fault_support:FaultConnector\n"
    )
    return site


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def report(name: str, counts: Mapping[str, Any]) -> str:
    """Merge *counts* under *name* into var/fault-report.json; returns them as one JSON line."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(REPORT.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data[name] = {**counts, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = REPORT.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(REPORT)
    return json.dumps(dict(counts), sort_keys=True)


def _wait(what: str, check: Any, limit: float) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {limit} s")


# -- Redis ------------------------------------------------------------------------------------
class PrivateRedis:
    """``redis-server`` as the machine runs it (daemonized, pidfile, ``--save ''
    --appendonly no``: nothing kept on disk), on its own port. ``restart()`` is
    ``SHUTDOWN NOSAVE`` + start: every message it held is gone, as on the machine's."""

    def __init__(self, base: Path) -> None:
        self.base, self.port = base, free_port()
        base.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--bind", "127.0.0.1", "--port", str(self.port), "--daemonize", "yes",
                "--pidfile", str(self.base / "redis.pid"), "--dir", str(self.base),
                "--logfile", str(self.base / "redis.log"), "--save", "", "--appendonly", "no",
            ],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        _wait("private redis did not answer", self.ping, 20)

    def _cli(self, *args: str) -> str:
        done = subprocess.run(
            [shutil.which("redis-cli") or "/usr/bin/redis-cli", "-p", str(self.port), *args],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return done.stdout.strip()

    def ping(self) -> bool:
        return self._cli("ping") == "PONG"

    def stop(self) -> None:
        self._cli("shutdown", "nosave")
        _wait("private redis did not stop", lambda: not self.ping(), 20)

    def restart(self) -> None:
        self.stop()
        self.start()


# -- RabbitMQ ---------------------------------------------------------------------------------
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


class PrivateRabbit:
    """A RabbitMQ node of its own (the package's ``rabbitmq-server``, default durable
    configuration, loopback only) beside the machine's: own node name, ports, database and
    cookie. ``restart()`` stops the node (``rabbitmqctl stop``) and starts it again."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port, self.dist = free_port(), free_port()
        self.node = f"fltest{secrets.token_hex(3)}@localhost"
        base.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text("loopback_users.guest = true\n")
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def env(self) -> dict[str, str]:
        b = str(self.base)
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
            "HOME": b,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": f"{b}/mnesia",
            "RABBITMQ_LOG_BASE": f"{b}/log",
            "RABBITMQ_PID_FILE": f"{b}/rabbit.pid",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{b}/enabled_plugins",
            "RABBITMQ_CONFIG_FILE": f"{b}/rabbitmq",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _ctl(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env(), capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def start(self) -> None:
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmq-server"), "-detached"], env=self.env(), check=True, capture_output=True,
            timeout=60,
        )  # fmt: skip
        done = self._ctl("wait", "--timeout", "80", str(self.base / "rabbit.pid"), timeout=95)
        if done.returncode != 0:
            raise RuntimeError(f"private RabbitMQ did not start: {done.stdout} {done.stderr}")

    def stop(self) -> None:
        self._ctl("stop", str(self.base / "rabbit.pid"))

    def restart(self) -> None:
        self.stop()
        self.start()


# -- PostgreSQL -------------------------------------------------------------------------------
def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


class PrivatePostgres:
    """A PostgreSQL cluster of its own (the machine's binaries, ``initdb -A trust`` and
    ``pg_ctl`` as the ``postgres`` user, loopback, a free port). ``restart()`` is ``pg_ctl
    restart -m fast``: every connection is cut, clients must reconnect."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.base = Path(tempfile.mkdtemp(prefix="fl-fault-pg-"))
        shutil.chown(self.base, "postgres", "postgres")
        self.data = self.base / "data"
        self.port = free_port()

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout} {done.stderr}")

    def _pg_ctl(self, *args: str) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off"
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "pg.log"),
                          "-o", opts, "-w", *args)  # fmt: skip

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._as_postgres(str(self.bin / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(self.data))
        self._pg_ctl("start")

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        try:
            self._pg_ctl("-m", "immediate", "stop")
        except RuntimeError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
