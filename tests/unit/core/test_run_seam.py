"""The run seam (runner/runs.py, runner/dispatch.py, runner/ledger/progress.py) on SQLite and
PostgreSQL (``both_databases``):
submit writes a queued ticket and returns; execute claims atomically; redelivery does
nothing; a changed runbook or missing secrets escalate without touching the target; the
in-process pool refuses when full (no ticket); step rows are visible while they run; the
sweep ends queued and running tickets past their deadline; secrets never reach the database.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text, update

from runner.api import open_app
from runner.dispatch import InlineDispatcher, InProcessDispatcher, QueueFull
from runner.errors import LedgerError
from runner.ledger import store
from runner.ledger.tables import audit_event, step_result, ticket
from runner.redaction import REDACTED
from runner.service import Firstline
from runner.settings import Settings
from tests.databases import MakeDatabaseUrl, database_bytes
from tests.fakes import FakeConnector, Manual

pytestmark = pytest.mark.both_databases


def _row(app: Firstline, ticket_id: int) -> dict[str, Any]:
    with app.engine.connect() as c:
        return dict(c.execute(select(ticket).where(ticket.c.id == ticket_id)).mappings().one())


def _events(app: Firstline, number: str) -> list[dict[str, Any]]:
    with app.engine.connect() as c:
        q = select(audit_event).where(audit_event.c.ticket == number).order_by(audit_event.c.seq)
        return [dict(r) for r in c.execute(q).mappings()]


def _submit(app: Firstline, dispatcher: Any, user: str = "alice", **kw: Any) -> Any:
    return app.submit(
        kw.pop("runbook", "fake-unlock"),
        kw.pop("params", {"user": user}),
        requester=kw.pop("requester", "agent7"),
        roles=kw.pop("roles", {"agent"}),
        channel=kw.pop("channel", "portal"),
        dispatcher=dispatcher,
        **kw,
    )


def test_submit_writes_a_queued_ticket_and_returns_before_any_step(app: Firstline) -> None:
    manual = Manual()
    sub = _submit(app, manual, actor_id="agent7", client_ip="192.0.2.7", user_agent="UA/1")
    assert manual.sent == [sub.ticket_id] and sub.ticket_number == f"FL-{sub.ticket_id:06d}"
    row = _row(app, sub.ticket_id)
    assert row["state"] == "queued" and row["started_at"] is None
    assert row["runbook_sha256"] == app.runbook("fake-unlock").sha256
    assert (row["opened_by"], row["requester"], row["channel"]) == ("agent7", "agent7", "portal")
    ctx = json.loads(row["run_context"])
    assert ctx == {
        "roles": ["agent"],
        "client_ip": "192.0.2.7",
        "user_agent": "UA/1",
        "secret_params": [],
        "sealed": [],  # nothing for the claim to take from runner.sealed
        "locks": ["account:*:alice"],  # the target lock the claim takes
    }
    assert FakeConnector.calls == []  # nothing ran yet
    opened = _events(app, sub.ticket_number)
    assert [e["action"] for e in opened] == ["ticket.opened"] and json.loads(opened[0]["detail"])["state"] == "queued"

    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    out = app.execute(sub.ticket_id)
    assert out is not None and out.state == "resolved"
    row = _row(app, sub.ticket_id)
    assert row["state"] == "resolved" and row["started_at"] is not None
    # the executing process rebuilt the actor from the ledger: same person, roles and client
    done = _events(app, sub.ticket_number)[-1]
    assert (done["action"], done["actor"], done["actor_roles"], done["client_ip"]) == (
        "ticket.resolved",
        "agent7",
        "agent",
        "192.0.2.7",
    )


def test_a_redelivered_ticket_never_runs_its_steps_twice(app: Firstline) -> None:
    manual = Manual()
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [{}]}
    sub = _submit(app, manual)
    assert app.execute(sub.ticket_id) is not None
    calls, events = list(FakeConnector.calls), _events(app, sub.ticket_number)
    assert [c[1] for c in calls] == ["account_status", "unlock_account", "account_status"]
    for _ in range(3):  # the broker delivers the same id again
        assert app.execute(sub.ticket_id) is None
    assert FakeConnector.calls == calls and _events(app, sub.ticket_number) == events
    assert app.execute(999_999) is None  # an id that does not exist: nothing, no crash


def test_concurrent_claims_of_one_ticket_run_it_exactly_once(app: Firstline) -> None:
    manual = Manual()
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}] * 5, "unlock_account": [{}] * 5}
    sub = _submit(app, manual)
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def worker() -> None:
        barrier.wait()
        results.append(app.execute(sub.ticket_id))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert [c[1] for c in FakeConnector.calls].count("unlock_account") == 1
    with app.engine.connect() as c:
        assert len(c.execute(select(step_result).where(step_result.c.ticket_id == sub.ticket_id)).all()) == 3
    assert app.verify_audit().ok


def test_the_claim_itself_is_the_guard_when_another_worker_wins_the_race(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This worker read the ticket as queued; another one claims it before this one's UPDATE
    (possible on PostgreSQL, where the read takes no lock): this one must do nothing (the
    conditional UPDATE, not the earlier read, decides)."""
    from sqlalchemy import text

    from runner.ledger import progress as progress_mod

    sub = _submit(app, Manual())
    real_claim = progress_mod.claim

    def raced(conn: Any, ticket_id: int, run_timeout_s: float) -> bool:  # between the read and the claim
        conn.execute(text("UPDATE ticket SET state = 'running' WHERE id = :i"), {"i": ticket_id})  # the winner
        return real_claim(conn, ticket_id, run_timeout_s)

    monkeypatch.setattr(progress_mod, "claim", raced)
    assert app.execute(sub.ticket_id) is None
    assert FakeConnector.calls == []
    with app.engine.connect() as c:
        assert c.execute(select(step_result)).all() == []
    assert _row(app, sub.ticket_id)["state"] == "running"  # the winner's


