"""Directory routing (issue 7 item 10): which directory a run acts on, how an account name
picks one, and that tickets and audit events name it. Uses the scripted fake connector;
tests/integration/directory/test_directory_routing.py runs the same rules on slapd and Samba."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text

from runner import params as params_mod
from runner.api import open_app
from runner.errors import ConfigError, ParameterError, PolicyDenied, RunbookError
from runner.inventory import Inventory, load_inventory
from runner.ledger import store
from runner.ledger.tables import audit_event, ticket
from runner.runbook import Runbook, load_runbook
from runner.service import Firstline
from runner.settings import Settings
from tests.databases import MakeDatabaseUrl
from tests.fakes import FakeConnector

pytestmark = pytest.mark.both_databases

CONNECTORS = {"fake": FakeConnector}

INVENTORY = """\
defaults: {fake: t-corp}
targets:
  t-corp: {connector: fake}
  t-ad: {connector: fake}
  t-other: {connector: fake}
directories:
  corp: {label: "Example Org (OpenLDAP)", target: t-corp, domains: [example.org], netbios: EXAMPLE-ORG}
  ad:
    label: "Example Test (AD)"
    target: t-ad
    domains: [example.test, Corp.Example.Test, kantoor.example.test]
    netbios: [EXAMPLE, LAB-SITE]
"""

STATUS = """\
schema_version: 1
name: dir-status
title: {en: Check an account}
category: identity/account
audience: [self_service, agent]
parameters:
  - {name: user, type: account, default: "{{ requester }}"}
  - {name: directory, type: directory}
steps:
  - id: status
    connector: fake
    target: "{{ params.directory.target }}"
    action: account_status
    with: {user: "{{ params.user }}"}
  - id: unlock
    connector: fake
    target: "{{ params.directory.target }}"
    action: unlock_account
    with: {user: "{{ params.user }}"}
    when: "{{ steps.status.locked }}"
