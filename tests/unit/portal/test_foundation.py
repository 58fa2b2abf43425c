"""Portal foundation units: every route has exactly one policy (walked from the route
table), the policies themselves, client addresses behind proxies, CSRF derivation,
language negotiation and complete catalogues."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from portal import i18n
from portal.app import create_app
from portal.deps import allow, policy_of
from portal.security import UNKNOWN_CLIENT, client_address, parse_networks
from runner.auth import Principal, csrf_ok, csrf_token, roles_for
from runner.errors import ConfigError
from runner.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        runbooks_dir=REPO / "runbooks",
        inventory=REPO / "lab" / "inventory.yaml",
    )
    application = create_app(settings)
    yield application
    application.state.portal.firstline.close()


def _policies(route: APIRoute, inherited: tuple[str, ...] = ()) -> list[str]:
    """Every policy dependency of *route*: its own (nested too) and its routers'."""
    found = list(inherited)

    def walk(dependant: object) -> None:
        for dep in getattr(dependant, "dependencies", []):
            p = policy_of(dep.call)
            if p is not None:
                found.append(p)
            walk(dep)

    walk(route.dependant)
    return found


def _route_table(routes: list[object], inherited: tuple[str, ...] = ()) -> list[tuple[APIRoute, tuple[str, ...]]]:
    """(route, router-level policies) for every API route, through included routers."""
    out: list[tuple[APIRoute, tuple[str, ...]]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append((route, inherited))
            continue
        router = getattr(route, "original_router", None)
        if router is not None:
            extra = tuple(p for d in router.dependencies if (p := policy_of(d.dependency)) is not None)
            out.extend(_route_table(list(router.routes), inherited + extra))
    return out


def test_every_route_declares_exactly_one_policy(app: FastAPI) -> None:
    table = _route_table(list(app.routes))
    assert len(table) >= 10
    missing = {f"{sorted(r.methods)} {r.path}": _policies(r, inh) for r, inh in table if len(_policies(r, inh)) != 1}
    assert missing == {}, f"routes without exactly one Depends(allow(...)) / Depends(public): {missing}"


def test_a_new_route_without_a_policy_is_caught(app: FastAPI) -> None:
    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    table = _route_table(list(app.routes))
    route, inherited = next((r, i) for r, i in table if r.path == "/api/v1/forgotten")
    assert _policies(route, inherited) == []


def _principal(*roles: str) -> Principal:
    return Principal("p@example.org", "corp", "p", "uid=p,dc=example,dc=org", "P", frozenset({"employee", *roles}))


@pytest.mark.parametrize(
    ("have", "need", "status"),
    [
        ((), "employee", 200),
        ((), "agent", 403),
        (("agent",), "agent", 200),
        (("auditor",), "agent", 403),
        (("agent",), "auditor", 403),
        (("auditor",), "auditor", 200),
    ],
)
def test_allow_checks_the_role_and_says_which(app: FastAPI, have: tuple[str, ...], need: str, status: int) -> None:
    from fastapi import Depends

    @app.get(f"/api/v1/probe-{need}")
    def probe(user: Principal = Depends(allow(need))) -> dict[str, str]:  # noqa: B008
        return {"who": user.account}

    with TestClient(app, base_url="http://127.0.0.1") as client:
        app.state.portal.auth.session_lookup = lambda _token: (_principal(*have), None)  # the look-up, stubbed
        app.state.portal.auth.recheck_due = lambda _who: False  # and its roles as just read from the directory
        r = client.get(f"/api/v1/probe-{need}", cookies={"__Host-fl_session": "x"})
        assert r.status_code == status
        if status == 403:
            assert r.json()["error"] == {
                "code": "forbidden",
                "message": f"This needs the {need} role, which your account does not have.",
            }
        app.state.portal.auth.session_lookup = lambda _token: (None, None)
        r = client.get(f"/api/v1/probe-{need}")
        assert r.status_code == 401


TRUSTED = parse_networks(["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.5", [], "203.0.113.5"),
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # untrusted peer: its header is ignored
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["1.1.1.1, 198.51.100.1, 10.9.9.9"], "198.51.100.1"),  # right-most untrusted hop
        ("10.1.2.3", ["1.1.1.1", "198.51.100.1"], "198.51.100.1"),  # several headers read as one list
        ("10.1.2.3", ["garbage, 198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["198.51.100.1:5123"], "198.51.100.1"),  # a port, as some proxies send it
        ("10.1.2.3", ["[2001:db9::7]:443, 10.9.9.9:80"], "2001:db9::7"),
        ("10.1.2.3", ['"198.51.100.1"'], "198.51.100.1"),
        ("10.1.2.3", ["198.51.100.1,"], "198.51.100.1"),  # an empty entry says nothing
        ("10.1.2.3", ["10.4.4.4"], "10.4.4.4"),  # only proxies: the farthest one
        ("2001:db8::1", ["[2001:db8:ffff::1]", "2001:db9::7"], "2001:db9::7"),
        ("127.0.0.1", ["::ffff:198.51.100.1"], "::ffff:c633:6401"),
        ("127.0.0.1", [""], "127.0.0.1"),
    ],
)
def test_client_address_believes_forwarded_for_only_from_trusted_proxies(
    peer: str, xff: list[str], expected: str
) -> None:
    assert client_address(peer, xff, TRUSTED) == str(ipaddress.ip_address(expected))


@pytest.mark.parametrize(
    "xff",
    ["198.51.100.1, not-an-ip", "garbage", "999.1.1.1", "1.2.3.4:x", "[::1", "[::1]x", "::1]:80", "1.2.3.4:5:6"],
)
def test_a_hop_that_is_no_address_makes_the_client_unknown_never_the_proxy(xff: str) -> None:
    """The proxy may be this machine: answering its address would open /metrics (loopback
    only) to anyone behind it and pool every client in the proxy's throttle."""
    assert client_address("127.0.0.1", [xff], TRUSTED) == UNKNOWN_CLIENT


def test_untrusted_when_no_proxies_configured() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], []) == "127.0.0.1"


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "proxy.example", "", "1.2.3.4/8/1"])
def test_bad_trusted_proxy_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="FIRSTLINE_TRUSTED_PROXIES"):
        parse_networks([bad])