def test_claims_racing_on_threads_succeed_exactly_once(app: Firstline) -> None:
    from runner.ledger import progress as progress_mod

    for _ in range(3):
        sub = _submit(app, Manual())
        barrier = threading.Barrier(8)
        won: list[bool] = []

        def claim(tid: int = sub.ticket_id, barrier: threading.Barrier = barrier, won: list[bool] = won) -> None:
            barrier.wait()
            with app.engine.begin() as conn:
                won.append(progress_mod.claim(conn, tid, 60))

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(won) == [False] * 7 + [True]


def test_a_runbook_changed_and_re_vetted_after_submit_still_does_not_run(app: Firstline, workdir: Path) -> None:
    sub = _submit(app, Manual())
    path = workdir / "runbooks" / "fake-unlock.yaml"
    path.write_text(path.read_text().replace("Unlock an account", "Unlock an account (v2)"))
    app.vet("fake-unlock", "reviewer")  # the new version is approved, but it is not what was requested
    out = app.execute(sub.ticket_id)
    assert out is not None and (out.state, out.reason) == ("escalated", "runbook_changed")
    assert FakeConnector.calls == []


def test_a_runbook_changed_after_submit_is_escalated_without_running(app: Firstline, workdir: Path) -> None:
    manual = Manual()
    sub = _submit(app, manual)
    path = workdir / "runbooks" / "fake-unlock.yaml"
    path.write_text(path.read_text() + "# edited after the request\n")
    out = app.execute(sub.ticket_id)
    assert out is not None and (out.state, out.reason) == ("escalated", "runbook_changed")
    assert FakeConnector.calls == []
    row = _row(app, sub.ticket_id)
    assert (row["state"], row["reason"]) == ("escalated", "runbook_changed")
    last = _events(app, sub.ticket_number)[-1]
    assert (last["action"], last["reason"]) == ("ticket.escalated", "runbook_changed")
    # the same when the file is gone
    path.write_text(path.read_text().replace("# edited after the request\n", ""))
    sub2 = _submit(app, manual)
    path.unlink()
    out2 = app.execute(sub2.ticket_id)
    assert out2 is not None and out2.reason == "runbook_changed" and FakeConnector.calls == []


def test_a_run_whose_approval_was_withdrawn_is_not_run(app: Firstline, workdir: Path) -> None:
    manual = Manual()
    sub, sub2 = _submit(app, manual), _submit(app, manual, user="bob")
    lock = workdir / "runbooks" / "vetted.lock"
    lock.write_text('{"runbooks": {}}\n')
    out = app.execute(sub.ticket_id)
    assert out is not None and (out.state, out.reason) == ("escalated", "runbook_changed")
    # an unreadable approvals file: escalated as well, never left running
    lock.write_text("{}\n")
    out2 = app.execute(sub2.ticket_id)
    assert out2 is not None and out2.state == "escalated"
    assert _row(app, sub2.ticket_id)["state"] == "escalated"
    assert FakeConnector.calls == []