on_failure: {escalate_to: service-desk-l2}
resolution: {code: information_provided, note: "{{ params.user }} in {{ params.directory.label }}"}
"""


def _inventory(tmp_path: Path, text_: str = INVENTORY) -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(text_)
    return load_inventory(path, CONNECTORS)


def _runbook(tmp_path: Path, text_: str = STATUS, name: str = "dir-status") -> Runbook:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text_)
    return load_runbook(path, CONNECTORS)


@pytest.fixture
def inv(tmp_path: Path) -> Inventory:
    return _inventory(tmp_path)


@pytest.fixture
def rb(tmp_path: Path) -> Runbook:
    return _runbook(tmp_path)


def _validate(
    rb: Runbook, inv: Inventory, raw: dict[str, Any], *, requester: str = "agent7", agent: bool = True
) -> Any:
    roles = frozenset({"agent"} if agent else {"employee"})
    return params_mod.validate(rb, raw, requester=requester, roles=roles, channel="cli", inventory=inv)


# -- the inventory section ------------------------------------------------------------------


def test_directories_are_read_with_their_routes(inv: Inventory) -> None:
    dirs = inv.directories
    assert sorted(dirs.entries) == ["ad", "corp"] and dirs.default == "corp"  # defaults.fake is t-corp
    assert dirs.entries["ad"].domains == ("example.test", "corp.example.test", "kantoor.example.test")  # lower case
    assert dirs.entries["ad"].netbios == ("EXAMPLE", "LAB-SITE") and dirs.entries["corp"].netbios == ("EXAMPLE-ORG",)


def test_default_directory_follows_defaults_ldap_else_the_only_one(tmp_path: Path) -> None:
    two = INVENTORY.replace("defaults: {fake: t-corp}", "defaults: {fake: t-ad}")
    assert _inventory(tmp_path, two).directories.default == "ad"
    other = INVENTORY.replace("defaults: {fake: t-corp}", "defaults: {fake: t-other}")
    assert _inventory(tmp_path, other).directories.default is None
    none = INVENTORY.replace("defaults: {fake: t-corp}", "defaults: {}")
    assert _inventory(tmp_path, none).directories.default is None
    one = "targets:\n  t1: {connector: fake}\ndirectories:\n  only: {target: t1}\n"
    assert _inventory(tmp_path, one).directories.default == "only"
    implicit = "defaults: {ldap: t1}\ntargets:\n  t1: {connector: fake}\n"
    d = _inventory(tmp_path, implicit).directories
    assert list(d.entries) == ["t1"] and d.default == "t1" and d.entries["t1"].domains == ()
    assert _inventory(tmp_path, "targets:\n  t1: {connector: fake}\n").directories.entries == {}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  corp: {target: nowhere}\n", "directories.corp.target must name a target"),
        ("  corp: {label: x}\n", "directories.corp.target must name a target"),
        ("  corp: t-corp\n", "directories.corp: expected a mapping"),
        ("  Corp: {target: t-corp}\n", "directories.Corp: names are lower case"),
        ("  corp: {target: t-corp, domain: example.org}\n", "directories.corp: unknown field(s) domain"),
        ("  corp: {target: t-corp, domains: [example.org.]}\n", "is not a DNS domain"),
        ("  corp: {target: t-corp, domains: [exаmple.org]}\n", "is not a DNS domain"),  # Cyrillic а
        ("  corp: {target: t-corp, domains: ['*.example.org']}\n", "is not a DNS domain"),
        ("  corp: {target: t-corp, domains: example.org}\n", None),  # one name is fine
        ("  corp: {target: t-corp, domains: [{x: 1}]}\n", "must be a name or a list of names"),
        ("  corp: {target: t-corp, netbios: TOO-LONG-A-NETBIOS}\n", "is not a NetBIOS domain name"),
        ("  corp: {target: t-corp, netbios: 'EX AMPLE'}\n", "is not a NetBIOS domain name"),
        ("  corp: {target: t-corp, netbios: 'EX.AMPLE'}\n", "is not a NetBIOS domain name"),
        (
            "  corp: {target: t-corp, domains: [example.org]}\n  ad: {target: t-ad, domains: [EXAMPLE.org]}\n",
            "directories.ad.domains: example.org is already routed to directories.corp",
        ),
        (
            "  corp: {target: t-corp, netbios: example}\n  ad: {target: t-ad, netbios: EXAMPLE}\n",
            "directories.ad.netbios: EXAMPLE is already routed to directories.corp",
        ),
    ],
)
def test_directory_section_mistakes_are_named(tmp_path: Path, section: str, message: str | None) -> None:
    text_ = "targets:\n  t-corp: {connector: fake}\n  t-ad: {connector: fake}\ndirectories:\n" + section
    if message is None:
        _inventory(tmp_path, text_)
        return
    with pytest.raises(ConfigError) as info:
        _inventory(tmp_path, text_)
    assert message in str(info.value)


# -- qualified account names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "directory", "name"),
    [
        ("alice", None, "alice"),
        ("alice@example.org", "corp", "alice"),
        ("alice@EXAMPLE.ORG", "corp", "alice"),
        ("alice@Example.Org", "corp", "alice"),
        ("EXAMPLE-ORG\\alice", "corp", "alice"),
        ("example-org\\alice", "corp", "alice"),
        ("bob@example.test", "ad", "bob"),
        ("bob@corp.example.test", "ad", "bob"),
        ("EXAMPLE\\bob", "ad", "bob"),
        ("Example\\bob", "ad", "bob"),
    ],
)
def test_qualified_names_route_by_domain(inv: Inventory, typed: str, directory: str | None, name: str) -> None:
    assert inv.directories.split(typed, "parameter 'user'") == (directory, name)


@pytest.mark.parametrize(
    "typed",
    [
        "EXAMPLE\\alice@example.org",  # both forms at once
        "alice@example.org@example.org",
        "EXAMPLE\\\\alice",
        "EXAMPLE\\EXAMPLE\\alice",
        "alice@example.org.",  # trailing dot
        "EXAMPLE.\\alice",
        "alice@exаmple.org",  # Cyrillic а (U+0430)
        "alice@ｅxample.org",  # fullwidth e: NFKC would fold it, we never do
        "alice@example.org\u200b",  # zero-width space
        "\u0415XAMPLE\\bob",  # Cyrillic Е
        "ＥＸＡＭＰＬＥ\\bob",
        "alice@sub.example.org",  # not a suffix match
        "alice@notexample.org",
        "alice@example.org.evil.test",
        "alice@xn--exmple-cua.org",  # punycode of a look-alike
        "bob@\u212aantoor.example.test",  # KELVIN SIGN: str.lower() turns it into an ASCII 'k'
        "LAB-\u017fITE\\bob",  # LONG S: str.upper() turns it into an ASCII 'S'
        "lab-s\u0131te\\bob",  # DOTLESS I: str.upper() turns it into an ASCII 'I'
        "alice@",
        "alice@ example.org",
        "alice@example.org ",
        "EXAMPLE\\",
        "@example.org",
        "\\alice",
        "alice@unknown.test",
        "UNKNOWN\\alice",
    ],
)
def test_malformed_or_undeclared_domains_are_refused_without_echo(inv: Inventory, rb: Runbook, typed: str) -> None:
    with pytest.raises(ParameterError) as info:
        _validate(rb, inv, {"user": typed})
    msg = str(info.value)
    assert msg.startswith("parameter 'user'") and typed not in msg


def test_a_domain_without_a_name_is_named_as_such(inv: Inventory, rb: Runbook) -> None:
    for typed in ("@example.org", "EXAMPLE\\"):
        with pytest.raises(ParameterError, match="has a domain but no account name"):
            _validate(rb, inv, {"user": typed})


def test_an_overlong_qualified_name_is_refused_by_length(inv: Inventory, rb: Runbook) -> None:
    for typed in ("a@" + "b" * 5000, "B" * 5000 + "\\a"):
        with pytest.raises(ParameterError, match="too long"):
            _validate(rb, inv, {"user": typed})


def test_two_accounts_in_two_directories_are_refused(inv: Inventory, tmp_path: Path) -> None:
    two = STATUS.replace(
        "  - {name: directory, type: directory}\n",
        "  - {name: directory, type: directory}\n  - {name: other, type: account, required: false}\n",
    )
    rb = _runbook(tmp_path, two)
    with pytest.raises(ParameterError, match="belong to different directories"):
        _validate(rb, inv, {"user": "alice@example.org", "other": "EXAMPLE\\bob"})
    out = _validate(rb, inv, {"user": "alice@example.org", "other": "EXAMPLE-ORG\\bob"})
    assert (out["directory"]["key"], out["user"], out["other"]) == ("corp", "alice", "bob")


def test_a_bare_name_with_a_domain_still_obeys_the_account_rule(inv: Inventory, rb: Runbook) -> None:
    for typed in (
        "*)(uid=*@example.org",
        "al ice@example.org",
        "EXAMPLE\\../x",
        "-x@example.org",
        "a\x00b@example.org",
    ):
        with pytest.raises(ParameterError):
            _validate(rb, inv, {"user": typed})


def test_runbooks_without_a_directory_parameter_keep_plain_account_names(inv: Inventory, tmp_path: Path) -> None:
    plain = STATUS.replace("  - {name: directory, type: directory}\n", "").replace(
        'target: "{{ params.directory.target }}"', "target: t-corp"
    )
    plain = plain.replace(" in {{ params.directory.label }}", "")
    rb = _runbook(tmp_path, plain)
    assert _validate(rb, inv, {"user": "alice"}) == {"user": "alice"}
    with pytest.raises(ParameterError, match="not a valid account name"):
        _validate(rb, inv, {"user": "alice@example.org"})
    assert _validate(rb, inv, {}, requester="alice", agent=False) == {"user": "alice"}
    with pytest.raises(PolicyDenied, match="own account"):
        _validate(rb, inv, {"user": "bob"}, requester="alice", agent=False)


# -- choosing the directory -----------------------------------------------------------------


def test_agent_choice_account_domain_and_default(inv: Inventory, rb: Runbook) -> None:
    def routed(raw: dict[str, Any]) -> tuple[str, str]:
        out = _validate(rb, inv, raw)
        return out["directory"]["key"], out["user"]

    assert routed({"user": "alice"}) == ("corp", "alice")  # the default directory
    assert routed({"user": "alice", "directory": "ad"}) == ("ad", "alice")
    assert routed({"user": "bob@example.test"}) == ("ad", "bob")
    assert routed({"user": "EXAMPLE\\bob", "directory": "ad"}) == ("ad", "bob")
    assert routed({"user": "alice@example.org", "directory": "corp"}) == ("corp", "alice")
    out = _validate(rb, inv, {"user": "bob", "directory": "ad"})
    assert out["directory"] == {
        "key": "ad",
        "label": "Example Test (AD)",
        "target": "t-ad",
        "domains": ["example.test", "corp.example.test", "kantoor.example.test"],
        "netbios": ["EXAMPLE", "LAB-SITE"],
    }


@pytest.mark.parametrize("choice", ["nope", "AD", "t-ad", "ad ", "corp\n", "ad\u202e", "*", "ad,corp"])
def test_unknown_directory_is_refused_listing_the_valid_ones(inv: Inventory, rb: Runbook, choice: str) -> None:
    with pytest.raises(ParameterError) as info:
        _validate(rb, inv, {"user": "alice", "directory": choice})
    assert str(info.value) == "parameter 'directory' must be one of the directories: ad, corp"


def test_non_text_directory_is_refused(inv: Inventory, rb: Runbook) -> None:
    for bad in (1, True, ["ad"], {"key": "ad"}):
        with pytest.raises(ParameterError, match="must be one of the directories: ad, corp"):
            _validate(rb, inv, {"user": "alice", "directory": bad})


def test_agent_cannot_contradict_the_account_domain(inv: Inventory, rb: Runbook) -> None:
    for raw in ({"user": "bob@example.test", "directory": "corp"}, {"user": "EXAMPLE-ORG\\a", "directory": "ad"}):
        with pytest.raises(ParameterError, match="point to different directories"):
            _validate(rb, inv, raw)


def test_without_a_default_the_agent_must_choose(tmp_path: Path, rb: Runbook) -> None:
    inv = _inventory(tmp_path, INVENTORY.replace("defaults: {fake: t-corp}", "defaults: {}"))
    with pytest.raises(ParameterError, match="'directory' is required: choose one of the directories: ad, corp"):
        _validate(rb, inv, {"user": "alice"})
    assert _validate(rb, inv, {"user": "alice@example.org"})["directory"]["key"] == "corp"
    with pytest.raises(PolicyDenied, match="does not say which directory"):
        _validate(rb, inv, {}, requester="alice", agent=False)
    assert _validate(rb, inv, {}, requester="EXAMPLE\\alice", agent=False)["directory"]["key"] == "ad"


# -- employees: their own directory only -----------------------------------------------------


@pytest.mark.parametrize(
    ("requester", "directory", "name"),
    [
        ("alice@example.org", "corp", "alice"),
        ("alice@EXAMPLE.ORG", "corp", "alice"),
        ("EXAMPLE-ORG\\alice", "corp", "alice"),
        ("bob@example.test", "ad", "bob"),
        ("EXAMPLE\\bob", "ad", "bob"),
        ("carol", "corp", "carol"),  # bare: the default directory
    ],
)
def test_employees_are_routed_by_their_sign_in_name(
    inv: Inventory, rb: Runbook, requester: str, directory: str, name: str
) -> None:
    out = _validate(rb, inv, {}, requester=requester, agent=False)
    assert (out["directory"]["key"], out["user"]) == (directory, name)
    # naming their own directory or their own account in another spelling is fine
    again = _validate(rb, inv, {"directory": directory, "user": name}, requester=requester, agent=False)
    assert (again["directory"]["key"], again["user"]) == (directory, name)


@pytest.mark.parametrize(
    ("requester", "raw"),
    [
        ("alice@example.org", {"directory": "ad"}),
        ("alice@example.org", {"user": "alice@example.test"}),  # same name, other directory
        ("alice@example.org", {"user": "EXAMPLE\\alice"}),
        ("alice@example.org", {"user": "bob@example.org"}),
        ("alice@example.org", {"user": "bob"}),
        ("EXAMPLE\\bob", {"directory": "corp"}),
        ("EXAMPLE\\bob", {"user": "bob@example.org"}),
        ("carol", {"directory": "ad"}),
        ("carol", {"user": "carol@example.test"}),
    ],
)
def test_employees_cannot_act_in_another_directory(
    inv: Inventory, rb: Runbook, requester: str, raw: dict[str, str]
) -> None:
    with pytest.raises(PolicyDenied, match=r"own directory|own account"):
        _validate(rb, inv, raw, requester=requester, agent=False)


@pytest.mark.parametrize("typed", ["ALICE", "Alice@EXAMPLE.ORG", "example-org\\ALICE"])
def test_an_employee_names_their_own_account_in_any_case(inv: Inventory, rb: Runbook, typed: str) -> None:
    """Directories match account names without regard to case: "ALICE" is alice's own account."""
    out = _validate(rb, inv, {"user": typed}, requester="alice@example.org", agent=False)
    assert (out["directory"]["key"], out["user"].lower()) == ("corp", "alice")


