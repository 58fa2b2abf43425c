"""The account's own read carries what the protection checks judge (issue 8 benchmark; the
checks are issue 7 item 7's): identity values and AD's protection attributes are taken from
it, without a second read — and the verdicts are the same as with the second read.

The fake connection here holds no entry for the account, so any verdict that needed a read
of its own would fail (``ProtectionUnknown``) or miss the identity.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from connectors.ldap_flavors import RAW_KEY, ActiveDirectory
from tests.unit.directory.test_ldap_protect import DOMAIN, USER, FakeConn, _sid

BIND = "cn=firstline,ou=services,dc=example,dc=org"
RENAMED = "cn=svc,ou=renamed,dc=example,dc=org"
UUID = b"fb0c650e-80c2-1041-8c59-1d5b48fe5727"


def _openldap() -> Any:
    from connectors.ldap import LdapConnector, LdapTarget

    config = LdapTarget.model_validate(
        {
            "connector": "ldap",
            "flavor": "openldap",
            "url": "ldaps://127.0.0.1:6636",
            "bind_dn": BIND,
            "password": {"env": "UNUSED"},
            "base_dn": "dc=example,dc=org",
        }
    )
    return LdapConnector("corp", config, lambda ref: "")


@pytest.mark.parametrize("key", ["entryUUID", "entryuuid", "ENTRYUUID"])
def test_the_bind_account_is_recognised_by_the_id_read_with_the_account(key: str) -> None:
    conn = _openldap()
    fake = FakeConn({BIND: {"entryUUID": [UUID]}}, {})  # the renamed entry itself is not readable again
    attrs = {"uid": ["svc"], RAW_KEY: {key: [UUID]}}
    assert conn._is_protected(fake, RENAMED, attrs) is True
    other = {"uid": ["alice"], RAW_KEY: {key: [b"00000000-0000-0000-0000-000000000001"]}}
    assert conn._is_protected(fake, "uid=alice,ou=people,dc=example,dc=org", other) is False
    assert all(base != RENAMED for base in fake.filters)  # decided without reading the account again


def test_only_identity_attributes_count_as_ids() -> None:
    """A value of another raw attribute equal to the bind entry's id is not an identity match."""
    conn = _openldap()
    fake = FakeConn({BIND: {"entryUUID": [UUID]}}, {})
    attrs = {RAW_KEY: {"objectGUID": [UUID], "tokenGroups": [UUID]}}  # not OpenLDAP identity attributes
    assert conn._is_protected(fake, "uid=alice,ou=people,dc=example,dc=org", attrs) is False


def test_without_the_raw_values_the_identity_is_read() -> None:
    conn = _openldap()
    fake = FakeConn({BIND: {"entryUUID": [UUID]}, RENAMED: {"entryUUID": [UUID]}}, {})
    assert conn._is_protected(fake, RENAMED, {"uid": ["svc"]}) is True


@pytest.mark.parametrize(
    ("raw", "privileged"),
    [
        ({"objectSid": [_sid(*DOMAIN, 1105)], "tokenGroups": [_sid(*DOMAIN, 513), _sid(*DOMAIN, 512)]}, True),
        ({"objectSid": [_sid(*DOMAIN, 1105)], "tokenGroups": [_sid(*DOMAIN, 513), _sid(32, 551)]}, True),
        ({"objectSid": [_sid(*DOMAIN, 1105)], "primaryGroupID": [b"512"], "tokenGroups": [_sid(*DOMAIN, 513)]}, True),
        ({"objectSid": [_sid(*DOMAIN, 502)], "tokenGroups": [_sid(*DOMAIN, 513)]}, True),
        ({"objectSid": [_sid(*DOMAIN, 1105)], "adminCount": [b"1"], "tokenGroups": [_sid(*DOMAIN, 513)]}, True),
        ({"objectSid": [_sid(*DOMAIN, 1105)], "tokenGroups": [_sid(*DOMAIN, 513), _sid(32, 545)]}, False),
    ],
)
def test_ad_protection_is_judged_from_the_account_read(raw: dict[str, list[bytes]], privileged: bool) -> None:
    flavor = ActiveDirectory(hints_critical=True)
    fake = FakeConn({}, {})  # the account cannot be read again: a second read would fail closed
    assert flavor.is_privileged(fake, USER, {RAW_KEY: raw}, []) is privileged  # type: ignore[arg-type]
    assert fake.filters == []