def test_csrf_token_is_bound_to_its_secret_and_purpose() -> None:
    token = csrf_token("session-a")
    assert csrf_ok("session-a", token)
    assert not csrf_ok("session-b", token)
    assert not csrf_ok("session-a", token, "pre")
    assert not csrf_ok("session-a", token.upper())
    assert not csrf_ok(None, token)
    assert not csrf_ok("session-a", None)
    assert "session-a" not in token


@pytest.mark.parametrize(
    ("groups", "roles"),
    [
        ([], {"employee"}),
        (["CN=Service-Desk-Agents, OU=groups, DC=example, DC=org"], {"employee", "agent"}),  # other spelling
        (["cn=auditors,ou=groups,dc=example,dc=org"], {"employee", "auditor"}),
        (["cn=service-desk-agents,ou=groups,dc=example,dc=com"], {"employee"}),  # look-alike DN
        (["cn=auditors,ou=groups,dc=example,dc=org,dc=evil"], {"employee"}),
        (["not a dn"], {"employee"}),
    ],
)
def test_roles_from_groups_compare_dns_not_strings(groups: list[str], roles: set[str]) -> None:
    agent = {"corp": ["cn=service-desk-agents,ou=groups,dc=example,dc=org"]}
    auditor = {"corp": ["cn=auditors,ou=groups,dc=example,dc=org"]}
    assert roles_for("corp", groups, agent, auditor) == roles
    assert roles_for("ad", groups, agent, auditor) == {"employee"}  # mapped per directory


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("", "en"),
        ("nl", "nl"),
        ("nl-NL,nl;q=0.9,en-US;q=0.8", "nl"),
        ("en-GB,en;q=0.9,nl;q=0.8", "en"),
        ("de-DE,de;q=0.9,nl;q=0.5,en;q=0.4", "nl"),
        ("fr, de", "en"),
        ("nl;q=0, en", "en"),
        ("NL-be", "nl"),
        ("nl;q=abc, en;q=0.1", "en"),
    ],
)
def test_language_negotiation(header: str | None, lang: str) -> None:
    assert i18n.negotiate(header) == lang


def test_cookie_wins_only_when_valid() -> None:
    assert i18n.pick("nl", "en") == "nl"
    assert i18n.pick("xx", "nl") == "nl"
    assert i18n.pick(None, None) == "en"


def test_catalogues_are_complete_and_dutch_differs() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "portal_catalogues.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    i18n.load_catalogues()
    assert i18n.translate("nl", "Sign in") == "Aanmelden"
    assert i18n.translate("en", "Sign in") == "Sign in"
    assert i18n.translate("nl", "The user name or password is not correct.") != (
        "The user name or password is not correct."
    )


def test_roles_stay_when_the_directory_cannot_be_asked_and_are_asked_again_later(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-read of the roles (``AuthService.recheck``) the directory does not answer keeps the
    session as it was, and is not tried again on the very next request."""
    from connectors.base import Unreachable

    auth = app.state.portal.auth
    asked: list[str] = []

    class Down:
        def __enter__(self) -> Down:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

        def run(self, action: str, _inputs: object, *, timeout: float) -> dict[str, object]:
            asked.append(action)
            raise Unreachable("the directory at 127.0.0.1:1 did not answer")

    monkeypatch.setattr(auth.app.pool, "using", lambda *_a, **_k: Down())
    who = Principal(
        "p@example.org", "corp", "p", "uid=p,dc=example,dc=org", "P", frozenset({"employee", "agent"}), "session", 7
    )
    assert auth.recheck_due(who)
    assert auth.recheck(who) is who
    assert asked == ["account_status"]
    assert not auth.recheck_due(who)  # asked again after ROLE_RETRY_SECONDS, not at once
