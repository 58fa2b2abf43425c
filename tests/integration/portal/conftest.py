"""Fixtures for the portal's integration tests: the real portal (uvicorn subprocess) over
the real lab slapd and SMTP sink. See tests/portal_support.py for the helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.databases import MakeDatabaseUrl, TestDatabases
from tests.integration.conftest import start_lab
from tests.portal_support import PortalServer, SignedIn, sign_in


@pytest.fixture(scope="session")
def portal_lab() -> None:
    start_lab("slapd", "smtp")


@pytest.fixture(scope="session")
def portal(
    portal_lab: None, tmp_path_factory: pytest.TempPathFactory, database: str, test_databases: TestDatabases
) -> Iterator[PortalServer]:
    """One portal for the whole session per database kind (tests that need other settings
    use ``portal_with``); on PostgreSQL its database lives until the session ends."""
    data_dir = tmp_path_factory.mktemp(f"portal-{database}")
    url = None if database == "sqlite" else test_databases.url(database, data_dir / "firstline.db")
    server = PortalServer.start(data_dir, database_url=url)
    yield server
    server.stop()


@pytest.fixture
def portal_with(
    portal_lab: None, tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> Iterator[Callable[..., PortalServer]]:
    """Start a portal with other settings: ``portal_with(signin_max_per_account=2)``; each on a
    fresh database of the test's kind unless ``database_url=`` is given."""
    started: list[PortalServer] = []

    def start(**settings: Any) -> PortalServer:
        data_dir = tmp_path / f"portal{len(started)}"
        if "database_url" not in settings:
            settings["database_url"] = make_database_url(data_dir / "firstline.db")
        server = PortalServer.start(data_dir, **settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def signed_in(portal: PortalServer) -> Iterator[Callable[..., SignedIn]]:
    """``signed_in("employee"|"agent"|"auditor")`` → a SignedIn client on the session portal."""
    made: list[SignedIn] = []

    def make(role: str, **kwargs: Any) -> SignedIn:
        s = sign_in(portal, role, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.client.close()


@pytest.fixture
def ldap_users(portal_lab: None) -> Iterator[Any]:
    """The lab slapd through its administrator: ``ldap_users.create_user()`` → (login, password)."""
    from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector

    admin, server = _admin("openldap")
    d = Directory("openldap", "corp", connector("corp"), admin, server, FLAVORS["openldap"][1], "uid")
    yield d
    for user in d.created:
        admin.delete(d.dn(user))
    admin.unbind()
