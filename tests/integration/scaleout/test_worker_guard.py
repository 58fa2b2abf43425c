"""``firstline worker`` and ``firstline serve`` at the edges: foreign or malformed messages on
the queue are rejected and logged, never executed, and the worker keeps going; a broker that
is unset, malformed or unreachable is one clear line at start, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from typing import Any

import kombu
import pytest
import redis
from sqlalchemy import select

from runner.celery_app import INTERACTIVE, TASK_NAME
from runner.ledger.tables import step_result, ticket
from tests.fakes import Manual
from tests.integration.scaleout.conftest import FIRSTLINE, REPO, celery_dispatcher

pytestmark = pytest.mark.integration


def _headers(name: str) -> dict[str, Any]:
    tid = str(uuid.uuid4())
    return {"lang": "py", "task": name, "id": tid, "root_id": tid, "parent_id": None, "retries": 0}


def test_foreign_messages_are_rejected_and_the_worker_goes_on(broker_url: str, make_stack: Any) -> None:
    stack = make_stack(broker_url)
    app = stack.app
    kept = app.runs.submit(
        "account-status", {"user": "alice"}, requester="agent7", roles={"agent"}, channel="portal", dispatcher=Manual()
    ).ticket_id  # queued, never sent: only a foreign message could start it
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    bad: list[tuple[str, Any, dict[str, Any], str]] = [
        ("unknown_task", [[kept], {}, embed], _headers("firstline.other"), "json"),
        ("unknown_task", [[[], {}], {}, embed], _headers("celery.accumulate"), "json"),  # a Celery built-in
        ("arguments", [[str(kept)], {}, embed], _headers(TASK_NAME), "json"),
        ("arguments", [[float(kept)], {}, embed], _headers(TASK_NAME), "json"),
        ("arguments", [[True], {}, embed], _headers(TASK_NAME), "json"),
        ("arguments", [[kept, kept], {}, embed], _headers(TASK_NAME), "json"),
        ("arguments", [[kept], {"dry_run": True}, embed], _headers(TASK_NAME), "json"),  # extra kwargs
        ("content_type", [[kept], {}, embed], _headers(TASK_NAME), "pickle"),
        ("too_large", [[kept], {"x": "a" * 2_000_000}, embed], _headers(TASK_NAME), "json"),
        ("unknown_task", {"hello": "world"}, {}, "json"),  # no Celery headers at all
    ]
    conn: Any = kombu.Connection(broker_url)
    try:
        producer = conn.Producer()
        for _reason, body, headers, serializer in bad:
            producer.publish(
                body,
                routing_key=INTERACTIVE,
                exchange="",
                serializer=serializer,
                headers=headers,
                declare=[kombu.Queue(INTERACTIVE, routing_key=INTERACTIVE)],
            )
    finally:
        conn.release()
    if broker_url.startswith("redis"):
        # Raw items on the Redis list, not kombu messages at all: the first one stopped the
        # worker ("Unrecoverable error: JSONDecodeError") before any consumer saw it.
        raw = [
            ("not_json", b"this is not json{"),
            ("not_json", b"\xff\xfe"),
            ("malformed", b"[1, 2, 3]"),
            ("malformed", b"{}"),
            ("malformed", json.dumps({"body": "!!", "properties": {"body_encoding": "base64", "delivery_tag": "t"}})),
        ]
        client = redis.Redis.from_url(broker_url)
        client.lpush(INTERACTIVE, *[item for _reason, item in raw])
        client.close()
        bad += [(reason, None, {}, "raw") for reason, _item in raw]
    good = app.runs.submit(
        "account-status",
        {"user": "bob"},
        requester="agent7",
        roles={"agent"},
        channel="portal",
        dispatcher=celery_dispatcher(stack),
    ).ticket_id  # behind the foreign ones in the same queue
    worker = stack.start_worker("--concurrency", "1")
    assert stack.wait_final([good]) == {good: "resolved"}
    assert worker.proc.poll() is None  # survived every one of them
    with app.engine.connect() as conn_:
        state = conn_.execute(select(ticket.c.state).where(ticket.c.id == kept)).scalar()
        steps = conn_.execute(select(step_result.c.id).where(step_result.c.ticket_id == kept)).all()
    assert state == "queued" and steps == []  # never executed
    log = [json.loads(line) for line in stack.settings.log_file.read_text().splitlines() if line.startswith("{")]
    reasons = sorted(e["reason"] for e in log if e.get("event") == "worker.message_rejected")
    assert reasons == sorted(r for r, *_ in bad)
    assert "a" * 1000 not in stack.settings.log_file.read_text()
    assert celery_dispatcher(stack).depth() == 0  # rejected, not handed out again
    assert worker.stop() == 0


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    base.update({"FIRSTLINE_ENVIRONMENT": "test", "PYTHONPATH": str(REPO), **env})
    return subprocess.run([FIRSTLINE, *args], env=base, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (None, "FIRSTLINE_BROKER_URL is not set"),
        ("foo://127.0.0.1/0", "FIRSTLINE_BROKER_URL must be"),
        ("redis://127.0.0.1:notaport/0", "FIRSTLINE_BROKER_URL is not a valid URL"),
        ("redis://127.0.0.1:1/0", "the broker at redis://127.0.0.1:1 cannot be used"),
        ("amqp://guest:Wr0ngPassw0rd@127.0.0.1:5672//", "the broker at amqp://127.0.0.1:5672 cannot be used"),
    ],
)
def test_worker_and_serve_refuse_a_broker_they_cannot_use(url: str | None, says: str, tmp_path: Any) -> None:
    env = {"FIRSTLINE_DATA_DIR": str(tmp_path / "var"), "FIRSTLINE_INVENTORY": str(REPO / "lab" / "inventory.yaml")}
    if url is not None:
        env["FIRSTLINE_BROKER_URL"] = url
    commands = [["worker"]] + ([["serve", "--port", "1"]] if url is not None else [])
    for args in commands:
        proc = _run(args, **env)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(lines) == 1 and says in lines[0], (args, proc.stderr)
        assert "Wr0ngPassw0rd" not in proc.stderr + proc.stdout


def test_worker_refuses_a_database_it_cannot_use(tmp_path: Any) -> None:
    proc = _run(
        ["worker"],
        FIRSTLINE_DATA_DIR=str(tmp_path / "var"),
        FIRSTLINE_BROKER_URL="redis://127.0.0.1:6379/15",
        FIRSTLINE_DATABASE_URL="postgresql+psycopg2://postgres:S3cretPw@127.0.0.1:1/nothing",
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "FIRSTLINE_DATABASE_URL" in proc.stderr
    assert "S3cretPw" not in proc.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        # TLS to Redis's plain port: the handshake waited 30 s per try (a hang), now the check's 3 s
        ("rediss://:Wr0ngPassw0rd@127.0.0.1:6379/0", "TLS failed; is that a TLS port"),
        # urlsplit drops line breaks, so this was used as port 6379 and the worker started
        ("redis://127.0.0.1:63\n79/0", "contains a space, line break or control character"),
        ("redis://127.0.0.1:6379/0\n", "contains a space, line break or control character"),
        ("redis://127.0.0.1:6379/abc", "the Redis database must be a number"),  # was "(ValueError)"
        ("redis://127.0.0.1:6379/99", "the Redis database number is out of range"),  # was "(OperationalError)"
        ("redis://someone:Wr0ngPassw0rd@127.0.0.1:6379/0", "the login was refused"),  # was "(OperationalError)"
        ("amqp://guest:guest@127.0.0.1:5672/no-such-vhost", "the virtual host does not exist"),  # was "(NotAllowed)"
        ("redis://[::1]:1/0", "the broker at redis://[::1]:1 cannot be used: connection refused"),  # was redis://::1:1
    ],
)
def test_a_broker_that_cannot_be_used_says_why_at_once(url: str, says: str, tmp_path: Any) -> None:
    env = {"FIRSTLINE_DATA_DIR": str(tmp_path / "var"), "FIRSTLINE_BROKER_URL": url}
    started = time.monotonic()
    proc = _run(["worker", "--pool", "threads"], **env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - started < 15
    assert len(lines) == 1 and lines[0].startswith("error: FIRSTLINE_BROKER_URL") and says in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "Wr0ngPassw0rd" not in proc.stderr + proc.stdout
    log = tmp_path / "var" / "log" / "firstline.log"
    assert not log.exists() or "Wr0ngPassw0rd" not in log.read_text(encoding="utf-8")
