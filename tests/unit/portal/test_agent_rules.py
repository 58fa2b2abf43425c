"""Units for the agent desk's rules (runner/agent.py) and the once-only hand-over of a
temporary password (portal/oneshot.py): reasons, account names, scope, the guard on every
portal run, host-fix choices, and that refusals happen before any connector is asked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from portal import oneshot
from runner import agent
from runner.api import open_app
from runner.auth import Principal
from runner.errors import NotFoundError, ParameterError, PolicyDenied
from runner.service import Firstline
from runner.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def _app(tmp_path: Path, **settings: Any) -> Firstline:
    return open_app(
        Settings(
            environment="test",
            data_dir=tmp_path,
            runbooks_dir=REPO / "runbooks",
            inventory=REPO / "lab" / "inventory.yaml",
            **settings,
        )
    )


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Firstline]:
    a = _app(tmp_path)
    yield a
    a.close()


class NoPool:
    """Stands in for the connector pool: any use fails the test (nothing may reach a connector)."""

    def get(self, *_a: Any, **_k: Any) -> Any:
        raise AssertionError("a connector was asked")


@pytest.fixture
def no_connectors(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> Firstline:
    monkeypatch.setattr(type(app), "pool", property(lambda _self: NoPool()))
    return app


def who(*roles: str, directory: str = "corp") -> Principal:
    return Principal("ann@example.org", directory, "ann", "uid=ann,dc=x", "Ann", frozenset({"employee", *roles}))


AGENT = who("agent")


@pytest.mark.parametrize(
    "reason",
    [
        "",
        " ",
        "\t",
        "r" * 501,
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\x1b[31mb",
        "a\u202eb",
        "a\u2066b",
        "a\u200bb",
        "a\ufeffb",
        None,
        5,
        ["x"],
    ],
)
def test_a_reason_is_required_printable_and_short(reason: object) -> None:
    with pytest.raises(ParameterError, match="The reason"):
        agent.work_note(reason)


def test_a_good_reason_is_kept_stripped() -> None:
    assert agent.work_note("  Caller verified, INC-1 é ü 中  ") == "Caller verified, INC-1 é ü 中"
    assert agent.work_note("r" * 500) == "r" * 500


@pytest.mark.parametrize(
    "name",
    [
        "*)(uid=*",
        "a)(|(x=*",
        "a\x00",
        "\u202eadmin",
        "x" * 65,
        "alice@example.org",
        "EX\\alice",
        "-alice",
        ".x",
        "a b",
        "",
        None,
        "аlice",
    ],
)
def test_account_names_are_bare_and_plain(name: object) -> None:
    with pytest.raises(ParameterError):
        agent.account_name(name)


def test_scope_defaults_to_the_own_directory(tmp_path: Path) -> None:
    app = _app(tmp_path)
    try:
        assert [d.key for d in agent.scope(app, AGENT)] == ["corp"]
        assert [d.key for d in agent.scope(app, who("agent", directory="ad"))] == ["ad"]
        with pytest.raises(PolicyDenied, match="only: corp"):
            agent.directory_in_scope(app, AGENT, "ad")
        with pytest.raises(ParameterError):
            agent.directory_in_scope(app, AGENT, "nowhere")
        with pytest.raises(ParameterError):
            agent.directory_in_scope(app, AGENT, "corp\x00")
        for missing in (None, ""):  # not given: say so, not "not one of the directories"
            with pytest.raises(ParameterError, match=r"Say which directory the account is in \(directory: one of"):
                agent.directory_in_scope(app, AGENT, missing)
        with pytest.raises(PolicyDenied, match="agent role"):
            agent.directory_in_scope(app, who(), "corp")
    finally:
        app.close()


def test_scope_from_settings_and_only_declared_directories(tmp_path: Path) -> None:
    app = _app(tmp_path, agent_scopes={"corp": ["corp", "ad", "ghost"]})
    try:
        assert [d.key for d in agent.scope(app, AGENT)] == ["corp", "ad"]
        assert agent.directory_in_scope(app, AGENT, "ad").target == "ad"
    finally:
        app.close()


@pytest.mark.parametrize("runbook", ["account-status", "password-change", "nope", "", None, "ACCOUNT-UNLOCK"])
def test_only_the_one_click_fixes(no_connectors: Firstline, runbook: object) -> None:
    with pytest.raises(NotFoundError):
        agent.prepare_fix(no_connectors, AGENT, runbook, {}, "why", client_ip=None, user_agent=None)


def test_refusals_come_before_any_connector(no_connectors: Firstline) -> None:
    app = no_connectors
    good = {"user": "alice", "directory": "corp"}
    with pytest.raises(PolicyDenied):
        agent.prepare_fix(app, who(), "account-unlock", good, "why", client_ip=None, user_agent=None)
    with pytest.raises(ParameterError):
        agent.prepare_fix(app, AGENT, "account-unlock", good, "", client_ip=None, user_agent=None)
    with pytest.raises(PolicyDenied):
        agent.prepare_fix(
            app, AGENT, "account-unlock", {**good, "directory": "ad"}, "why", client_ip=None, user_agent=None
        )
    with pytest.raises(ParameterError):
        agent.prepare_fix(app, AGENT, "password-reset", {**good, "user": "*"}, "why", client_ip=None, user_agent=None)
    with pytest.raises(ParameterError):
        agent.lookup(app, AGENT, "corp", "a)(uid=*", client_ip=None, user_agent=None)


@pytest.mark.parametrize("choice", ["print-01", "office-1/../x", "OFFICE-1", "", None, "x" * 300, "lab-daemon"])
def test_host_fixes_take_a_key_of_their_own_choices(no_connectors: Firstline, choice: object) -> None:
    with pytest.raises(ParameterError, match="Choose one of the offered options"):
        agent.prepare_fix(
            no_connectors, AGENT, "printer-queue-clear", {"choice": choice}, "why", client_ip=None, user_agent=None
        )


def test_host_fix_request(no_connectors: Firstline) -> None:
    fix = agent.prepare_fix(
        no_connectors, AGENT, "service-restart", {"choice": "lab-daemon"}, " why ", client_ip=None, user_agent=None
    )
    assert (fix.params, fix.requester, fix.work_note) == ({"service": "lab-daemon"}, AGENT.account, "why")
    # a valid on_behalf_of is looked up in the directory (tests/integration/portal/test_agent.py);
    # a malformed one is refused before any look-up
    with pytest.raises(ParameterError):
        agent.prepare_fix(
            no_connectors,
            AGENT,
            "disk-cleanup",
            {"choice": "app-cache", "on_behalf_of": "b)(x"},
            "why",
            client_ip=None,
            user_agent=None,
        )
    assert ("office-1", "Office printer 1 (2nd floor)") in agent.choices(no_connectors, "printer-queue-clear")


def test_guard_on_every_portal_run(no_connectors: Firstline) -> None:
    app = no_connectors
    agent.guard_run(app, who(), "account-unlock", {"user": "bob"}, None)  # employees: the runner pins them
    agent.guard_run(app, AGENT, "account-unlock", {}, None)  # an agent for themself
    agent.guard_run(app, AGENT, "printer-queue-clear", {"printer": "office-1"}, None)
    for params in ({"user": "bob"}, {"directory": "corp"}, {"user": "bob@example.test"}):
        with pytest.raises(PolicyDenied, match="agent desk"):
            agent.guard_run(app, AGENT, "account-unlock", params, None)
    with pytest.raises(PolicyDenied):
        agent.guard_run(app, AGENT, "account-unlock", {"user": "bob", "directory": "ad"}, "why")
    with pytest.raises(ParameterError):
        agent.guard_run(app, AGENT, "account-unlock", {"user": "bob@example.test", "directory": "corp"}, "why")
    agent.guard_run(app, AGENT, "account-unlock", {"user": "bob", "directory": "corp"}, "why")


def test_temporary_password_is_found_among_the_secrets() -> None:
    assert agent.temporary_password({"reset.temporary_password": "T"}) == "T"
    assert agent.temporary_password({"x.other": "y"}) is None


def test_oneshot_gives_the_secret_once_to_its_owner_for_its_ticket(monkeypatch: pytest.MonkeyPatch) -> None:
    token = oneshot.put("session:1", "FL-000001", "s3cret")
    assert oneshot.take(token, "session:2", "FL-000001") is None  # another session
    assert oneshot.take(token, "session:1", "FL-000002") is None  # another ticket
    assert oneshot.take(token, "session:1", "FL-000001") == "s3cret"
    assert oneshot.take(token, "session:1", "FL-000001") is None  # once
    assert oneshot.take(None, "session:1", "FL-000001") is None
    assert oneshot.take("x" * 100, "session:1", "FL-000001") is None
    clock = [1000.0]
    monkeypatch.setattr(oneshot.time, "monotonic", lambda: clock[0])
    token = oneshot.put("session:1", "FL-000003", "later")
    clock[0] += oneshot.TTL + 1
    assert oneshot.take(token, "session:1", "FL-000003") is None  # expired


class FakeLdap:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer, self.calls = answer, []

    def run(self, action: str, inputs: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        self.calls.append((action, inputs))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _with_ldap(app: Firstline, monkeypatch: pytest.MonkeyPatch, fake: FakeLdap) -> None:
    class Pool:
        @contextmanager
        def using(self, connector: str, target: str) -> Iterator[FakeLdap]:
            assert (connector, target) == ("ldap", "corp")
            yield fake

    monkeypatch.setattr(type(app), "pool", property(lambda _self: Pool()))


def _lookups(app: Firstline) -> list[tuple[str, str, str | None]]:
    from sqlalchemy import select

    from runner.ledger.tables import audit_event

    with app.engine.connect() as conn:
        rows = conn.execute(
            select(audit_event.c.outcome, audit_event.c.target, audit_event.c.reason).where(
                audit_event.c.action == "agent.account_lookup"
            )
        )
        return [(r.outcome, r.target, r.reason) for r in rows]


def test_lookup_reads_through_account_status_and_is_audited(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> None:
    status = {
        "exists": True,
        "locked": True,
        "lock_reason": "failures",
        "privileged": False,
        "given_name": "B",
        "surname": "C",
    }
    fake = ByAction({"account_status": status, "account_groups": {"groups": [], "groups_complete": True}})
    _with_ldap(app, monkeypatch, fake)
    view = agent.lookup(app, AGENT, "corp", "bob", client_ip="192.0.2.1", user_agent="ua")
    # the groups too, since a reset is offered (withheld for a portal role holder)
    assert fake.calls == [("account_status", {"user": "bob"}), ("account_groups", {"user": "bob"})]
    assert view.locked and view.fixes == ("account-unlock", "password-reset") and view.name == "B C"
    assert view.withheld == ()
    assert _lookups(app) == [("success", "corp:bob", None)]
    fake.calls.clear()
    fake.answers["account_status"] = {"exists": True, "privileged": True}
    assert agent.lookup(app, AGENT, "corp", "root", client_ip=None, user_agent=None).fixes == ()
    assert [c[0] for c in fake.calls] == ["account_status"]  # no fix offered: nothing more to ask
    with pytest.raises(PolicyDenied, match="protected"):
        agent.prepare_fix(
            app, AGENT, "account-unlock", {"user": "root", "directory": "corp"}, "x", client_ip=None, user_agent=None
        )


def test_a_directory_that_does_not_answer_is_a_503_kind_of_error(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.base import ConnectorError

    _with_ldap(app, monkeypatch, FakeLdap(ConnectorError("down", reason="unreachable")))
    with pytest.raises(agent.LookupFailed):
        agent.lookup(app, AGENT, "corp", "bob", client_ip=None, user_agent=None)
    assert _lookups(app) == [("failure", "corp:bob", "unreachable")]


def _actions(app: Firstline) -> list[tuple[int, str, str | None]]:
    from sqlalchemy import select

    from runner.ledger.tables import audit_event

    with app.engine.connect() as conn:
        rows = conn.execute(select(audit_event.c.seq, audit_event.c.action, audit_event.c.target))
        return [(r.seq, r.action, r.target) for r in rows]


LOCKED_BOB = {"exists": True, "locked": True, "lock_reason": "failures", "privileged": False}


def test_a_fixs_look_up_is_written_with_its_ticket_once(app: Firstline, monkeypatch: pytest.MonkeyPatch) -> None:
    """The look-up's event waits for the ticket's transaction: written there, just before
    ``ticket.opened``, and not again by the flush that follows."""
    from tests.fakes import Manual

    _with_ldap(app, monkeypatch, FakeLdap(dict(LOCKED_BOB)))
    fix = agent.prepare_fix(
        app, AGENT, "account-unlock", {"user": "bob", "directory": "corp"}, "call 12", client_ip=None, user_agent=None
    )
    assert _lookups(app) == [] and fix.held is not None and len(fix.held.events) == 1  # held, not yet written
    app.runs.submit(
        fix.runbook,
        fix.params,
        requester=fix.requester,
        roles=set(AGENT.roles),
        channel="api",
        actor_id=AGENT.account,
        dispatcher=Manual(),
        work_note=fix.work_note,
        held=fix.held,
    )
    agent.flush_held(app, fix.held)
    events = _actions(app)
    (look,) = [e for e in events if e[1] == "agent.account_lookup"]
    (opened,) = [e for e in events if e[1] == "ticket.opened"]
    assert look[2] == "corp:bob" and opened[0] == look[0] + 1 and fix.held.events == []


def test_a_fix_refused_by_the_run_seam_still_records_its_look_up_first(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.dispatch import QueueFull

    class Full:
        name = "full"

        @contextmanager
        def reserve(self) -> Iterator[Any]:
            raise QueueFull("busy")
            yield  # pragma: no cover

    _with_ldap(app, monkeypatch, FakeLdap(dict(LOCKED_BOB)))
    fix = agent.prepare_fix(
        app, AGENT, "account-unlock", {"user": "bob", "directory": "corp"}, "call 12", client_ip=None, user_agent=None
    )
    with pytest.raises(QueueFull):
        app.runs.submit(
            fix.runbook,
            fix.params,
            requester=fix.requester,
            roles=set(AGENT.roles),
            channel="api",
            actor_id=AGENT.account,
            dispatcher=Full(),  # type: ignore[arg-type]
            held=fix.held,
        )
    agent.flush_held(app, fix.held)
    actions = [a for _s, a, _t in _actions(app)]
    assert actions == ["agent.account_lookup", "run.refused"]


def test_held_events_survive_a_rolled_back_transaction_and_are_written_once(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.ledger.store import transaction

    _with_ldap(app, monkeypatch, FakeLdap(dict(LOCKED_BOB)))
    fix = agent.prepare_fix(
        app, AGENT, "account-unlock", {"user": "bob", "directory": "corp"}, "call 12", client_ip=None, user_agent=None
    )
    assert fix.held is not None
    with pytest.raises(RuntimeError), transaction(app.engine) as conn:
        fix.held.write(conn, app.audit)
        raise RuntimeError("the ticket's transaction failed")
    assert _lookups(app) == [] and len(fix.held.events) == 1  # rolled back: still held
    agent.flush_held(app, fix.held)
    agent.flush_held(app, fix.held)
    assert _lookups(app) == [("success", "corp:bob", None)]


def test_a_fix_refused_in_prepare_records_the_look_up_before_the_refusal(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_ldap(app, monkeypatch, FakeLdap({"exists": True, "privileged": True}))
    with pytest.raises(PolicyDenied):
        agent.prepare_fix(
            app, AGENT, "account-unlock", {"user": "root", "directory": "corp"}, "x", client_ip=None, user_agent=None
        )
    _with_ldap(app, monkeypatch, FakeLdap({"exists": False}))
    with pytest.raises(ParameterError):
        agent.prepare_fix(
            app, AGENT, "account-unlock", {"user": "nobody", "directory": "corp"}, "x", client_ip=None, user_agent=None
        )
    assert [(a, t) for _s, a, t in _actions(app)] == [
        ("agent.account_lookup", "corp:root"),
        ("agent.fix_refused", "corp:root"),
        ("agent.account_lookup", "corp:nobody"),
    ]


def test_a_must_change_the_directory_may_not_enforce_is_not_shown_as_must_change(
    app: Firstline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``must_change_unknown`` (OpenLDAP: pwdReset under a policy that could not be read) is its
    own line on the agent desk, never "must be changed at the next sign-in"."""
    _with_ldap(app, monkeypatch, FakeLdap({"exists": True, "must_change": False, "must_change_unknown": True}))
    view = agent.lookup(app, AGENT, "corp", "bob", client_ip=None, user_agent=None)
    assert (view.must_change, view.must_change_unknown) == (False, True)
    assert view.as_dict()["must_change_unknown"] is True
    from dataclasses import replace

    from portal.rendering import make_templates

    page = make_templates().env.get_template("agent/account.html")
    values = {
        "view": replace(view, fixes=(), withheld=()),
        "error": None,
        "csrf_token": "",
        "form_token": "",
        "temporary": None,
    }
    context = page.new_context({**values, "_": lambda text, **kw: text % kw if kw else text})
    html = "".join(page.blocks["content"](context))
    assert "could not be read" in html and "must be changed at the next sign-in." not in html


