"""Celery dispatch (docs/deployment.md): the portal publishes ticket ids, ``firstline worker`` runs them.

Used when ``FIRSTLINE_BROKER_URL`` is set (Redis ``redis://host:6379/N`` or RabbitMQ
``amqp://user:pass@host:5672/vhost``); without it the portal keeps its embedded in-process
pool (``runner.dispatch.InProcessDispatcher``).

* **The message** is one task, ``firstline.run``, whose only argument is the ticket id (an
  int), JSON-serialised (``accept_content=["json"]``): parameters are in the ledger, secret
  values travel sealed in the ledger (``runner.sealed``), never in the broker.
* **Delivery**: ``acks_late`` (acknowledged when the run ends), ``worker_prefetch_multiplier
  = 1``, ``task_reject_on_worker_lost`` (a killed pool process hands the message back), no
  automatic retry. A redelivered id does nothing: ``RunService.execute`` claims
  ``queued → running`` atomically and returns None for a ticket that left ``queued``. A
  task whose database is unusable (a restart) hands its message back (``run_task``) rather
  than dropping it.
* **Queues** (``queue_for``): ``firstline.interactive`` — a person is waiting (portal, API,
  CLI channels: an agent's one-click fix, a locked-out employee) — and ``firstline.batch``
  — channel ``worker`` (automation, bulk jobs) and every runbook named in
  ``FIRSTLINE_BATCH_RUNBOOKS``. A worker consumes interactive first (Redis: strict queue
  order; RabbitMQ: alternating deliveries); ``firstline worker --queues interactive`` gives
  interactive runs capacity of their own.
* **Foreign messages** (another task name, a content type other than JSON, arguments that
  are not exactly one ticket id, a body over ``MAX_BODY`` bytes) are rejected before Celery
  decodes them (``GuardedConsumer``), logged as ``worker.message_rejected``, never executed.
  On Redis an item that is not a kombu message at all (not JSON, another shape) is dropped
  and logged the same way before kombu builds a message from it (``GuardedRedisTransport``).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from runner.errors import ConfigError
from runner.ledger.tables import MAX_ROW_ID
from runner.oplog import get_logger

TASK_NAME = "firstline.run"
INTERACTIVE = "firstline.interactive"
BATCH = "firstline.batch"
QUEUES = (INTERACTIVE, BATCH)
QUEUE_NAMES = {"interactive": INTERACTIVE, "batch": BATCH}
BATCH_CHANNELS = frozenset({"worker"})
MAX_BODY = 1024  # bytes: a real message body is about 100
SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")
REQUEUE_PAUSE = 1.0  # seconds before a message whose run could not reach the database goes back
VISIBILITY_TIMEOUT = 300  # Redis: an unacknowledged message is handed out again after this (harmless: claim)


def broker_scheme(url: str | None) -> str:
    """The scheme of *url* when it is a broker Firstline supports; ``ConfigError`` (naming
    ``FIRSTLINE_BROKER_URL``, never the URL, which may hold a password) otherwise."""
    if not url:
        raise ConfigError("FIRSTLINE_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0 or amqp://host:5672//)")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        # urlsplit drops line breaks and tabs silently: "redis://h:63\n79/0" would be used as port 6379
        raise ConfigError(
            "FIRSTLINE_BROKER_URL contains a space, line break or control character (the value is not shown); "
            "set it to the URL alone"
        )
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises ValueError
    except ValueError as exc:
        raise ConfigError("FIRSTLINE_BROKER_URL is not a valid URL") from exc
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(
            "FIRSTLINE_BROKER_URL must be redis://host:port/N, rediss://..., amqp://user:password@host:port/vhost "
            "or amqps://... (the value given is not shown)"
        )
    if parts.scheme in ("redis", "rediss") and not re.fullmatch(r"/?|/[0-9]{1,5}", parts.path):
        raise ConfigError(
            "FIRSTLINE_BROKER_URL: the Redis database must be a number after the port, "
            "e.g. redis://host:6379/0 (the value given is not shown)"
        )
    return parts.scheme


def broker_place(url: str) -> str:
    """``scheme://host:port`` of *url*, without user, password or path: safe to print."""
    parts = urlsplit(url)
    default = {"redis": 6379, "rediss": 6379, "amqp": 5672, "pyamqp": 5672, "amqps": 5671}.get(parts.scheme, 0)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{parts.port or default}"


