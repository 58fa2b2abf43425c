"""Active Directory sign-in names (UPN) whose name part is not the account name, on the lab
Samba DC: ``first.last@example.test`` for an account whose sAMAccountName is something else.

Routing split every ``name@domain`` into the bare ``name`` and the connector looked that up as
sAMAccountName: such a UPN answered "No account named first.last was found" (or, worse, found
the account whose sAMAccountName happens to be ``first.last``, another person). Now a UPN typed
for an AD directory reaches the connector whole; it finds the account whose userPrincipalName
it is, or whose sAMAccountName is its name part (AD's implicit UPN) when its domain is the AD
domain's own DNS name (example.test), and refuses when those are two accounts (``ambiguous``).
Under any other suffix (alt.example, declared for the directory here; a foreign domain) only an
explicit userPrincipalName counts: ``x@alt.example`` is never the account named x. Sign-in,
self-service and runbook parameters (agents' CLI/API) then use the account's own name, so every
name check sees one spelling per account.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.base import InvalidInput, Rejected
from runner.agent import flush_held, prepare_fix
from runner.api import open_app
from runner.auth import AuthService, Principal, SignInFailed
from runner.errors import ParameterError, PolicyDenied
from runner.service import Firstline
from runner.settings import Settings
from tests.integration.directory.helpers import REPO, Directory

pytestmark = pytest.mark.integration
REASON = "Caller verified by phone, ticket INC-42"


def _alt_inventory(tmp_path: Path) -> Path:
    """The lab inventory with a second sign-in domain, alt.example, for the AD directory (secret
    and CA files made absolute)."""
    raw = yaml.safe_load((REPO / "lab" / "inventory.yaml").read_text())

    def absolute(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"file"}:
                return {"file": str((REPO / "lab" / value["file"]).resolve())}
            return {k: absolute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [absolute(v) for v in value]
        return value

    raw = absolute(raw)
    raw["directories"]["ad"]["domains"] = ["example.test", "alt.example"]
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def app(tmp_path: Path, lab_directory: None) -> Iterator[Firstline]:
    inventory = _alt_inventory(tmp_path)
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        inventory=inventory,
        runbooks_dir=REPO / "runbooks",
        signin_min_seconds=0,
    )
    fl = open_app(settings)
    yield fl
    fl.close()


def _person(ad: Directory) -> tuple[str, str, str]:
    """(sAMAccountName, UPN with another name part, password)."""
    tag = secrets.token_hex(3)
    upn = f"first.last.{tag}@example.test"
    user, pw = ad.create_user(userPrincipalName=upn)
    return user, upn, pw


def _clash(ad: Directory) -> tuple[str, str, str, str, str]:
    """A UPN under an alternate suffix whose name part is another account's name:
    (``x@alt.example``, the account named ``x``, its password, the account whose UPN it is, its
    password). AD's implicit UPN is ``x@example.test`` only, so the typed name is the holder's.

    Samba refuses a UPN that equals another account's implicit one (sAMAccountName@realm), but
    not under another UPN suffix, so a real ambiguity cannot be built on the lab DC (Windows
    allows more; tests/unit/directory/test_upn_domain.py covers it)."""
    named, pw = ad.create_user()
    holder, pw2 = ad.create_user(userPrincipalName=f"{named}@alt.example")
    assert holder != named
    return f"{named}@alt.example", named, pw, holder, pw2


def test_the_connector_finds_an_account_by_its_upn(ad: Directory) -> None:
    user, upn, pw = _person(ad)
    for spelling in (upn, upn.upper().replace("@EXAMPLE.TEST", "@Example.Test")):
        status = ad.conn.run("account_status", {"user": spelling}, timeout=10)
        assert (status["exists"], status["account"].lower()) == (True, user.lower()), spelling
    assert ad.conn.run("account_status", {"user": upn.split("@")[0]}, timeout=10)["exists"] is False
    signed = ad.conn.run("authenticate", {"user": upn, "password": pw}, timeout=10)
    assert signed["account"].lower() == user.lower()
    # the implicit UPN (account name @ domain) still finds the account by its account name
    assert ad.conn.run("account_status", {"user": f"{user}@example.test"}, timeout=10)["account"] == user


def test_the_implicit_upn_is_the_account_name_at_the_domains_own_dns_name_only(ad: Directory) -> None:
    """``name@example.test`` (any case) is the account named ``name``; the same name part under an
    alternate suffix, a foreign, child or punycode domain is no account (it was that account)."""
    user, _upn, pw = _person(ad)  # its explicit UPN is first.last.<tag>@example.test
    for spelling in (f"{user}@example.test", f"{user}@EXAMPLE.TEST", f"{user.upper()}@Example.Test"):
        status = ad.conn.run("account_status", {"user": spelling}, timeout=10)
        assert (status["exists"], status["account"]) == (True, user), spelling
    before = ad.state_attrs(user)
    for other in (
        f"{user}@alt.example",
        f"{user}@ALT.Example",
        f"{user}@foreign.example",
        f"{user}@sub.example.test",
        f"{user}@xn--bcher-kva.example",
    ):
        assert ad.conn.run("account_status", {"user": other}, timeout=10)["exists"] is False, other
        with pytest.raises(Rejected) as err:
            ad.conn.run("unlock_account", {"user": other}, timeout=10)
        assert err.value.reason == "not_found", other
        with pytest.raises(Rejected):  # the account's own password proves nothing for another name
            ad.conn.run("authenticate", {"user": other, "password": pw}, timeout=10)
    for refused in (f"{user}@example.test.", f"{user}@bücher.example"):  # trailing dot, IDN not in punycode
        with pytest.raises(InvalidInput):
            ad.conn.run("account_status", {"user": refused}, timeout=10)
    assert ad.state_attrs(user) == before


def test_a_upn_under_an_alternate_suffix_is_its_account_never_the_one_named_like_it(ad: Directory) -> None:
    typed, named, named_pw, holder, holder_pw = _clash(ad)
    for spelling in (typed, typed.upper(), typed.replace("@alt.example", "@Alt.Example")):
        status = ad.conn.run("account_status", {"user": spelling}, timeout=15)
        assert (status["exists"], status["account"]) == (True, holder), spelling
    assert ad.conn.run("authenticate", {"user": typed, "password": holder_pw}, timeout=10)["account"] == holder
    with pytest.raises(Rejected):
        ad.conn.run("authenticate", {"user": typed, "password": named_pw}, timeout=10)
    assert ad.conn.run("account_status", {"user": named}, timeout=10)["account"] == named  # EXAMPLE\name
    assert ad.conn.run("account_status", {"user": f"{named}@example.test"}, timeout=10)["account"] == named


def test_sign_in_with_a_upn_is_the_account_by_its_name(app: Firstline, ad: Directory) -> None:
    user, upn, pw = _person(ad)
    principal, _token = AuthService(app).sign_in(upn, pw, client_ip="192.0.2.61", user_agent="pytest")
    assert (principal.directory, principal.username, principal.account) == ("ad", user, f"{user}@example.test")
    same, _token = AuthService(app).sign_in(f"EXAMPLE\\{user}", pw, client_ip="192.0.2.61", user_agent="pytest")
    assert same.account == principal.account


def test_runbook_parameters_name_the_account_the_upn_belongs_to(app: Firstline, ad: Directory) -> None:
    user, upn, _pw = _person(ad)
    outcome = app.run("account-status", {"user": upn}, requester="agent@example.org", roles={"agent"})
    assert outcome.state == "resolved", outcome
    assert f"Account {user} in " in str(outcome.resolution_note), outcome.resolution_note
    assert app.ticket(outcome.ticket_number)["directory"] == "ad"


def test_an_agent_cannot_reach_their_own_account_through_its_upn(app: Firstline, ad: Directory) -> None:
    user, upn, _pw = _person(ad)
    with pytest.raises(PolicyDenied):
        app.run(
            "password-reset",
            {"user": upn},
            requester=f"{user}@example.test",
            actor_id=f"{user}@example.test",
            roles={"agent"},
            proof=None,
        )
    before = ad.state_attrs(user)
    assert ad.state_attrs(user) == before


def test_routing_keeps_a_upn_only_for_active_directory(app: Firstline) -> None:
    dirs = app.inventory.directories
    assert dirs.split("First.Last@Example.Test", "user", keep_upn=True) == ("ad", "First.Last@example.test")
    assert dirs.split("First.Last@Example.Test", "user") == ("ad", "First.Last")
    assert dirs.split("alice@example.org", "user", keep_upn=True) == ("corp", "alice")
    assert dirs.split("EXAMPLE\\bob", "user", keep_upn=True) == ("ad", "bob")


def test_a_upn_under_an_alternate_suffix_runs_and_signs_in_as_its_account(app: Firstline, ad: Directory) -> None:
    typed, named, named_pw, holder, holder_pw = _clash(ad)
    outcome = app.run("account-status", {"user": typed}, requester="agent@example.org", roles={"agent"})
    assert f"Account {holder} in " in str(outcome.resolution_note), outcome.resolution_note
    with pytest.raises(SignInFailed):  # the password of the account named like the name part
        AuthService(app).sign_in(typed, named_pw, client_ip="192.0.2.62", user_agent="pytest")
    principal, _token = AuthService(app).sign_in(typed, holder_pw, client_ip="192.0.2.62", user_agent="pytest")
    assert principal.account == f"{holder}@example.test"
    outcome = app.run("account-status", {"user": f"EXAMPLE\\{named}"}, requester="agent@example.org", roles={"agent"})
    assert f"Account {named} in " in str(outcome.resolution_note)


def test_a_upn_no_account_has_reaches_no_account(app: Firstline, ad: Directory) -> None:
    """``name@alt.example`` (alt.example declared for the AD directory) when no account has that
    UPN: refused before any ticket, no sign-in, no "on behalf of" — never the account named
    ``name`` (runbooks ran on it, sign-in signed in as it, the agent desk recorded it)."""
    user, _upn, pw = _person(ad)
    typed = f"{user}@alt.example"
    before = ad.state_attrs(user)
    for runbook in ("account-status", "account-unlock"):
        with pytest.raises(ParameterError) as err:
            app.run(runbook, {"user": typed.upper()}, requester="agent@example.org", roles={"agent"})
        assert "no account has that sign-in name" in str(err.value), err.value
    assert app.list_tickets() == []
    with pytest.raises(SignInFailed):
        AuthService(app).sign_in(typed, pw, client_ip="192.0.2.64", user_agent="pytest")
    with pytest.raises(ParameterError):
        prepare_fix(
            app, _agent_of_ad(), "printer-queue-clear", {"choice": "office-1", "on_behalf_of": typed}, REASON, **_CLIENT
        )
    assert ad.state_attrs(user) == before


_CLIENT: dict[str, Any] = {"client_ip": "192.0.2.63", "user_agent": "pytest"}


def _agent_of_ad() -> Principal:
    return Principal("desk.agent@example.test", "ad", "desk.agent", "", "Desk Agent", frozenset({"agent"}))


def test_a_host_fix_on_behalf_of_a_upn_names_the_account_it_belongs_to(app: Firstline, ad: Directory) -> None:
    """An agent's "on behalf of" typed as a sign-in name is the person whose UPN it is: the
    ticket names that account (it was looked up as the bare name part, "no account", or
    another person named like it)."""
    user, upn, _pw = _person(ad)
    fix = prepare_fix(
        app, _agent_of_ad(), "printer-queue-clear", {"choice": "office-1", "on_behalf_of": upn}, REASON, **_CLIENT
    )
    assert fix.requester == f"{user.lower()}@example.test"
    if fix.held is not None:
        flush_held(app, fix.held)


def test_a_host_fix_on_behalf_of_a_upn_under_an_alternate_suffix_names_its_account(
    app: Firstline, ad: Directory
) -> None:
    typed, _named, _pw, holder, _pw2 = _clash(ad)
    fix = prepare_fix(  # never the account named like the UPN's name part
        app, _agent_of_ad(), "printer-queue-clear", {"choice": "office-1", "on_behalf_of": typed}, REASON, **_CLIENT
    )
    assert fix.requester == f"{holder.lower()}@example.test"
    if fix.held is not None:
        flush_held(app, fix.held)
