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


class FakeConn:
    """Just enough of an ldap3 Connection for ldap_protect: scripted BASE/SUBTREE answers."""

    def __init__(self, entries: dict[str, dict[str, list[bytes]]], chain: dict[str, set[str]]) -> None:
        self.entries = entries  # dn -> raw attributes
        self.chain = chain  # group dn -> transitive member dns (for the IN_CHAIN filter)
        self.response: list[dict[str, object]] = []
        self.result: dict[str, object] = {"result": 0}
        self.filters: list[str] = []

    def search(self, base: str, flt: str, scope: object = None, attributes: object = None, **_: object) -> bool:
        self.filters.append(flt)
        self.response = []
        if "1.2.840.113556.1.4.1941" in flt:  # a BASE search of a group: IN_CHAIN members, or its own SID
            import re

            from connectors.ldap_protect import sid_to_str

            members = re.findall(r"\(member:1\.2\.840\.113556\.1\.4\.1941:=([^)]*)\)", flt)
            sids = set(re.findall(r"\(objectSid=([^)]*)\)", flt))
            own = {sid_to_str(v) for v in self.entries.get(base, {}).get("objectSid", [])}
            if set(members) & self.chain.get(base, set()) or own & sids:
                self.response = [{"type": "searchResEntry", "dn": base, "raw_attributes": {}}]
        elif flt.startswith(("(|(objectSid=", "(objectSid=")):
            from connectors.ldap_protect import sid_to_str

            for dn, attrs in self.entries.items():
                sids = [sid_to_str(v) for v in attrs.get("objectSid", [])]
                if any(f"(objectSid={s})" in flt for s in sids):
                    self.response.append({"type": "searchResEntry", "dn": dn, "raw_attributes": {}})
        elif base in self.entries:
            self.response = [{"type": "searchResEntry", "dn": base, "raw_attributes": self.entries[base]}]
        return True


def _sid(*subs: int) -> bytes:
    import struct

    return bytes([1, len(subs)]) + (5).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


DOMAIN = (21, 1, 2, 3)
USER = "CN=u,OU=People,DC=example,DC=test"
BACKUP = "CN=Backup Operators,CN=Builtin,DC=example,DC=test"


def test_without_token_groups_membership_is_asked_in_chain_of_the_groups_found_by_sid() -> None:
    from connectors.ldap_protect import ad_protected

    entries = {
        USER: {"objectSid": [_sid(*DOMAIN, 1105)], "primaryGroupID": [b"513"]},  # no tokenGroups returned
        BACKUP: {"objectSid": [_sid(32, 551)]},
        "CN=Domain Admins,CN=Users,DC=example,DC=test": {"objectSid": [_sid(*DOMAIN, 512)]},
    }
    conn = FakeConn(entries, {BACKUP: {USER}})
    assert ad_protected(conn, USER) is True  # type: ignore[arg-type]
    assert any("1.2.840.113556.1.4.1941" in f for f in conn.filters)
    assert ad_protected(FakeConn(entries, {}), USER) is False  # type: ignore[arg-type]


def test_primary_group_and_well_known_accounts_are_protected_without_membership() -> None:
    from connectors.ldap_protect import ad_protected

    for attrs in (
        {"objectSid": [_sid(*DOMAIN, 1105)], "primaryGroupID": [b"512"]},  # primary group Domain Admins
        {"objectSid": [_sid(*DOMAIN, 500)]},  # Administrator
        {"objectSid": [_sid(*DOMAIN, 502)]},  # krbtgt
        {"objectSid": [_sid(*DOMAIN, 1105)], "adminCount": [b"1"]},
        {"objectSid": [_sid(*DOMAIN, 1105)], "tokenGroups": [_sid(*DOMAIN, 513), _sid(32, 549)]},
    ):
        assert ad_protected(FakeConn({USER: attrs}, {}), USER) is True, attrs  # type: ignore[arg-type]
    ordinary = {"objectSid": [_sid(*DOMAIN, 1105)], "tokenGroups": [_sid(*DOMAIN, 513), _sid(32, 545)]}
    assert ad_protected(FakeConn({USER: ordinary}, {}), USER) is False  # type: ignore[arg-type]