class ByAction(FakeLdap):
    """Answers per action (``account_status`` and ``account_groups``), recording each call."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        super().__init__({})
        self.answers = answers

    def run(self, action: str, inputs: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        self.calls.append((action, inputs))
        return self.answers[action]


AGENTS_DN, AUDITORS_DN = "cn=desk,ou=groups,dc=example,dc=org", "cn=audit,ou=groups,dc=example,dc=org"


@pytest.mark.parametrize(
    ("groups", "complete", "reason"),
    [
        ([AGENTS_DN], True, "portal_role"),  # a fellow agent: the agent would sign in as them
        (["CN=Audit, OU=Groups,DC=example,DC=org"], True, "portal_role"),  # as sign-in compares DNs
        (["cn=staff,ou=groups,dc=example,dc=org"], False, "roles_unknown"),  # the walk did not finish
        ([], True, None),
    ],
)
def test_a_reset_is_refused_for_an_account_that_holds_a_portal_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, groups: list[str], complete: bool, reason: str | None
) -> None:
    app = _app(tmp_path, agent_groups={"corp": [AGENTS_DN]}, auditor_groups={"corp": [AUDITORS_DN]})
    try:
        fake = ByAction(
            {
                "account_status": {"exists": True, "locked": True},
                "account_groups": {"exists": True, "groups": groups, "groups_complete": complete},
            }
        )
        _with_ldap(app, monkeypatch, fake)
        values = {"user": "bob", "directory": "corp"}
        if reason is None:
            agent.prepare_fix(app, AGENT, "password-reset", values, "x", client_ip=None, user_agent=None)
        else:
            with pytest.raises(PolicyDenied) as refused:
                agent.prepare_fix(app, AGENT, "password-reset", values, "x", client_ip=None, user_agent=None)
            text = agent.PORTAL_ROLE if reason == "portal_role" else agent.ROLES_UNKNOWN
            assert str(refused.value) == text
            assert [(a, t) for _s, a, t in _actions(app)] == [
                ("agent.account_lookup", "corp:bob"),
                ("agent.fix_refused", "corp:bob"),
            ]
        assert [c[0] for c in fake.calls] == ["account_status", "account_groups"]
        # the look-up does not offer what submitting would refuse, and says why
        view = agent.lookup(app, AGENT, "corp", "bob", client_ip=None, user_agent=None)
        if reason is None:
            assert (view.fixes, view.withheld) == (("account-unlock", "password-reset"), ())
        else:
            assert view.fixes == ("account-unlock",)
            assert [(f, r) for f, r, _m in view.withheld] == [("password-reset", reason)]
        # an unlock hands over nothing: it asks only the look-up, whoever holds the account
        fake.calls.clear()
        agent.prepare_fix(app, AGENT, "account-unlock", values, "x", client_ip=None, user_agent=None)
        assert [c[0] for c in fake.calls] == ["account_status"]
    finally:
        app.close()