def test_ad_protection_without_the_raw_values_reads_them() -> None:
    from connectors.ldap_protect import ProtectionUnknown

    flavor = ActiveDirectory(hints_critical=True)
    with pytest.raises(ProtectionUnknown):
        flavor.is_privileged(FakeConn({}, {}), USER, {}, [])  # type: ignore[arg-type]


def test_matched_values_control_is_ber_encoded_as_rfc_3876_says() -> None:
    from connectors.ldap_controls import MATCHED_VALUES_OID, matched_values

    oid, critical, value = matched_values([("member", "cn=a"), ("uniqueMember", "cn=a")])
    assert oid == MATCHED_VALUES_OID == "1.2.826.0.1.3344810.2.3" and critical is True
    item1 = b"\xa3\x0e\x04\x06member\x04\x04cn=a"
    item2 = b"\xa3\x14\x04\x0cuniqueMember\x04\x04cn=a"
    assert value == b"\x30" + bytes([len(item1 + item2)]) + item1 + item2
    long_dn = "cn=" + "x" * 300  # long form lengths
    _, _, big = matched_values([("member", long_dn)])
    assert big[:2] == b"\x30\x82" and struct.unpack(">H", big[2:4])[0] == len(big) - 4


class GroupConn:
    """Answers the combined first-level search with scripted entries and result code."""

    def __init__(self, entries: list[dict[str, Any]], code: int = 0) -> None:
        self.entries, self.code = entries, code
        self.response: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}
        self.searches = 0

    def search(self, base: str, flt: str, scope: object = None, **kwargs: Any) -> bool:
        self.searches += 1
        self.response = [{"type": "searchResEntry", **e} for e in self.entries]
        self.result = {"result": self.code}
        return self.code == 0


ACCOUNT = "uid=u,ou=people,dc=example,dc=org"
ADMIN = "cn=admins,ou=groups,dc=example,dc=org"
STAFF = "cn=staff,ou=groups,dc=example,dc=org"


@pytest.mark.parametrize(
    ("entries", "code", "expected"),
    [
        # the admin group holds the account (its member value came back)
        ([{"dn": ADMIN, "raw_attributes": {"member": [ACCOUNT.upper().encode()]}}], 0, ([ADMIN], 1)),
        # uniqueMember with a UID part
        ([{"dn": ADMIN, "raw_attributes": {"uniqueMember": [ACCOUNT.encode() + b"#'0101'B"]}}], 0, ([ADMIN], 1)),
        # found by entryDN only: exists, does not hold it
        (
            [{"dn": ADMIN, "raw_attributes": {}}, {"dn": STAFF, "raw_attributes": {"member": [ACCOUNT.encode()]}}],
            0,
            ([STAFF], 1),
        ),
        # the server refused the search or the control
        ([], 12, None),
        # a value other than the account came back: the control was not applied
        ([{"dn": ADMIN, "raw_attributes": {"member": [b"uid=other,ou=people,dc=example,dc=org"]}}], 0, None),
        # a non-admin group without a value: not what the control promises
        ([{"dn": STAFF, "raw_attributes": {}}], 0, None),
    ],
)
def test_first_level_reads_holders_and_admin_groups_or_gives_up(
    entries: list[dict[str, Any]], code: int, expected: tuple[list[str], int] | None
) -> None:
    from connectors.ldap_protect import _first_level

    got = _first_level(GroupConn(entries, code), "dc=example,dc=org", ACCOUNT, [ADMIN])  # type: ignore[arg-type]
    if expected is None:
        assert got is None
    else:
        assert got is not None and got[0] == expected[0] and len(got[1]) == expected[1]