def check_broker(url: str, timeout: float = 3.0) -> None:
    """Connect to the broker once (at most about *timeout* seconds, no retry loop);
    ``ConfigError`` naming ``FIRSTLINE_BROKER_URL``, the host and what went wrong (never
    the password) when the URL is malformed or the broker cannot be reached or refuses the
    login. The one place where a broker's start-up failure becomes a sentence."""
    import importlib

    broker_scheme(url)
    kombu: Any = importlib.import_module("kombu")
    options = _transport_options(url, timeout)
    if "socket_timeout" in options:
        options["socket_timeout"] = timeout  # a TLS handshake with a plain Redis port waits for this
    try:
        conn: Any = kombu.Connection(url, connect_timeout=timeout, transport_options=options)
        try:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            if conn.transport.driver_type == "redis":
                conn.default_channel.client.ping()
        finally:
            conn.release()
    except Exception as exc:  # noqa: BLE001 - every failure becomes the one clear line below
        raise ConfigError(
            f"FIRSTLINE_BROKER_URL: the broker at {broker_place(url)} cannot be used: "
            f"{_broker_problem(exc, timeout, tls=urlsplit(url).scheme in ('rediss', 'amqps'))}"
        ) from None


# What a broker's error says (its class name and text, lower case) → what to tell the
# operator. Only these fixed sentences are shown: the library's text may quote the URL.
_BROKER_PROBLEMS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("unexpected keyword argument",), "an option in the URL's query is not known"),
    (("db index is out of range",), "the Redis database number is out of range (the server has 16 by default: 0-15)"),
    (("database is int",), "the Redis database must be a number, e.g. redis://host:6379/0"),
    (
        ("wrongpass", "noauth", "invalid password", "invalid username", "access_refused", "accessrefused", "auth"),
        "the login was refused; check the user and password in the URL (percent-encode @ : / % in them)",
    ),
    (("notallowed", "not_allowed", "vhost"), "the virtual host does not exist or the user may not use it"),
    (("ssl", "tls", "wrong version number", "certificate"), "TLS failed; is that a TLS port (rediss://, amqps://)?"),
    (
        ("name or service not known", "temporary failure in name resolution", "nodename nor servname", "getaddrinfo"),
        "the host name does not resolve",
    ),
    (("refused",), "connection refused: nothing listens on that port"),
    (("timed out", "timeout"), "no answer in time"),
    (
        ("reset by peer", "connection closed", "error while reading", "protocol", "unexpected"),
        "the server there did not answer as this kind of broker; check the scheme and port",
    ),
)


def _broker_problem(exc: BaseException, timeout: float, *, tls: bool) -> str:
    """One fixed sentence for *exc* (``_BROKER_PROBLEMS``), or its class name; with *tls*
    (rediss://, amqps://) a silence or a strange answer may be a port without TLS."""
    seen: set[int] = set()
    texts = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # kombu wraps the driver's error
        seen.add(id(current))
        texts.append(f"{type(current).__name__} {current}".lower())
        current = current.__cause__ or current.__context__
    text = " ".join(texts)
    for words, sentence in _BROKER_PROBLEMS:
        if any(word in text for word in words):
            if tls and "TLS" not in sentence and "refused" not in sentence:
                sentence += "; or the port does not speak TLS"
            return sentence.replace("in time", f"within {timeout:g} s")
    return f"{type(exc).__name__}; check that it runs and that the URL, user and password are right"


def _transport_options(url: str, timeout: float = 4.0) -> dict[str, Any]:
    if urlsplit(url).scheme in ("redis", "rediss"):
        return {
            "queue_order_strategy": "priority",  # BRPOP lists the queues in -Q order: interactive first
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "socket_connect_timeout": timeout,
            "socket_timeout": 30,
        }
    return {"confirm_publish": True}


def make_celery(broker_url: str) -> Any:
    """The Celery application: only ``firstline.run`` is registered (Celery's built-in
    tasks are removed, so a message naming one is an unknown task); no result backend."""
    import importlib

    from celery import Celery

    queue_cls: Any = importlib.import_module("kombu").Queue

    if broker_scheme(broker_url) in ("redis", "rediss"):
        _guard_redis()
    app = Celery("firstline", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[queue_cls(q, routing_key=q) for q in QUEUES],
        task_default_queue=BATCH,
        task_create_missing_queues=False,
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        broker_connection_timeout=4,
        broker_connection_retry_on_startup=False,
        broker_connection_retry=True,  # after a good start, ride out a broker restart
        broker_connection_max_retries=None,
        broker_transport_options=_transport_options(broker_url),
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=False,
        worker_consumer="runner.celery_app:GuardedConsumer",
        worker_cancel_long_running_tasks_on_connection_loss=False,
        enable_utc=True,
    )
    app.task(
        name=TASK_NAME,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=0,
        typing=False,
    )(run_task)
    for name in [n for n in app.tasks if n != TASK_NAME]:
        app.tasks.unregister(name)
    return app


