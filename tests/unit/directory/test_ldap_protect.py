"""DN comparison and well-known SIDs of connectors.ldap_protect (issue 7, item 7)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "spelling",
    [
        "CN=Firstline,OU=Services,DC=Example,DC=Org",
        "cn=firstline, ou=services, dc=example, dc=org",
        "cn=first\\6Cine,ou=services,dc=example,dc=org",
        "2.5.4.3=firstline,ou=services,dc=example,dc=org",
        "OID.2.5.4.3=firstline,ou=services,0.9.2342.19200300.100.1.25=example,dc=org",
        "cn=#040966697273746C696E65,ou=services,dc=example,dc=org",
        "cn=firstline;ou=services;dc=example;dc=org",
        "cn=firstline   ,ou=services,dc=example,dc=org",
    ],
)
def test_dn_spellings_of_the_same_entry_compare_equal(spelling: str) -> None:
    from connectors.ldap_protect import same_dn

    assert same_dn("cn=firstline,ou=services,dc=example,dc=org", spelling)


@pytest.mark.parametrize(
    "other",
    [
        "cn=firstlin,ou=services,dc=example,dc=org",
        "cn=firstline,ou=services,dc=example",
        "cn=firstline\\,ou=services,dc=example,dc=org",
        "uid=firstline,ou=services,dc=example,dc=org",
        "not a dn",
    ],
)
def test_different_dns_do_not_compare_equal(other: str) -> None:
    from connectors.ldap_protect import same_dn

    assert not same_dn("cn=firstline,ou=services,dc=example,dc=org", other)


def test_multi_valued_rdns_compare_in_any_order_and_tidy_keeps_escapes() -> None:
    from connectors.ldap_protect import same_dn, tidy_dn

    assert same_dn("cn=a+uid=b,dc=x", "UID=B + CN=A, DC=X")
    assert tidy_dn("CN=A , OU=B\\, C ,DC=X") == "CN=A,OU=B\\, C,DC=X"


def test_sids_are_decoded_and_protected_by_rid_not_name() -> None:
    import struct

    from connectors.ldap_protect import _sid_protected, sid_to_str

    def sid(*subs: int, authority: int = 5) -> bytes:
        return bytes([1, len(subs)]) + authority.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)

    assert sid_to_str(sid(32, 544)) == "S-1-5-32-544"
    domain = (21, 1203144968, 343204472, 3612249796)
    assert sid_to_str(sid(*domain, 512)) == "S-1-5-21-1203144968-343204472-3612249796-512"
    for rid in (498, 512, 516, 518, 519, 521, 526, 527):
        assert _sid_protected(sid_to_str(sid(*domain, rid)))
    for builtin in (544, 548, 549, 550, 551, 552):
        assert _sid_protected(sid_to_str(sid(32, builtin)))
    for ordinary in ((*domain, 513), (*domain, 1105), (32, 545), (32, 555)):
        assert not _sid_protected(sid_to_str(sid(*ordinary)))
    with pytest.raises(ValueError):
        sid_to_str(b"\x01\x05\x00")
