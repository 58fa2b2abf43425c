"""Fixtures for the scale-out tests: real brokers (Redis and RabbitMQ on loopback), a real
``firstline worker`` subprocess, the lab slapd, and a ledger per test.

Isolation: each test gets its own Redis database number (claimed with a marker key, flushed
afterwards) or its own RabbitMQ virtual host (created and deleted with ``rabbitmqctl``), so
tests never see each other's messages. Workers are started with ``.venv/bin/firstline
worker``, awaited on their ``firstline worker ready`` line and stopped by pid.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from runner.api import open_app
from runner.service import Firstline
from runner.settings import Settings
from tests.integration.conftest import start_lab
from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector

REPO = Path(__file__).resolve().parents[3]
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")
REDIS = ("127.0.0.1", 6379)
RABBITMQCTL = "/usr/sbin/rabbitmqctl"
READY = "firstline worker ready"


def _claim_redis_db() -> int:
    """An empty Redis database number (4-15) that no other client is connected to: a worker
    left over from an earlier test would otherwise take this test's messages."""
    marker = f"firstline-test-claim:{uuid.uuid4().hex}"
    for number in random.sample(range(4, 16), 12):
        db = redis.Redis(*REDIS, db=number)
        try:
            me = db.client_id()
            in_use = [c for c in db.client_list() if int(c.get("db", -1)) == number and int(c["id"]) != me]
            if in_use:
                continue
            if db.dbsize() == 0 and db.set("firstline-test-claim", marker, nx=True):
                return number
        finally:
            db.close()
    pytest.fail("no free Redis database number (4-15) for this test")