# -- routing -------------------------------------------------------------------------------
def queue_for(channel: str | None, runbook: str | None, batch_runbooks: list[str] | tuple[str, ...]) -> str:
    """The queue of a run: ``BATCH`` for channel ``worker`` (automation) or a runbook listed
    in ``FIRSTLINE_BATCH_RUNBOOKS``; ``INTERACTIVE`` for everything a person waits for."""
    if channel in BATCH_CHANNELS or (runbook is not None and runbook in batch_runbooks):
        return BATCH
    return INTERACTIVE


def dispatcher_for(celery: Any, engine: Any, batch_runbooks: list[str] | tuple[str, ...]) -> Any:
    """A ``CeleryDispatcher`` publishing with *celery*, each ticket to its ``queue_for``
    queue: from the channel and runbook ``submit`` gives ``reserve``, else (the republish of a
    lost message) read from the ledger at *engine*."""
    from sqlalchemy import select

    from runner.dispatch import CeleryDispatcher
    from runner.ledger.store import reading
    from runner.ledger.tables import ticket

    def route(ticket_id: int) -> str:
        with reading(engine) as conn:
            row = conn.execute(select(ticket.c.channel, ticket.c.runbook).where(ticket.c.id == ticket_id)).first()
        return queue_for(row.channel if row else None, row.runbook if row else None, batch_runbooks)

    def queue_of(channel: str, runbook: str) -> str:
        return queue_for(channel, runbook, batch_runbooks)

    return CeleryDispatcher(celery, route, queue_of)


# -- the worker's side -----------------------------------------------------------------------
_service_lock = threading.Lock()
_service: Any = None


def service() -> Any:
    """This worker process's ``Firstline`` service (opened on first use, after the fork)."""
    global _service
    with _service_lock:
        if _service is None:
            from runner.api import open_app

            app = open_app()
            app.runs.seal_outputs = True  # once-only outputs wait sealed for the portal process
            _service = app
        return _service


def valid_ticket_id(args: Any, kwargs: Any) -> int | None:
    """The ticket id when *args* / *kwargs* are exactly one positive int that fits a row id."""
    if kwargs or not isinstance(args, list | tuple) or len(args) != 1:
        return None
    value = args[0]
    if type(value) is not int or not 1 <= value <= MAX_ROW_ID:
        return None
    return value


def run_task(*args: Any, **kwargs: Any) -> None:
    """The task body: ``RunService.execute(ticket_id)`` then the after-run rules
    (``runner.afterrun``). Never raises for a run's own outcome; a message that is not one
    ticket id is logged and dropped (the consumer refuses most such messages earlier).
    When the database cannot be used, the message is handed back to the broker
    (``Reject(requeue=True)`` after ``REQUEUE_PAUSE`` seconds) instead of acknowledged."""
    ticket_id = valid_ticket_id(list(args), kwargs)
    log = get_logger()
    if ticket_id is None:
        log.warning("worker.message_rejected", reason="arguments", args=len(args), kwargs=len(kwargs))
        return
    from celery.exceptions import Reject
    from sqlalchemy.exc import SQLAlchemyError

    from runner.afterrun import after_run
    from runner.errors import LedgerError

    try:
        app = service()
        outcome = app.runs.execute(ticket_id)
    except (LedgerError, SQLAlchemyError) as exc:
        # The database could not be used (e.g. a PostgreSQL restart). Acknowledging would drop
        # the id and leave a queued ticket to end ``never_started`` although nothing ran; hand
        # it back to the broker after a pause instead. A redelivered id is harmless: the claim
        # is atomic, and a run that had started is recovered by its lease (runner.leases).
        log.warning("worker.ledger_unavailable", ticket_id=ticket_id, error=type(exc).__name__)
        time.sleep(REQUEUE_PAUSE)
        raise Reject(type(exc).__name__, requeue=True) from exc
    if outcome is not None:
        after_run(app, outcome)


def message_problem(message: Any) -> str | None:
    """Why a delivered message is not a Firstline run request, or None when it is one."""
    headers = message.headers
    if not isinstance(headers, Mapping):
        return "no_headers"
    if headers.get("task") != TASK_NAME:
        return "unknown_task"
    if message.content_type != "application/json":
        return "content_type"
    if message.content_encoding not in ("utf-8", "utf8", None):
        return "content_encoding"
    body = message.body
    if body is None or len(body) > MAX_BODY:
        return "too_large"
    if not isinstance(headers.get("id"), str) or len(headers["id"]) > 64:
        return "no_id"
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeError):
        return "not_json"
    if not isinstance(decoded, list) or len(decoded) != 3:
        return "arguments"
    if valid_ticket_id(decoded[0], decoded[1]) is None:
        return "arguments"
    return None