def test_secrets_stay_in_memory_and_are_gone_after_a_restart(app: Firstline, settings: Settings) -> None:
    password = "S3cret-Pässwörd-ﬁ-42"
    manual = Manual()
    sub = _submit(app, manual, runbook="fake-reset", params={"user": "bob", "new_password": password})
    row = _row(app, sub.ticket_id)
    assert json.loads(row["params"])["new_password"] == REDACTED
    assert json.loads(row["run_context"])["secret_params"] == ["new_password"]
    # another process (or this one after a restart) has no secrets: escalated, nothing done
    other = open_app(settings, connectors={"fake": FakeConnector})
    try:
        out = other.execute(sub.ticket_id)
    finally:
        other.close()
    assert out is not None and (out.state, out.reason) == ("escalated", "secrets_unavailable")
    assert FakeConnector.calls == []
    # here they were removed when the ticket was claimed, even though the claim was elsewhere
    assert app.execute(sub.ticket_id) is None
    assert sub.ticket_id not in app.runs._run_secrets

    # in the submitting process the secret reaches the connector, and never the database
    FakeConnector.script = {"reset_password": [{}]}
    sub2 = _submit(app, manual, runbook="fake-reset", params={"user": "bob", "new_password": password})
    assert sub2.ticket_id in app.runs._run_secrets
    out2 = app.execute(sub2.ticket_id)
    assert out2 is not None and out2.state == "resolved"
    assert FakeConnector.calls[-1] == ("f1", "reset_password", {"user": "bob", "new_password": password})
    assert sub2.ticket_id not in app.runs._run_secrets
    blob = database_bytes(settings.database_url)
    blob += settings.log_file.read_bytes() if settings.log_file and settings.log_file.exists() else b""
    blob += "".join(app.export_audit("jsonl")).encode()
    for form in (password, json.dumps(password)[1:-1], json.dumps(password, ensure_ascii=False)[1:-1]):
        assert form.encode() not in blob


def test_the_in_process_pool_refuses_when_full_and_loses_nothing(app: Firstline) -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    def slow(_inputs: dict[str, Any]) -> dict[str, Any]:
        entered.release()
        assert release.wait(10)
        return {"locked": False}

    FakeConnector.script = {"account_status": [slow, {"locked": False}, slow, {"locked": False}]}
    pool = InProcessDispatcher(app.execute, workers=1, queue_size=1)
    try:
        first = _submit(app, pool, user="u1")
        assert entered.acquire(timeout=10)  # the single worker is busy
        second = _submit(app, pool, user="u2")  # waits in the queue
        with app.engine.connect() as c:
            before = c.execute(select(ticket.c.id)).all()
        with pytest.raises(QueueFull, match="busy"):
            _submit(app, pool, user="u3")
        with app.engine.connect() as c:
            assert c.execute(select(ticket.c.id)).all() == before  # refused: no ticket written
            refused = c.execute(select(audit_event).order_by(audit_event.c.seq.desc())).mappings().first()
        assert refused is not None and (refused["action"], refused["reason"]) == ("run.refused", "queue_full")
        assert pool.depth() == 2
        release.set()
        for sub in (first, second):
            out = app.runs.wait(sub.ticket_id, timeout=20)
            assert out is not None and out.state == "resolved"
        assert pool.depth() == 0
        third = _submit(app, pool, user="u3")  # room again
        assert app.runs.wait(third.ticket_id, timeout=20) is not None
    finally:
        release.set()
        pool.close()


def test_step_rows_are_visible_while_the_step_runs(app: Firstline) -> None:
    proceed = threading.Event()
    seen: dict[str, Any] = {}

    def unlock(_inputs: dict[str, Any]) -> dict[str, Any]:
        assert proceed.wait(10), "the test never read the running row"
        return {"unlocked": True, "changed": True}

    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": False}], "unlock_account": [unlock]}
    pool = InProcessDispatcher(app.execute, workers=1, queue_size=0)
    try:
        sub = _submit(app, pool)
        deadline = time.monotonic() + 10
        position = 0
        steps: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            got = app.follow(sub.ticket_id, position)
            steps += got.steps
            position = got.last_seq
            if any(s["step_id"] == "unlock" and s["status"] == "running" for s in got.steps):
                seen["state"] = got.state
                break
            time.sleep(0.01)
        assert seen.get("state") == "running", steps
        assert [(s["step_id"], s["status"]) for s in steps][-1] == ("unlock", "running")
        proceed.set()
        while time.monotonic() < deadline:
            got = app.follow(sub.ticket_id, position)
            steps += got.steps
            position = got.last_seq
            if got.done:
                break
            time.sleep(0.01)
        assert got.done and got.state == "resolved"
        # each change once, in order; positions only grow; the last position of each step is its finish
        positions = [s["event_seq"] for s in steps]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        final = {s["step_id"]: s["status"] for s in steps}
        assert final == {"check": "ok", "unlock": "ok", "verify": "ok"}
        assert app.follow(sub.ticket_id, position).steps == []  # nothing after the end
        replay = app.follow(sub.ticket_id, 0)  # a late follower replays the stored rows
        assert [(s["step_id"], s["status"]) for s in replay.steps] == [
            ("check", "ok"),
            ("unlock", "ok"),
            ("verify", "ok"),
        ]
    finally:
        proceed.set()
        pool.close()


