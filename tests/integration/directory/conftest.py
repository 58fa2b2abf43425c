"""Fixtures for the directory tests: the real lab slapd, Samba AD DC and SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import start_lab
from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector, openldap_directory


@pytest.fixture(scope="session")
def lab_directory() -> None:
    start_lab("slapd", "samba", "smtp")


@pytest.fixture(params=["openldap", "active_directory"], ids=["openldap", "ad"])
def directory(request: pytest.FixtureRequest, lab_directory: None) -> Iterator[Directory]:
    flavor = request.param
    target, base, attr = FLAVORS[flavor]
    admin, server = _admin(flavor)
    conn = connector(target)
    d = Directory(flavor, target, conn, admin, server, base, attr)
    yield d
    conn.close()
    d.cleanup()
    admin.unbind()


@pytest.fixture
def openldap(lab_directory: None) -> Iterator[Directory]:
    with openldap_directory() as d:
        yield d


@pytest.fixture
def ad(lab_directory: None) -> Iterator[Directory]:
    admin, server = _admin("active_directory")
    d = Directory(
        "active_directory", "ad", connector("ad"), admin, server, FLAVORS["active_directory"][1], "sAMAccountName"
    )
    yield d
    d.conn.close()
    d.cleanup()
    admin.unbind()
