"""Active Directory's implicit sign-in name (UPN) is ``sAMAccountName@<the domain's DNS name>``
only: ``LdapConnector._find`` asks for the account named like a UPN's name part only when the
UPN's domain is the DNS name of the AD domain (the ``DC=`` components of the naming context),
and accepts such an entry only when that is the domain of its own DN. Any other suffix — an
alternate UPN suffix, a foreign domain — counts only as some account's explicit
``userPrincipalName``. Before, ``alice@alt.example`` found the account named alice.

A fake connection answers the searches; the lab Samba DC tests are in
tests/integration/directory/test_upn_names.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import Rejected
from connectors.ldap import LdapConnector, LdapTarget, _dns_domain

PEOPLE = "OU=People,DC=example,DC=test"


def _ad(base_dn: str = PEOPLE) -> LdapConnector:
    config = LdapTarget.model_validate(
        {
            "connector": "ldap",
            "flavor": "active_directory",
            "url": "ldaps://127.0.0.1:636",
            "bind_dn": "CN=svc-firstline,CN=Users,DC=example,DC=test",
            "password": {"env": "UNUSED"},
            "base_dn": base_dn,
            "user_attribute": "sAMAccountName",
        }
    )
    return LdapConnector("ad", config, lambda ref: "")


class _Search:
    """Answers every search with *entries* (``dn``, attributes); records the filters asked."""

    def __init__(self, *entries: tuple[str, dict[str, Any]]) -> None:
        self.response = [{"type": "searchResEntry", "dn": dn, "attributes": attrs} for dn, attrs in entries]
        self.result: dict[str, Any] = {"result": 0}
        self.filters: list[str] = []

    def search(self, base: str, flt: str, scope: Any, **_kw: Any) -> bool:
        self.filters.append(flt)
        return True


ALICE = (f"CN=Alice,{PEOPLE}", {"sAMAccountName": "alice", "userPrincipalName": ["alice.smith@example.test"]})


def _find(conn: LdapConnector, fake: _Search, typed: str) -> str | None:
    found = conn._find(fake, conn._account_name(typed))  # type: ignore[arg-type]
    return None if found is None else found[0]


@pytest.mark.parametrize(
    "typed", ["alice@example.test", "alice@EXAMPLE.TEST", "Alice@Example.Test", "ALICE@example.test"]
)
def test_the_implicit_upn_under_the_domains_own_name_is_the_account(typed: str) -> None:
    fake = _Search(ALICE)
    assert _find(_ad(), fake, typed) == ALICE[0]
    assert "(sAMAccountName=" in fake.filters[0]


@pytest.mark.parametrize(
    "typed",
    [
        "alice@alt.example",  # an alternate UPN suffix (declared for the directory or not)
        "alice@ALT.Example",
        "alice@foreign.example",  # another domain
        "alice@sub.example.test",  # a child of the domain, not the domain
        "alice@test",  # its parent
        "alice@example.test.evil.example",
        "alice@xn--bcher-kva.example",  # an IDN (punycode) domain
    ],
)
def test_the_name_part_under_any_other_domain_is_no_account(typed: str) -> None:
    fake = _Search(ALICE)  # a directory that (wrongly) answered with alice: still not taken
    assert _find(_ad(), fake, typed) is None
    assert "sAMAccountName" not in fake.filters[0]  # only an explicit userPrincipalName is asked for
    assert f"(userPrincipalName={typed.lower()})" in fake.filters[0]


def test_an_explicit_upn_under_an_alternate_suffix_is_its_account() -> None:
    holder = (f"CN=Holder,{PEOPLE}", {"sAMAccountName": "t0123", "userPrincipalName": ["alice@alt.example"]})
    for typed in ("alice@alt.example", "ALICE@Alt.Example"):
        assert _find(_ad(), _Search(holder), typed) == holder[0]


def test_an_account_of_a_child_domain_has_that_domains_implicit_upn() -> None:
    """Searched from the domain's root, an entry of a child domain (its DN ends in
    DC=child,DC=example,DC=test) is not ``name@example.test``."""
    child = ("CN=Alice,CN=Users,DC=child,DC=example,DC=test", {"sAMAccountName": "alice", "userPrincipalName": []})
    assert _find(_ad("DC=example,DC=test"), _Search(child), "alice@example.test") is None


def test_two_accounts_answering_are_still_ambiguous() -> None:
    holder = (f"CN=Holder,{PEOPLE}", {"sAMAccountName": "t0123", "userPrincipalName": ["alice@example.test"]})
    with pytest.raises(Rejected) as err:
        _find(_ad(), _Search(holder, ALICE), "alice@example.test")
    assert err.value.reason == "ambiguous"


def test_no_dc_components_means_no_implicit_upn() -> None:
    assert _dns_domain("OU=People,DC=Example,DC=TEST") == "example.test"
    assert _dns_domain("CN=x\\, y,OU=People,DC=example,DC=test") == "example.test"
    assert _dns_domain("DC=child,OU=x,DC=example,DC=test") == "example.test"  # the trailing run only
    assert _dns_domain("OU=People,O=Example") is None
    fake = _Search(ALICE)
    assert _find(_ad("OU=People,O=Example"), fake, "alice@example") is None
    assert "sAMAccountName" not in fake.filters[0]