def test_the_sweep_ends_queued_and_running_tickets_past_their_deadline(app: Firstline) -> None:
    manual = Manual()
    queued = _submit(app, manual, user="q1")
    fresh = _submit(app, manual, user="q2")  # deadline in the future: left alone
    running = _submit(app, manual, user="r1")
    past = "2000-01-01T00:00:00.000000+00:00"
    with app.engine.begin() as c:
        c.execute(update(ticket).where(ticket.c.id == queued.ticket_id).values(deadline_at=past))
        c.execute(update(ticket).where(ticket.c.id == running.ticket_id).values(state="running", deadline_at=past))
    swept = app.sweep()
    assert swept == [queued.ticket_number, running.ticket_number]
    assert (_row(app, queued.ticket_id)["state"], _row(app, queued.ticket_id)["reason"]) == (
        "escalated",
        "never_started",
    )
    assert (_row(app, running.ticket_id)["state"], _row(app, running.ticket_id)["reason"]) == ("escalated", "run_lost")
    assert _row(app, fresh.ticket_id)["state"] == "queued"
    assert app.sweep() == []
    # a swept ticket is never run afterwards (its message arrives late)
    assert app.execute(queued.ticket_id) is None and FakeConnector.calls == []
    assert app.verify_audit().ok


def test_the_sweep_leaves_final_tickets_alone(app: Firstline) -> None:
    subs = [_submit(app, Manual(), user=f"u{n}") for n in range(3)]
    with app.engine.begin() as c:
        for sub, state in zip(subs, ("resolved", "closed", "escalated"), strict=True):
            c.execute(
                update(ticket)
                .where(ticket.c.id == sub.ticket_id)
                .values(state=state, deadline_at="2000-01-01T00:00:00.000000+00:00")
            )
    assert app.sweep() == []
    assert [_row(app, sub.ticket_id)["state"] for sub in subs] == ["resolved", "closed", "escalated"]


def test_a_claim_renews_the_deadline_so_the_sweep_leaves_a_live_run_alone(app: Firstline) -> None:
    manual = Manual()
    sub = _submit(app, manual)
    past = "2000-01-01T00:00:00.000000+00:00"
    with app.engine.begin() as c:  # queued for too long...
        c.execute(update(ticket).where(ticket.c.id == sub.ticket_id).values(deadline_at=past))
    inside: dict[str, Any] = {}

    def check(_inputs: dict[str, Any]) -> dict[str, Any]:
        inside["swept"] = app.sweep()  # ...but claimed before the sweep ran
        return {"locked": False}

    FakeConnector.script = {"account_status": [check, {"locked": False}]}
    out = app.execute(sub.ticket_id)
    assert inside["swept"] == [] and out is not None and out.state == "resolved"


