"""Directory-side checks that no other test would miss (issue 7, "tests that must be able to fail").

Each test here was written for a check that could be deleted with the whole suite still
green (found by mutating the check, see ``docs/testing.md``).
"""

from __future__ import annotations

import pickle
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.base import Rejected
from connectors.ldap_flavors import ActiveDirectory, UnreadableValue
from connectors.ldap_protect import GroupMissing, ProtectionUnknown, ad_protected, require_group
from connectors.password_policy import PasswordPolicy, PolicyViolation
from connectors.registry import PluginError, _check
from connectors.tls_errors import client_context
from tests.unit.directory.test_ldap_protect import DOMAIN, USER, FakeConn, _sid
from tests.unit.directory.test_ldap_states import AD_OK, NOW

PERSONAL = ["jdevries", "Johanna", "de Vries", "johanna.devries@example.org"]
CASES = {
    "too_short": ("Kurz-Wort-1", {}),
    "too_long": ("Lang-Wort-4711 " * 10, {}),
    "common_password": ("qwertyuiop123456", {}),
    "contains_personal_info": ("Johanna im Garten am Abend", {}),
    "same_as_current": ("gleiches Wort im Garten", {"current": "gleiches Wort im Garten"}),
    "invalid_characters": ("Steuer\x07zeichen im Garten", {}),
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_a_refusal_holds_the_candidate_nowhere(reason: str) -> None:
    """Not in the text, not in ``args``, not in any attribute, not in a pickled copy: an
    exception object travels into logs, tracebacks and error reports whole."""
    candidate, kw = CASES[reason]
    with pytest.raises(PolicyViolation) as err:
        PasswordPolicy(max_length=128).check(candidate, personal=PERSONAL, **kw)  # type: ignore[arg-type]
    exc = err.value
    assert exc.reason == reason
    held = repr(exc.args) + repr(vars(exc)) + exc.text("en") + exc.text("nl")
    assert candidate not in held and candidate.strip() not in held
    assert candidate.encode() not in pickle.dumps(exc)


@pytest.mark.parametrize(
    "candidate", ["Jo hanna plant tulpen in mei", "j.devries plant tulpen", "de-Vries plant tulpen"]
)
def test_a_personal_name_split_by_spaces_or_dots_is_still_found(candidate: str) -> None:
    """Spaces (and the separators around them) inside the name do not hide it."""
    with pytest.raises(PolicyViolation) as err:
        PasswordPolicy().check(candidate, personal=PERSONAL)
    assert err.value.reason == "contains_personal_info"


def _ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Firstline test CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_a_configured_ca_file_is_the_only_trust_anchor(tmp_path: Path) -> None:
    """With ``ca_file`` set, the system's public CAs are not trusted as well: a certificate
    any public CA issued for the name would otherwise pass for the directory or mail server."""
    pem = _ca_pem()
    path = tmp_path / "ca.crt"
    path.write_text(pem)
    for ca_file in (path, {"file": str(path)}):
        ctx = client_context(ca_file, setting="ca_file of target 't'", resolve=lambda _ref: pem)
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.cert_store_stats()["x509"] == 1
        assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "Firstline test CA"),),)]


@pytest.mark.parametrize("value", [b"-5", b"9000000000000000000"])
def test_an_ad_pwdlastset_outside_filetime_fails_closed(value: bytes) -> None:
    """A negative ``pwdLastSet`` other than -1, or one past the year 9999, is not a time: the
    account state is unreadable (escalate), never read as "password set long ago"."""
    attrs = dict(AD_OK)
    attrs["pwdLastSet"] = [value]
    with pytest.raises(UnreadableValue) as err:
        ActiveDirectory(hints_critical=True).state(attrs, NOW)
    assert err.value.attribute == "pwdLastSet"


ORDINARY = {"objectSid": [_sid(*DOMAIN, 1105)], "tokenGroups": [_sid(*DOMAIN, 513)]}
IT_ADMINS = "CN=it-admins,OU=Groups,DC=example,DC=test"


