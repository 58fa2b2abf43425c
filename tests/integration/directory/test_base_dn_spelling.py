"""An account is found under a ``base_dn`` however the directory spells that DN.

The connector checks that the entry a search found lies under ``base_dn``. It compared the
two as lower-cased strings, escapes kept: slapd returns an escaped comma as ``\\2C``
(``ou=Sales\\2C EMEA,...``), so with ``base_dn: "ou=Sales\\, EMEA,..."`` — the RFC 4514
spelling an administrator writes — every account read as not existing: ``account_status``
said ``exists: false`` and an unlock or reset closed the ticket as "the account does not
exist", for the requester to correct. Samba spells it ``\\,``, so there the hex spelling
failed. Now the DNs are compared as DNs (escapes, case, spaces), on both flavours.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.integration.directory.helpers import Directory, connector, new_password


@pytest.fixture
def comma_ou(directory: Directory) -> Iterator[tuple[Directory, str, str, str]]:
    """An OU named ``Sales, EMEA <tag>`` under the lab base, with one user in it, removed afterwards.

    Yields (directory, OU value with its tag, user, the DN's parent below the OU).
    """
    tag = secrets.token_hex(3)
    value = f"Sales, EMEA {tag}"
    parent = directory.base
    ou = f"ou=Sales\\, EMEA {tag},{parent}"
    user = f"t{secrets.token_hex(5)}"
    if directory.flavor == "openldap":
        ok = directory.admin.add(ou, attributes={"objectClass": ["organizationalUnit"], "ou": value})
        assert ok, directory.admin.result
        user_dn = f"uid={user},{ou}"
        attrs = {"objectClass": ["inetOrgPerson"], "uid": user, "cn": "Comma Person", "sn": "Person"}
        attrs["userPassword"] = new_password()
    else:
        ok = directory.admin.add(ou, attributes={"objectClass": ["top", "organizationalUnit"], "ou": value})
        assert ok, directory.admin.result
        user_dn = f"CN={user},{ou}"
        attrs = {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "sAMAccountName": user,
            "userPrincipalName": f"{user}@example.test",
            "sn": "Person",
            "unicodePwd": f'"{new_password()}"'.encode("utf-16-le"),
            "userAccountControl": "512",
        }
    ok = directory.admin.add(user_dn, attributes=attrs)
    try:
        assert ok, directory.admin.result
        yield directory, tag, user, parent
    finally:
        directory.admin.delete(user_dn)
        directory.admin.delete(ou)


def test_account_found_whatever_the_spelling_of_base_dn(comma_ou: tuple[Directory, str, str, str]) -> None:
    d, tag, user, parent = comma_ou
    spellings = [
        f"ou=Sales\\, EMEA {tag},{parent}",  # RFC 4514, as an administrator writes it
        f"ou=Sales\\2C EMEA {tag},{parent}",  # hex escape
        f"OU=sales\\, emea {tag},{parent.upper()}",  # other case
        f"ou=Sales\\2c EMEA {tag}, {parent.replace(',', ', ')}",  # lower-case hex, spaces after commas
    ]
    for base in spellings:
        conn = connector(d.target, base_dn=base)
        try:
            status = conn.run("account_status", {"user": user}, timeout=10)
        finally:
            conn.close()
        assert status["exists"] is True, base
        assert status["locked"] is False