@pytest.mark.parametrize("typed", ["\u212alice", "bob", "alicé"])
def test_only_ascii_letters_are_folded_for_an_employees_own_account(inv: Inventory, rb: Runbook, typed: str) -> None:
    # U+212A KELVIN SIGN folds to "k" in str.lower(): "\u212aate" could be another account
    with pytest.raises((PolicyDenied, ParameterError)):
        _validate(rb, inv, {"user": typed.encode().decode("unicode_escape")}, requester="kalice", agent=False)


def test_a_plain_account_runbook_compares_the_employees_own_name_in_any_case(inv: Inventory, tmp_path: Path) -> None:
    plain = STATUS.replace("  - {name: directory, type: directory}\n", "").replace(
        'target: "{{ params.directory.target }}"', "target: t-corp"
    )
    plain = plain.replace(" in {{ params.directory.label }}", "")
    rb = _runbook(tmp_path, plain)
    assert _validate(rb, inv, {"user": "ALICE"}, requester="alice", agent=False) == {"user": "ALICE"}


def test_an_employee_from_an_unknown_domain_is_refused(inv: Inventory, rb: Runbook) -> None:
    for requester in ("alice@evil.test", "EVIL\\alice", "alice@exаmple.org"):
        with pytest.raises(ParameterError, match="the domain is not one this service desk serves") as info:
            _validate(rb, inv, {}, requester=requester, agent=False)
        assert "example" not in str(info.value)  # employees are not shown the configuration