@pytest.mark.parametrize(
    ("read_attrs", "entry", "chain", "admin_groups"),
    [
        ({"adminCount": ["1"]}, None, {}, []),  # adminCount as read with the account: enough on its own
        ({}, {"objectSid": [_sid(*DOMAIN, 1105)], "tokenGroups": [_sid(32, 551)]}, {}, []),  # Backup Operators
        ({}, {"objectSid": [_sid(*DOMAIN, 502)]}, {}, []),  # krbtgt, no admin_groups configured
        ({}, ORDINARY, {IT_ADMINS: {USER}}, [IT_ADMINS]),  # a configured admin group (nested: IN_CHAIN)
    ],
    ids=["adminCount", "builtin-group", "krbtgt", "admin-group"],
)
def test_ad_is_privileged_by_each_rule_alone(
    read_attrs: dict[str, Any], entry: dict[str, Any] | None, chain: dict[str, set[str]], admin_groups: list[str]
) -> None:
    """``ActiveDirectory.is_privileged``: every rule makes an account privileged on its own
    (the connector then refuses to act on it). Unit-level on purpose: mutating these checks
    must never run against the lab, where a missed refusal resets a real account."""
    conn = FakeConn({USER: entry} if entry is not None else {}, chain)
    assert ActiveDirectory(hints_critical=True).is_privileged(conn, USER, read_attrs, admin_groups) is True  # type: ignore[arg-type]


def test_an_ad_account_whose_primary_group_is_an_admin_group_is_privileged() -> None:
    """No ``member`` link at all (AD keeps the primary group out of it): the admin group's SID
    among the account's tokenGroups is what makes it privileged."""
    primary = {"objectSid": [_sid(*DOMAIN, 1105)], "primaryGroupID": [b"1300"], "tokenGroups": [_sid(*DOMAIN, 1300)]}
    conn = FakeConn({USER: primary, IT_ADMINS: {"objectSid": [_sid(*DOMAIN, 1300)]}}, {})
    assert ActiveDirectory(hints_critical=True).is_privileged(conn, USER, {}, [IT_ADMINS]) is True  # type: ignore[arg-type]


def test_an_ordinary_ad_account_outside_the_admin_groups_is_not_privileged() -> None:
    conn = FakeConn({USER: ORDINARY}, {IT_ADMINS: {"CN=someone else,OU=People,DC=example,DC=test"}})
    assert ActiveDirectory(hints_critical=True).is_privileged(conn, USER, {}, [IT_ADMINS]) is False  # type: ignore[arg-type]


class _ResultConn(FakeConn):
    """FakeConn whose searches under *codes* end with that LDAP result code and no entry."""

    def __init__(self, entries: dict[str, Any], codes: dict[str, int]) -> None:
        super().__init__(entries, {})
        self.codes = codes

    def search(self, base: str, flt: str, scope: object = None, attributes: object = None, **kw: object) -> bool:
        super().search(base, flt, scope, attributes, **kw)
        self.result = {"result": self.codes.get(base, 0)}
        if base in self.codes:
            self.response = []
        return True


GROUP = "cn=it-admins,ou=groups,dc=example,dc=org"


@pytest.mark.parametrize(
    ("code", "error"), [(32, GroupMissing), (34, GroupMissing), (0, GroupMissing), (50, ProtectionUnknown)]
)
def test_an_admin_group_that_cannot_be_read_fails_closed(code: int, error: type[Exception]) -> None:
    """noSuchObject, invalidDNSyntax or an empty answer: the group is missing (a configuration
    error naming it); any other failure: protection unknown. Never "not a member"."""
    with pytest.raises(error):
        require_group(_ResultConn({}, {GROUP: code}), GROUP)  # type: ignore[arg-type]
    require_group(_ResultConn({GROUP: {}}, {}), GROUP)  # type: ignore[arg-type]  # exists: no error