def test_admin_group_membership_counts_the_primary_group() -> None:
    """AD keeps the primary group out of ``member``: the filter asked of each admin group
    also selects it by SID — from tokenGroups, or without them from primaryGroupID (and the
    member chains of that group, found by its SID)."""
    from connectors.ldap_protect import ProtectionUnknown, ad_holder_filter

    staff = "CN=staff,OU=People,DC=example,DC=test"
    with_tokens = {"objectSid": [_sid(*DOMAIN, 1105)], "tokenGroups": [_sid(*DOMAIN, 513), _sid(*DOMAIN, 1200)]}
    conn = FakeConn({USER: with_tokens}, {})
    flt = ad_holder_filter(conn, USER)  # type: ignore[arg-type]
    assert "(objectSid=S-1-5-21-1-2-3-1200)" in flt and "(objectSid=S-1-5-21-1-2-3-513)" in flt
    assert f"(member:1.2.840.113556.1.4.1941:={USER})" in flt
    without = {"objectSid": [_sid(*DOMAIN, 1105)], "primaryGroupID": [b"1200"]}
    conn = FakeConn({USER: without, staff: {"objectSid": [_sid(*DOMAIN, 1200)]}}, {})
    flt = ad_holder_filter(conn, USER)  # type: ignore[arg-type]
    assert "(objectSid=S-1-5-21-1-2-3-1200)" in flt
    assert f"(member:1.2.840.113556.1.4.1941:={staff})" in flt  # a group holding the primary group
    with pytest.raises(ProtectionUnknown):
        ad_holder_filter(FakeConn({USER: {"primaryGroupID": [b"513"]}}, {}), USER)  # type: ignore[arg-type]


def test_unknown_protection_fails_closed() -> None:
    from connectors.ldap_protect import ProtectionUnknown, ad_protected

    with pytest.raises(ProtectionUnknown):
        ad_protected(FakeConn({}, {}), USER)  # type: ignore[arg-type]  # the account cannot be read
    no_groups = {USER: {"objectSid": [_sid(*DOMAIN, 1105)]}}
    with pytest.raises(ProtectionUnknown):
        ad_protected(FakeConn(no_groups, {}), USER)  # type: ignore[arg-type]  # no tokenGroups, no groups found


def test_the_bind_account_is_recognised_by_its_id_when_the_dn_differs() -> None:
    """entryUUID / objectSid identity: an entry reached under another DN (alias, rename) still matches."""
    from connectors.ldap import LdapConnector, LdapTarget

    config = LdapTarget.model_validate(
        {
            "connector": "ldap",
            "flavor": "openldap",
            "url": "ldaps://127.0.0.1:6636",
            "bind_dn": "cn=firstline,ou=services,dc=example,dc=org",
            "password": {"env": "UNUSED"},
            "base_dn": "dc=example,dc=org",
        }
    )
    conn = LdapConnector("corp", config, lambda ref: "")
    uuid = [b"fb0c650e-80c2-1041-8c59-1d5b48fe5727"]
    fake = FakeConn(
        {
            "cn=firstline,ou=services,dc=example,dc=org": {"entryUUID": uuid},
            "cn=svc,ou=renamed,dc=example,dc=org": {"entryUUID": uuid},
            "uid=alice,ou=people,dc=example,dc=org": {"entryUUID": [b"00000000-0000-0000-0000-000000000001"]},
        },
        {},
    )
    assert conn._is_protected(fake, "cn=svc,ou=renamed,dc=example,dc=org") is True  # type: ignore[arg-type]
    assert conn._is_protected(fake, "uid=alice,ou=people,dc=example,dc=org") is False  # type: ignore[arg-type]
    assert conn._is_protected(fake, "CN=FIRSTLINE, OU=Services,DC=example,DC=org") is True  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("cn=firstline, ou=services, dc=example, dc=org", "cn=firstline,ou=services,dc=example,dc=org"),
        ("CN=svc\\2Dfirstline ,CN=Users,DC=example,DC=test", "CN=svc\\2Dfirstline,CN=Users,DC=example,DC=test"),
        ("cn=a\\, b,dc=x", "cn=a\\, b,dc=x"),
    ],
)
def test_inventory_dns_are_tidied_for_ldap3(given: str, stored: str) -> None:
    from connectors.ldap import LdapTarget

    base = {
        "connector": "ldap",
        "flavor": "openldap",
        "url": "ldaps://127.0.0.1:6636",
        "password": {"env": "X"},
        "base_dn": "dc=example,dc=org",
    }
    config = LdapTarget.model_validate(
        {**base, "bind_dn": given, "admin_groups": [given], "protected_accounts": [given]}
    )
    assert config.bind_dn == stored and config.admin_groups == [stored] and config.protected_accounts == [stored]


@pytest.mark.parametrize("bad", ["2.5.4.3=firstline,dc=example,dc=org", "nonsense", "cn=a,=b", ""])
def test_dns_ldap3_cannot_use_are_refused_at_load(bad: str) -> None:
    from pydantic import ValidationError

    from connectors.ldap import LdapTarget

    base = {
        "connector": "ldap",
        "flavor": "openldap",
        "url": "ldaps://127.0.0.1:6636",
        "password": {"env": "X"},
        "base_dn": "dc=example,dc=org",
        "bind_dn": "cn=x,dc=example,dc=org",
    }
    with pytest.raises(ValidationError):
        LdapTarget.model_validate({**base, "admin_groups": [bad]})