def test_an_employee_is_routed_by_sign_in_name_even_without_an_account_parameter(
    inv: Inventory, tmp_path: Path
) -> None:
    no_account = STATUS.replace('  - {name: user, type: account, default: "{{ requester }}"}\n', "")
    no_account = no_account.replace("{{ params.user }}", "{{ requester }}")
    rb = _runbook(tmp_path, no_account)
    assert _validate(rb, inv, {}, requester="EXAMPLE\\bob", agent=False)["directory"]["key"] == "ad"
    with pytest.raises(ParameterError) as info:
        _validate(rb, inv, {}, requester="bob@evil.test", agent=False)
    assert str(info.value) == "the requester: the domain is not one this service desk serves"


def test_employees_are_not_shown_the_other_directories(inv: Inventory, rb: Runbook) -> None:
    for choice in ("elsewhere", "AD", 7):
        with pytest.raises(PolicyDenied) as info:
            _validate(rb, inv, {"directory": choice}, requester="alice@example.org", agent=False)
        assert str(info.value) == "parameter 'directory': employees can only act in their own directory"
    with pytest.raises(ParameterError) as perr:
        _validate(rb, inv, {"user": "alice@unknown.test"}, requester="alice@example.org", agent=False)
    assert str(perr.value) == "parameter 'user': the domain is not one this service desk serves"
    with pytest.raises(ParameterError) as aerr:  # agents get the list
        _validate(rb, inv, {"user": "alice@unknown.test"})
    assert "known: corp.example.test, example.org, example.test, kantoor.example.test" in str(aerr.value)