def test_an_ad_admin_group_that_does_not_exist_is_a_configuration_error() -> None:
    missing = "CN=no-such-group,OU=Groups,DC=example,DC=test"
    conn = _ResultConn({USER: ORDINARY}, {missing: 32})
    with pytest.raises(GroupMissing):
        ActiveDirectory(hints_critical=True).is_privileged(conn, USER, {}, [missing])  # type: ignore[arg-type]


def test_an_ad_account_read_without_its_sid_is_protection_unknown() -> None:
    conn = FakeConn({USER: {"primaryGroupID": [b"513"]}}, {})
    with pytest.raises(ProtectionUnknown):
        ad_protected(conn, USER)  # type: ignore[arg-type]


def test_a_plugin_that_is_not_a_connector_is_refused() -> None:
    class NotAConnector:
        name = "fake"
        actions: ClassVar[dict[str, Any]] = {}

    for cls in (NotAConnector, NotAConnector(), "connectors.ldap:LdapConnector"):
        with pytest.raises(PluginError, match=r"is not a subclass of connectors\.base\.Connector"):
            _check("fake", "evil-dist", cls)


BIND = "cn=firstline,ou=services,dc=example,dc=org"
ALICE = "uid=alice,ou=people,dc=example,dc=org"


def _gated(monkeypatch: pytest.MonkeyPatch, dn: str, **config: Any) -> tuple[Any, list[str]]:
    """An OpenLDAP connector whose look-up finds *dn* and whose writes are recorded, not sent."""
    from connectors.ldap import LdapConnector, LdapTarget

    target = LdapTarget.model_validate(
        {
            "connector": "ldap",
            "flavor": "openldap",
            "url": "ldaps://127.0.0.1:6636",
            "bind_dn": BIND,
            "password": {"env": "UNUSED"},
            "base_dn": "dc=example,dc=org",
            **config,
        }
    )
    conn = LdapConnector("corp", target, lambda ref: "")
    fake = FakeConn({BIND: {"entryUUID": [b"svc-uuid"]}, ALICE: {"entryUUID": [b"alice-uuid"]}}, {})
    writes: list[str] = []
    monkeypatch.setattr(conn, "_resolve", lambda user, timeout, **_: (dn, {}))
    monkeypatch.setattr(conn, "_service", lambda timeout: fake)
    for name in ("reset", "unlock", "change"):
        monkeypatch.setattr(conn._flavor, name, lambda *a, _n=name, **k: writes.append(_n))
    return conn, writes


@pytest.mark.parametrize(
    ("dn", "config"),
    [
        ("CN=Firstline, OU=Services, DC=Example, DC=Org", {}),  # the bind account, spelled otherwise
        (ALICE, {"protected_accounts": ["UID=Alice,OU=People,DC=example,DC=org"]}),
    ],
    ids=["bind-account", "protected_accounts"],
)
def test_no_write_reaches_a_protected_account(monkeypatch: pytest.MonkeyPatch, dn: str, config: dict[str, Any]) -> None:
    conn, writes = _gated(monkeypatch, dn, **config)
    for action, extra in (("reset_password", {"new_password": "Een lange zin van vijftien"}), ("unlock_account", {})):
        with pytest.raises(Rejected) as err:
            conn.run(action, {"user": "alice", **extra}, timeout=5)
        assert err.value.reason == "not_allowed"
    assert writes == []


@pytest.mark.parametrize(
    ("raised", "reason"), [(ProtectionUnknown("no answer"), "protection_unknown"), (GroupMissing("cn=gone"), "config")]
)
def test_when_protection_cannot_be_decided_nothing_is_written(
    monkeypatch: pytest.MonkeyPatch, raised: Exception, reason: str
) -> None:
    conn, writes = _gated(monkeypatch, ALICE)

    def undecided(*_a: Any, **_k: Any) -> bool:
        raise raised

    monkeypatch.setattr(conn._flavor, "is_privileged", undecided)
    with pytest.raises(Rejected) as err:
        conn.run("reset_password", {"user": "alice", "new_password": "Een lange zin van vijftien"}, timeout=5)
    assert err.value.reason == reason
    assert writes == []