def test_the_sweep_acts_only_on_what_it_saw(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ticket listed as stale but claimed (deadline renewed) before the sweep closes it is left alone."""
    from runner.ledger import tickets as tickets_mod

    sub = _submit(app, Manual())
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    with app.engine.begin() as c:
        c.execute(update(ticket).where(ticket.c.id == sub.ticket_id).values(deadline_at="2000-01-01T00:00:00+00:00"))
    stale = tickets_mod.stale_tickets(app.engine)
    assert stale == [(sub.ticket_id, "queued")]
    out = app.execute(sub.ticket_id)  # claimed and finished meanwhile
    assert out is not None and out.state == "resolved"
    with app.engine.begin() as c:  # ...or claimed and still running with a fresh deadline
        back = {"state": "running", "resolved_at": None, "closed_at": None}
        c.execute(update(ticket).where(ticket.c.id == sub.ticket_id).values(**back))
    monkeypatch.setattr(tickets_mod, "stale_tickets", lambda _engine: stale)
    assert app.sweep() == []
    assert _row(app, sub.ticket_id)["state"] == "running"


def test_a_dispatcher_that_cannot_take_the_id_ends_the_ticket_not_dispatched(app: Firstline) -> None:
    """Said as it is (a broker that is down), not "the request waited too long" (``never_started``)."""
    sub = _submit(app, Manual(fail=True))
    row = _row(app, sub.ticket_id)
    assert (row["state"], row["reason"]) == ("escalated", "not_dispatched")
    assert row["message"].startswith("The request could not be handed to a worker")
    assert FakeConnector.calls == []


def test_the_inline_dispatcher_runs_inside_submit(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": False}, {"locked": False}]}
    inline = InlineDispatcher(app.execute)
    sub = _submit(app, inline)
    out = inline.results[sub.ticket_id]
    assert out is not None and out.state == "resolved" and _row(app, sub.ticket_id)["state"] == "resolved"


def test_wait_hands_over_secret_outputs_of_a_run_executed_here_once(app: Firstline) -> None:
    FakeConnector.script = {"reset_password": [{"temporary_password": "Tmp-Once-123", "changed": True}]}
    pool = InProcessDispatcher(app.execute, workers=1, queue_size=1)
    try:
        sub = _submit(app, pool, runbook="fake-reset", params={"user": "bob"})
        out = app.runs.wait(sub.ticket_id, timeout=20)
        assert out is not None and out.state == "resolved"
        assert out.secrets == {"reset.temporary_password": "Tmp-Once-123"}
        again = app.runs.wait(sub.ticket_id, timeout=5)  # from the ledger now: no secret
        assert again is not None and again.state == "resolved" and again.secrets == {}
        assert [s.step_id for s in again.steps] == ["reset"]
    finally:
        pool.close()


def test_the_background_sweeper_runs_periodically(app: Firstline) -> None:
    sub = _submit(app, Manual())
    with app.engine.begin() as c:
        c.execute(
            update(ticket).where(ticket.c.id == sub.ticket_id).values(deadline_at="2000-01-01T00:00:00.000000+00:00")
        )
    sweeper = app.runs.start_sweeper(0.05)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _row(app, sub.ticket_id)["state"] == "queued":
            time.sleep(0.02)
    finally:
        sweeper.stop()
    assert _row(app, sub.ticket_id)["reason"] == "never_started"


def test_old_in_progress_tickets_become_running_and_are_swept(
    tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    from alembic import command
    from alembic.config import Config

    url = make_database_url(tmp_path / "old.db", migrated=False)
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ticket (requester, subject, channel, category, type, runbook, runbook_sha256, params,"
                " state, impact, urgency, priority, correlation_id, opened_at, updated_at, deadline_at) VALUES"
                " ('a','a','cli','c','request','r','s','{}','in_progress',3,2,4,'x','t','t',"
                " '2000-01-01T00:00:00.000000+00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO step_result (ticket_id, seq, step_id, connector, action, status, inputs, outputs,"
                " attempts, started_at) VALUES (1, 1, 's', 'c', 'a', 'ok', '{}', '{}', 1, 't')"
            )
        )
    store.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM ticket")).scalar() == "running"
        assert conn.execute(text("SELECT event_seq FROM step_result")).scalar() == 2
        conn.execute(text("UPDATE ticket SET state = 'awaiting_approval'"))  # 17 characters fit now
    engine.dispose()


def test_a_server_database_is_not_migrated_as_a_side_effect(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> None:
    engine = create_engine(make_database_url(tmp_path / "empty.db", migrated=False))
    with pytest.raises(LedgerError, match="firstline db upgrade"):
        store.ensure_schema(engine, migrate=False)
    store.ensure_schema(engine, migrate=True)
    store.ensure_schema(engine, migrate=False)  # current now: fine
    engine.dispose()


def test_a_ticket_awaiting_approval_is_neither_run_nor_swept(app: Firstline) -> None:
    sub = _submit(app, Manual())
    with app.engine.begin() as c:
        c.execute(
            update(ticket)
            .where(ticket.c.id == sub.ticket_id)
            .values(state="awaiting_approval", deadline_at="2000-01-01T00:00:00.000000+00:00")
        )
    assert app.execute(sub.ticket_id) is None and FakeConnector.calls == []
    assert app.sweep() == []
    assert _row(app, sub.ticket_id)["state"] == "awaiting_approval"