# -- runbooks ---------------------------------------------------------------------------------


def test_a_step_that_ignores_the_directory_is_refused(inv: Inventory, tmp_path: Path) -> None:
    stray = STATUS.replace(
        '    target: "{{ params.directory.target }}"\n    action: unlock_account', "    action: unlock_account", 1
    )
    rb = _runbook(tmp_path, stray)
    with pytest.raises(RunbookError, match="step\\(s\\) unlock use connector 'fake'"):
        _validate(rb, inv, {"user": "alice", "directory": "ad"})
    keyed = STATUS.replace("{{ params.directory.target }}", "{{ params.directory.key }}")
    with pytest.raises(RunbookError, match="step\\(s\\) status, unlock use connector 'fake'"):
        _validate(_runbook(tmp_path, keyed), inv, {"user": "alice"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("{name: directory, type: directory}", "{name: directory, type: directory, default: corp}"),
            r"parameter cannot have a default \(it is routed",
        ),
        (
            (
                "  - {name: directory, type: directory}\n",
                "  - {name: directory, type: directory}\n  - {name: d2, type: directory}\n",
            ),
            "a runbook has at most one directory parameter",
        ),
    ],
)
def test_directory_parameter_rules_at_load(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(RunbookError, match=message):
        _runbook(tmp_path, STATUS.replace(*change))


# -- ledger: revision 0002, tickets and audit --------------------------------------------------


def test_head_revision_is_the_newest_migration() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == store.HEAD_REVISION


def test_upgrade_from_0001_keeps_old_tickets_and_adds_the_column(
    tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    engine = create_engine(make_database_url(tmp_path / "old.db", migrated=False))
    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        assert "directory" not in {c["name"] for c in inspect(conn).get_columns("ticket")}
        conn.execute(
            text(
                "INSERT INTO ticket (requester, subject, channel, category, type, runbook, runbook_sha256, params,"
                " state, impact, urgency, priority, correlation_id, opened_at, updated_at, deadline_at) VALUES"
                " ('a','a','cli','c','request','r','s','{}','resolved',3,2,4,'x','t','t','t')"
            )
        )
    store.upgrade(engine)
    with engine.connect() as conn:
        assert "directory" in {c["name"] for c in inspect(conn).get_columns("ticket")}
        assert "ix_ticket_directory" in {i["name"] for i in inspect(conn).get_indexes("ticket")}
        assert conn.execute(select(ticket.c.requester, ticket.c.directory)).all() == [("a", None)]
        assert store._current_revision(conn) == store.HEAD_REVISION
    engine.dispose()


@pytest.fixture
def app(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> Iterator[Firstline]:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "dir-status.yaml").write_text(STATUS)
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    settings = Settings(
        environment="test",
        database_url=make_database_url(tmp_path / "fl.db"),
        runbooks_dir=tmp_path / "runbooks",
        inventory=tmp_path / "inventory.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "fl.log",
    )
    FakeConnector.script, FakeConnector.calls = {}, []
    fl = open_app(settings, connectors=CONNECTORS)
    fl.vet("dir-status", "reviewer")
    yield fl
    fl.close()


def _events(app: Firstline, action: str) -> list[Any]:
    with app.engine.connect() as c:
        return list(c.execute(select(audit_event).where(audit_event.c.action == action).order_by(audit_event.c.seq)))


def test_one_runbook_acts_on_each_directory_and_the_ledger_names_it(app: Firstline) -> None:
    FakeConnector.script = {"account_status": [{"locked": True}, {"locked": True}], "unlock_account": [{}, {}]}
    one = app.run("dir-status", {"user": "alice@example.org"}, requester="agent7", roles={"agent"})
    two = app.run("dir-status", {"user": "bob", "directory": "ad"}, requester="agent7", roles={"agent"})
    assert one.state == two.state == "resolved"
    assert (
        one.resolution_note == "alice in Example Org (OpenLDAP)" and two.resolution_note == "bob in Example Test (AD)"
    )
    assert [(c[0], c[1], c[2]["user"]) for c in FakeConnector.calls] == [
        ("t-corp", "account_status", "alice"),
        ("t-corp", "unlock_account", "alice"),
        ("t-ad", "account_status", "bob"),
        ("t-ad", "unlock_account", "bob"),
    ]
    t1, t2 = app.ticket(one.ticket_number), app.ticket(two.ticket_number)
    assert (t1["directory"], t1["subject"], t1["params"]) == ("corp", "alice", {"user": "alice", "directory": "corp"})
    assert (t2["directory"], t2["subject"], t2["params"]) == ("ad", "bob", {"user": "bob", "directory": "ad"})
    assert [t["directory"] for t in app.list_tickets()] == ["ad", "corp"]
    opened = [json.loads(e.detail) for e in _events(app, "ticket.opened")]
    assert [(d["directory"], d["params"]["directory"]) for d in opened] == [("corp", "corp"), ("ad", "ad")]
    assert [e.target for e in _events(app, "fake.unlock_account")] == ["t-corp:alice", "t-ad:bob"]
    assert app.verify_audit().ok


def test_plan_shows_the_routed_target(app: Firstline) -> None:
    steps = app.plan("dir-status", {"user": "EXAMPLE\\bob"}, requester="agent7", roles={"agent"})
    assert [(s.id, s.target, s.inputs) for s in steps] == [
        ("status", "t-ad", {"user": "bob"}),
        ("unlock", "t-ad", {"user": "bob"}),
    ]


def test_employee_naming_another_directory_opens_no_ticket(app: Firstline) -> None:
    with pytest.raises(PolicyDenied, match="own directory"):
        app.run("dir-status", {"directory": "ad"}, requester="alice@example.org", roles={"employee"}, channel="portal")
    with pytest.raises(ParameterError, match="must be one of the directories: ad, corp"):
        app.run("dir-status", {"directory": "elsewhere"}, requester="agent7", roles={"agent"})
    assert app.list_tickets() == [] and FakeConnector.calls == []
    refused = _events(app, "run.refused")
    assert [(e.outcome, e.reason) for e in refused] == [("denied", "policy_denied"), ("failure", "invalid_parameter")]
    assert _events(app, "ticket.opened") == []
    out = app.run("dir-status", {}, requester="alice@example.org", roles={"employee"}, channel="portal")
    assert app.ticket(out.ticket_number)["directory"] == "corp" and FakeConnector.calls[0][0] == "t-corp"


def test_runbooks_check_names_steps_that_ignore_the_directory(inv: Inventory, tmp_path: Path) -> None:
    from runner.routing import Directories, runbook_problems

    good = _runbook(tmp_path)
    assert runbook_problems(good, inv.directories, inv.targets) == []
    assert runbook_problems(good, Directories(), inv.targets) == [
        "runbook dir-status: parameter directory: the inventory declares no directories"
    ]
    stray = STATUS.replace(
        'target: "{{ params.directory.target }}"\n    action: unlock_account', "action: unlock_account"
    )
    bad = _runbook(tmp_path, stray)
    assert runbook_problems(bad, inv.directories, inv.targets) == [
        "runbook dir-status: step(s) unlock use connector 'fake' without target: \"{{ params.directory.target }}\""
    ]


def test_runbooks_check_command_reports_it(app: Firstline) -> None:
    path = app.settings.runbooks_dir / "dir-status.yaml"
    path.write_text(
        path.read_text().replace('target: "{{ params.directory.target }}"\n    action: unlock', "action: unlock")
    )
    problems = app.check_runbooks()
    assert any("step(s) unlock use connector 'fake' without target" in p for p in problems), problems
