"""Role × endpoint matrix, generated from the route table: every page and API route is
called as anonymous, employee, agent and auditor on the real portal. A caller without the
route's role gets 401 (API) / a redirect to sign-in (pages) or 403 naming the role; a caller
with it never gets 401/403. A new route is in the matrix without anyone adding it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from portal import app as app_module
from portal.deps import policy_of
from tests.portal_support import PortalServer, SignedIn, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]

ROLES = ("anonymous", "employee", "agent", "auditor")


def _table() -> list[tuple[str, str, str]]:
    """(method, full path, policy) for every route create_app mounts."""
    rows = []

    def walk(dependant: Any, found: list[str]) -> None:
        for dep in dependant.dependencies:
            p = policy_of(dep.call)
            if p is not None:
                found.append(p)
            walk(dep, found)

    def visit(routes: list[Any], prefix: str, inherited: tuple[str, ...]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found = list(inherited)
                walk(route.dependant, found)
                assert len(found) == 1, (route.path, found)
                for method in sorted(route.methods - {"HEAD"}):
                    rows.append((method, prefix + route.path, found[0]))
            elif getattr(route, "original_router", None) is not None:
                r = route.original_router
                extra = tuple(p for d in r.dependencies if (p := policy_of(d.dependency)) is not None)
                visit(list(r.routes), prefix, inherited + extra)

    for router, prefix in app_module._ROUTERS:
        extra = tuple(p for d in router.dependencies if (p := policy_of(d.dependency)) is not None)
        visit(list(router.routes), prefix, extra)
    return rows


TABLE = _table()


@pytest.fixture(scope="module")
def people(portal: PortalServer) -> Any:
    made = {role: sign_in(portal, role, address=f"192.0.2.{200 + i}") for i, role in enumerate(ROLES[1:])}
    yield made
    for s in made.values():
        s.client.close()


def _call(portal: PortalServer, who: SignedIn | None, method: str, path: str) -> Any:
    url = re.sub(r"\{[^}]+\}", "999999", path)
    headers = {"Accept": "application/json"} if path.startswith("/api/") else {}
    if who is None:
        client = portal.client("192.0.2.250")
        try:
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                # anonymous form posts need the pre-session CSRF token to reach the policy check
                page = client.get("/signin")
                token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
                for h in page.headers.get_list("set-cookie"):
                    name, value = h.split(";", 1)[0].split("=", 1)
                    client.cookies.set(name, value)
                assert token
                headers["X-CSRF-Token"] = token.group(1)
            return client.request(method, url, headers=headers)
        finally:
            client.close()
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        headers["X-CSRF-Token"] = who.csrf
    return who.client.request(method, url, headers=headers)


def test_the_table_is_not_empty() -> None:
    paths = {p for _m, p, _pol in TABLE}
    assert {"/api/v1/me", "/api/v1/tokens", "/", "/signin", "/healthz"} <= paths


@pytest.mark.parametrize(("method", "path", "policy"), TABLE, ids=[f"{m} {p}" for m, p, _ in TABLE])
def test_role_matrix(portal: PortalServer, people: dict[str, SignedIn], method: str, path: str, policy: str) -> None:
    if path in ("/signout",):
        pytest.skip("would end the shared sessions; covered by test_signin")
    for role in ROLES:
        who = None if role == "anonymous" else people[role]
        r = _call(portal, who, method, path)
        allowed = policy == "public" or (role != "anonymous" and (policy == "employee" or policy == role))
        if policy == "scraper":  # /metrics: this machine or the scrape token, whoever is signed in
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (role, path, r.status_code)
        elif allowed:
            # a public form may answer 401 for its own reason (a refused sign-in), never for the policy
            refused = (403,) if policy == "public" else (401, 403)
            assert r.status_code not in refused, (role, method, path, r.status_code, r.text[:300])
        elif role == "anonymous":
            if path.startswith("/api/"):
                assert r.status_code == 401, (role, method, path, r.status_code)
                assert r.json()["error"]["code"] == "signin_required"
            else:
                assert r.status_code == 303 and r.headers["location"].startswith("/signin?next="), (
                    role,
                    method,
                    path,
                    r.status_code,
                )
        else:
            assert r.status_code == 403, (role, method, path, r.status_code, r.text[:300])
            if path.startswith("/api/"):
                assert r.json()["error"]["code"] == "forbidden"
                assert policy in r.json()["error"]["message"]