def _reject(message: Any, reason: str) -> None:
    headers = message.headers if isinstance(message.headers, Mapping) else {}
    task = headers.get("task")
    get_logger().warning(
        "worker.message_rejected",
        reason=reason,
        task=str(task)[:64] if task is not None else None,
        content_type=str(message.content_type)[:64],
        size=len(message.body or b""),
        queue=str((message.delivery_info or {}).get("routing_key", ""))[:64],
    )
    try:
        message.reject(requeue=False)
    except Exception:  # noqa: BLE001 - a lost connection: the broker hands it out again, refused again
        get_logger().exception("worker.reject_failed", reason=reason)


def _guarded_consumer() -> type:
    from celery.worker.consumer import Consumer
    from vine import promise

    class Guarded(Consumer):  # type: ignore[misc]
        """Celery's consumer with a gate: a message that is not exactly one ``firstline.run``
        with one ticket id, JSON, small, is rejected (not requeued) and logged — never decoded
        by Celery, never executed."""

        def create_task_handler(self, promise: Any = promise) -> Any:
            inner = super().create_task_handler(promise)

            def on_task_received(message: Any) -> Any:
                try:
                    problem = message_problem(message)
                except Exception:  # noqa: BLE001 - whatever it is, it is not ours
                    problem = "malformed"
                if problem is not None:
                    _reject(message, problem)
                    return None
                return inner(message)

            return on_task_received

    return Guarded


def envelope_problem(payload: Any) -> str | None:
    """Why a raw Redis list item (already JSON-decoded) is not a kombu message, or None.

    Kombu builds its message from the item before any consumer sees it: an item of another
    shape (``[1, 2]``, ``{}``, a body that is not base64) raised inside the worker's event
    loop and stopped the worker ("Unrecoverable error")."""
    if not isinstance(payload, dict):
        return "malformed"
    properties = payload.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("delivery_tag"), str):
        return "malformed"
    if not isinstance(properties.get("delivery_info", {}), dict):
        return "malformed"
    if not isinstance(payload.get("headers", {}), dict | None):
        return "no_headers"
    body, encoding = payload.get("body"), properties.get("body_encoding")
    if body is not None and not isinstance(body, str):
        return "malformed"
    if encoding not in (None, "base64"):
        return "content_encoding"
    if body and len(body) > 2 * MAX_BODY:
        return "too_large"
    if body and encoding == "base64":
        try:
            base64.b64decode(body, validate=True)
        except ValueError:
            return "malformed"
    return None


def _guarded_redis_transport() -> type:
    from kombu.transport import redis as kombu_redis

    class GuardedChannel(kombu_redis.Channel):  # type: ignore[misc]
        _sync_client: Any = None

        def _create_client(self, asynchronous: bool = False) -> Any:
            # kombu builds a new redis-py client (about 0.12 ms of CPU here) for every publish,
            # and for each message's QoS bookkeeping and ack; a client is only a handle on the
            # channel's connection pool and is thread-safe, so one is kept per pool.
            create: Any = super()._create_client  # kombu is untyped
            if asynchronous:
                return create(asynchronous=True)
            kept = self._sync_client
            pool = self.pool
            if kept is None or kept.connection_pool is not pool:
                kept = self._sync_client = create()
            return kept

        def _brpop_read(self, **options: Any) -> Any:
            read: Any = super()._brpop_read  # kombu is untyped
            try:
                return read(**options)
            except ValueError:  # the popped item is not JSON / not UTF-8 (``GuardedTransport`` checks the rest)
                get_logger().warning("worker.message_rejected", reason="not_json", queue="redis")
                return True

    class GuardedTransport(kombu_redis.Transport):  # type: ignore[misc]
        """Redis as kombu reads it, except that an item on a queue that is not a kombu
        message is logged (``worker.message_rejected``) and dropped instead of stopping the
        worker. Registered for redis:// and rediss:// by ``make_celery``."""

        Channel = GuardedChannel

        def _deliver(self, message: Any, queue: Any) -> None:
            problem = envelope_problem(message)
            if problem is not None:
                get_logger().warning("worker.message_rejected", reason=problem, queue=str(queue)[:64])
                return
            deliver: Any = super()._deliver  # kombu is untyped
            deliver(message, queue)

    return GuardedTransport


def _guard_redis() -> None:
    """Make kombu use ``GuardedRedisTransport`` for redis:// and rediss:// in this process."""
    import importlib

    transports: Any = importlib.import_module("kombu.transport")
    for alias in ("redis", "rediss"):
        transports.TRANSPORT_ALIASES[alias] = "runner.celery_app:GuardedRedisTransport"
        transports._transport_cache.pop(alias, None)


def __getattr__(name: str) -> Any:
    # ``worker_consumer = "runner.celery_app:GuardedConsumer"``: built when Celery asks for it,
    # so importing this module does not import Celery.
    if name == "GuardedConsumer":
        return _guarded_consumer()
    if name == "GuardedRedisTransport":
        return _guarded_redis_transport()
    raise AttributeError(name)
