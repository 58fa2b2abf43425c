"""Runs through Celery with a real broker (Redis and RabbitMQ) and a real ``firstline worker``
subprocess against the lab slapd: secret values never in the broker or the database in plain,
a once-only output comes back once, sessions end in the worker, interactive runs go first."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from runner import agent, sealed
from runner.auth import Principal
from runner.engine import PREFETCH_MAX_AGE, PREFETCHED_MESSAGE
from runner.ledger.portal_tables import portal_session
from runner.ledger.sealed_tables import run_secret
from runner.ledger.store import transaction
from runner.ledger.tables import step_result, ticket
from tests.integration.directory.helpers import Directory, new_password
from tests.integration.scaleout.conftest import broker_bytes, celery_dispatcher, database_bytes

pytestmark = pytest.mark.integration


def _session_for(app: object, user: str) -> None:
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="microseconds")
    with transaction(app.engine) as conn:  # type: ignore[attr-defined]
        conn.execute(
            portal_session.insert(),
            {
                "token_sha256": "a" * 64,
                "account": f"{user}@example.org",
                "directory": "corp",
                "username": user,
                "dn": f"uid={user},ou=people,dc=example,dc=org",
                "display_name": user,
                "roles": "employee",
                "created_at": ts,
                "last_seen_at": ts,
                "expires_at": later,
            },
        )


def test_secrets_cross_sealed_and_once_only_outputs_come_back_once(
    broker_url: str, make_stack: object, openldap: Directory
) -> None:
    stack = make_stack(broker_url)  # type: ignore[operator]
    app = stack.app
    chosen_user, old_pw = openldap.create_user(mail=False)
    temp_user, _ = openldap.create_user(mail=False)
    _session_for(app, temp_user)
    chosen = new_password()
    dispatcher = celery_dispatcher(stack)
    common = {"requester": "agent7", "roles": {"agent"}, "channel": "portal", "dispatcher": dispatcher}
    first = app.runs.submit("password-reset", {"user": chosen_user, "new_password": chosen}, **common)
    second = app.runs.submit("password-reset", {"user": temp_user}, **common)

    # Before any worker: the message holds the ticket id only, the ledger a sealed token only.
    in_broker = broker_bytes(broker_url)
    assert str(first.ticket_id).encode() in in_broker
    assert chosen.encode() not in in_broker
    with app.engine.connect() as conn:
        kinds = conn.execute(select(run_secret.c.ticket_id, run_secret.c.kind)).all()
    assert kinds == [(first.ticket_id, sealed.PARAMS)]
    assert chosen.encode() not in database_bytes(app)

    worker = stack.start_worker("--concurrency", "2")
    states = stack.wait_final([first.ticket_id, second.ticket_id])
    assert states == {first.ticket_id: "resolved", second.ticket_id: "resolved"}
    assert openldap.bind_ok(chosen_user, chosen) and not openldap.bind_ok(chosen_user, old_pw)

    # The worker sealed the generated password for the portal; taken once, then gone.
    with app.engine.connect() as conn:
        kinds = conn.execute(select(run_secret.c.ticket_id, run_secret.c.kind)).all()
        ended = conn.execute(select(portal_session).where(portal_session.c.username == temp_user)).all()
    assert kinds == [(second.ticket_id, sealed.OUTPUTS)]
    assert ended == []  # the worker ended the sessions of the account whose password it set
    blob = database_bytes(app) + broker_bytes(broker_url) + stack.settings.log_file.read_bytes()
    outputs = sealed.take_values(app.engine, app.runs.run_key, second.ticket_id, sealed.OUTPUTS, 600)
    temporary = outputs["reset.temporary_password"]
    assert openldap.bind_ok(temp_user, temporary)
    assert sealed.take_values(app.engine, app.runs.run_key, second.ticket_id, sealed.OUTPUTS, 600) == {}
    for secret in (chosen, temporary):
        assert secret.encode() not in blob
    assert worker.proc.poll() is None
    assert worker.stop() == 0
    assert app.verify_audit().ok


def test_a_worker_without_the_run_key_escalates_secrets_unavailable(
    broker_url: str, make_stack: object, openldap: Directory, tmp_path: object
) -> None:
    stack = make_stack(broker_url)  # type: ignore[operator]
    user, old_pw = openldap.create_user(mail=False)
    sub = stack.app.runs.submit(
        "password-reset",
        {"user": user, "new_password": new_password()},
        requester="agent7",
        roles={"agent"},
        channel="portal",
        dispatcher=celery_dispatcher(stack),
    )
    from cryptography.fernet import Fernet

    stack.env["FIRSTLINE_RUN_KEY"] = Fernet.generate_key().decode()  # not the key the portal sealed with
    stack.start_worker("--concurrency", "1")
    assert stack.wait_final([sub.ticket_id]) == {sub.ticket_id: "escalated"}
    with stack.app.engine.connect() as conn:
        row = conn.execute(select(ticket.c.reason).where(ticket.c.id == sub.ticket_id)).one()
        steps = conn.execute(select(step_result).where(step_result.c.ticket_id == sub.ticket_id)).all()
        left = conn.execute(select(run_secret)).all()
    assert row.reason == "secrets_unavailable" and steps == [] and left == []
    assert openldap.bind_ok(user, old_pw)  # nothing changed


def test_interactive_runs_go_before_a_batch(broker_url: str, make_stack: object) -> None:
    stack = make_stack(broker_url)  # type: ignore[operator]
    app = stack.app
    dispatcher = celery_dispatcher(stack)
    batch = [
        app.runs.submit(
            "account-status", {"user": "alice"}, requester="agent7", roles={"agent"}, channel="worker",
            dispatcher=dispatcher,
        ).ticket_id
        for _ in range(8)
    ]
    urgent = app.runs.submit(
        "account-status", {"user": "bob"}, requester="agent7", roles={"agent"}, channel="portal", dispatcher=dispatcher
    ).ticket_id
    # the broker holds all nine (depth() reads the queues; 0 while it cannot be asked: ask again)
    deadline = time.monotonic() + 10
    while dispatcher.depth() != 9 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dispatcher.depth() == 9
    stack.start_worker("--concurrency", "1")
    stack.wait_final([*batch, urgent])
    with app.engine.connect() as conn:
        order = [r.id for r in conn.execute(select(ticket.c.id).order_by(ticket.c.started_at, ticket.c.id))]
    assert order.index(urgent) <= 1, order  # before most of the batch (Redis: first; RabbitMQ: first or second)
    assert order[-1] != urgent


def test_a_closed_dispatcher_does_not_close_the_broker_for_another_of_the_same_url(broker_url: str) -> None:
    """kombu keeps connection and producer pools per broker URL for the whole process: closing
    one Celery dispatcher closed them for every other app with that URL, whose publishes then
    failed ("Acquire on closed pool"; tickets ended ``never_started`` in full test runs)."""
    from runner.celery_app import INTERACTIVE, make_celery
    from runner.dispatch import CeleryDispatcher

    first = CeleryDispatcher(make_celery(broker_url), lambda _tid: INTERACTIVE)
    with first.reserve() as send:
        send(101)
    first.close()
    second = CeleryDispatcher(make_celery(broker_url), lambda _tid: INTERACTIVE)
    try:
        with second.reserve() as send:
            send(202)
        assert b"202" in broker_bytes(broker_url)
    finally:
        second.close()


def test_the_agents_look_up_reaches_the_worker_sealed_and_stands_in_for_its_check(
    broker_url: str, make_stack: object, openldap: Directory
) -> None:
    """The portal's look-up (2 LDAP requests) is not repeated by the worker's ``check`` step;
    the unlock still reads the account afresh before it writes (issue 7)."""
    stack = make_stack(broker_url)  # type: ignore[operator]
    app = stack.app
    stack.start_worker("--concurrency", "1")  # ready first: the look-up counts for PREFETCH_MAX_AGE only
    user, _ = openldap.create_user(mail=False)
    openldap.lock(user)
    who = Principal("agent7", "corp", "agent7", "uid=agent7,ou=people", "Agent 7", frozenset({"agent"}))
    looked = datetime.now(UTC)  # the look-up's reads are made after this
    fix = agent.prepare_fix(
        app, who, "account-unlock", {"user": user, "directory": "corp"}, "locked out", client_ip=None, user_agent=None
    )
    assert fix.reads  # the look-up, offered to the run
    written: list[str] = []  # the sealed rows as submit inserts them (the worker may take them at once)

    def seen(conn: object, cursor: object, statement: str, params: Any, context: object, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RUN_SECRET"):
            written.extend(str(p) for p in (params if isinstance(params, (list, tuple)) else params.values()))

    event.listen(app.engine, "before_cursor_execute", seen)
    sub = app.runs.submit(
        fix.runbook,
        fix.params,
        requester=fix.requester,
        actor_id="agent7",
        roles={"agent"},
        channel="portal",
        dispatcher=celery_dispatcher(stack),
        work_note=fix.work_note,
        reads=fix.reads,
    )
    event.remove(app.engine, "before_cursor_execute", seen)
    assert sealed.READS in written  # one sealed row of the look-up's reads ...
    assert written and not any(user in value for value in written)  # ... and the account is not in it in plain
    assert stack.wait_final([sub.ticket_id]) == {sub.ticket_id: "resolved"}
    with app.engine.connect() as conn:
        steps = conn.execute(
            select(step_result.c.step_id, step_result.c.attempts, step_result.c.message)
            .where(step_result.c.ticket_id == sub.ticket_id)
            .order_by(step_result.c.seq)
        ).all()
        left = conn.execute(select(run_secret)).all()
        started = conn.execute(select(ticket.c.started_at).where(ticket.c.id == sub.ticket_id)).scalar_one()
    # A look-up stands in for the check only while it is PREFETCH_MAX_AGE old at most; a worker
    # that claimed the run later (a loaded machine) must read afresh instead.
    waited = (datetime.fromisoformat(started) - looked).total_seconds()
    if waited <= PREFETCH_MAX_AGE - 1:
        assert (steps[0].step_id, steps[0].attempts, steps[0].message) == ("check", 0, PREFETCHED_MESSAGE)
    elif waited > PREFETCH_MAX_AGE + 1:
        assert (steps[0].step_id, steps[0].attempts) == ("check", 1), f"claimed {waited:.1f} s after the look-up"
    assert (steps[1].step_id, steps[1].attempts) == ("unlock", 1)
    assert left == []  # taken with the claim
    assert openldap.conn.run("account_status", {"user": user}, timeout=10)["locked"] is False