def _rabbitmqctl(*args: str) -> None:
    proc = subprocess.run([RABBITMQCTL, *args], capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {proc.stdout} {proc.stderr}")


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A broker of its own for this test: a fresh Redis database or RabbitMQ virtual host."""
    if request.param == "redis":
        number = _claim_redis_db()
        yield f"redis://{REDIS[0]}:{REDIS[1]}/{number}"
        db = redis.Redis(*REDIS, db=number)
        db.flushdb()
        db.close()
    else:
        vhost = f"fl-test-{uuid.uuid4().hex[:10]}"
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def lab_slapd() -> None:
    start_lab("slapd")


@pytest.fixture
def openldap(lab_slapd: None) -> Iterator[Directory]:
    admin, server = _admin("openldap")
    d = Directory("openldap", "corp", connector("corp"), admin, server, FLAVORS["openldap"][1], "uid")
    yield d
    d.conn.close()
    d.cleanup()
    admin.unbind()


@dataclass
class Worker:
    proc: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        pytest.fail(f"worker never printed {text!r} (exit {self.proc.poll()}):\n" + "".join(self.seen[-30:]))

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)


@dataclass
class Stack:
    """One test's installation: settings (data dir, lab inventory, repo runbooks, broker),
    the environment for subprocesses, and the app of this process."""

    data_dir: Path
    env: dict[str, str]
    settings: Settings
    app: Firstline
    workers: list[Worker] = field(default_factory=list)

    def start_worker(self, *args: str) -> Worker:
        proc = subprocess.Popen(
            [FIRSTLINE, "worker", *args],
            env=self.env,
            cwd=self.data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        worker = Worker(proc)

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                worker.lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        self.workers.append(worker)
        worker.wait_for(READY)
        return worker

    def wait_final(self, ticket_ids: list[int], timeout: float = 60.0) -> dict[int, str]:
        """Poll the ledger until every ticket is final; fail (with the states) if not within *timeout*."""
        from sqlalchemy import select

        from runner.ledger.tables import ticket

        deadline = time.monotonic() + timeout
        while True:
            with self.app.engine.connect() as conn:
                rows = dict(
                    conn.execute(select(ticket.c.id, ticket.c.state).where(ticket.c.id.in_(ticket_ids))).all()
                )
            if all(rows.get(t) in ("resolved", "escalated", "closed") for t in ticket_ids):
                return rows
            for w in self.workers:
                assert w.proc.poll() is None, "".join(w.seen[-20:])
            if time.monotonic() > deadline:
                pytest.fail(f"tickets not final: {rows}")
            time.sleep(0.05)


@pytest.fixture
def make_stack(tmp_path: Path, lab_slapd: None) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def make(broker_url: str | None, **extra: str) -> Stack:
        data_dir = tmp_path / "var"
        values = {
            "environment": "test",
            "data_dir": str(data_dir),
            "inventory": str(REPO / "lab" / "inventory.yaml"),
            "runbooks_dir": str(REPO / "runbooks"),
            **({"broker_url": broker_url} if broker_url else {}),
            **extra,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
        env.update({f"FIRSTLINE_{k.upper()}": v for k, v in values.items()})
        env["PYTHONPATH"] = str(REPO)
        settings = Settings(**values)  # type: ignore[arg-type]
        app = open_app(settings)
        stack = Stack(data_dir, env, settings, app)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        for w in stack.workers:
            w.stop()
        stack.app.close()


def broker_bytes(url: str) -> bytes:
    """Every message and key the broker holds for *url*, as bytes (AMQP: messages are read
    without acknowledging and handed back when the connection closes)."""
    if url.startswith("redis://"):
        db = redis.Redis.from_url(url)
        blob = b""
        for key in db.keys("*"):
            kind = db.type(key)
            blob += key
            if kind == b"list":
                blob += b"".join(db.lrange(key, 0, -1))
            elif kind == b"hash":
                blob += b"".join(k + v for k, v in db.hgetall(key).items())
            elif kind == b"string":
                blob += db.get(key) or b""
            elif kind == b"set":
                blob += b"".join(db.smembers(key))
            elif kind == b"zset":
                blob += b"".join(db.zrange(key, 0, -1))
        db.close()
        return blob
    import kombu

    from runner.celery_app import QUEUES

    blob = b""
    conn: Any = kombu.Connection(url)
    try:
        channel = conn.channel()
        for name in QUEUES:
            while True:
                try:
                    msg = channel.basic_get(queue=name, no_ack=False)
                except conn.channel_errors:
                    channel = conn.channel()
                    break
                if msg is None:
                    break
                body = msg.body if isinstance(msg.body, bytes) else str(msg.body).encode()
                blob += repr(msg.headers).encode() + repr(msg.properties).encode() + body
    finally:
        conn.release()  # unacknowledged: the broker keeps them
    return blob


def database_bytes(app: Firstline) -> bytes:
    """The SQLite database file (+WAL) and every row of every table, as bytes."""
    from sqlalchemy import MetaData

    db = app.settings.sqlite_path
    assert db is not None
    # Closing any descriptor of the file drops this process's SQLite (POSIX) locks: no pooled
    # connection may be open while the file is read.
    app.engine.dispose()
    blob = b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    app.engine.dispose()
    meta = MetaData()
    meta.reflect(app.engine)
    with app.engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(table.select()):
                blob += repr(tuple(row)).encode()
    return blob


def celery_dispatcher(stack: Stack) -> Any:
    """The portal's Celery dispatcher for *stack* (queue by ``runner.celery_app.queue_for``)."""
    from sqlalchemy import select

    from runner.celery_app import make_celery, queue_for
    from runner.dispatch import CeleryDispatcher
    from runner.ledger.tables import ticket

    assert stack.settings.broker_url is not None

    def route(ticket_id: int) -> str:
        with stack.app.engine.connect() as conn:
            row = conn.execute(select(ticket.c.channel, ticket.c.runbook).where(ticket.c.id == ticket_id)).one()
        return queue_for(row.channel, row.runbook, stack.settings.batch_runbooks)

    return CeleryDispatcher(make_celery(stack.settings.broker_url), route)
