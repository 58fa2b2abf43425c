"""Helpers for the directory tests: the real lab slapd and Samba AD DC, and the SMTP sink.

``directory`` is parametrised over both flavours; each test creates its own users through
the directory's administrator (never the service account under test), so tests are
independent and can be re-run against long-lived servers.
"""

from __future__ import annotations

import email
import email.policy
import json
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml
from ldap3 import BASE, MODIFY_REPLACE, Connection, Server, Tls

from connectors.ldap import LdapConnector, LdapTarget
from connectors.mail import MailConnector, MailTarget
from runner.secrets import SecretStore

REPO = Path(__file__).resolve().parents[3]
LAB = REPO / "lab"
VAR = REPO / "var" / "lab"
MAILDIR = VAR / "smtp" / "mail"
CA = VAR / "ca" / "ca.crt"


def inventory() -> dict[str, Any]:
    return yaml.safe_load((LAB / "inventory.yaml").read_text())


def target_config(name: str, **changes: Any) -> LdapTarget:
    raw = dict(inventory()["targets"][name])
    raw.update(changes)
    return LdapTarget.model_validate(raw)


def connector(name: str, **changes: Any) -> LdapConnector:
    return LdapConnector(name, target_config(name, **changes), SecretStore(LAB))


def mail_connector() -> MailConnector:
    cfg = MailTarget.model_validate(inventory()["targets"]["mail-lab"])
    return MailConnector("mail-lab", cfg, SecretStore(LAB))


def _tls() -> Tls:
    return Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(CA))


def new_password() -> str:
    """A random password that passes every rule of both directories and of the policy."""
    # Only letters and digits that no leet substitution turns into letters (0 1 3 4 5 7 map
    # to o l e a s t), so a random draw can never spell a blocked word or a user's name.
    alphabet = "bcdfghjkmnpqrvwxyz2689"

    def draw(n: int) -> str:
        return "".join(secrets.choice(alphabet) for _ in range(n))

    return f"Zq-{draw(12)} Kv-{draw(8)}!"


@dataclass
class Directory:
    """One lab directory: its connector, an administrator connection, and user helpers."""

    flavor: str
    target: str
    conn: LdapConnector
    admin: Connection
    server: Server
    base: str
    attr: str
    created: list[str] = field(default_factory=list)

    def dn(self, user: str) -> str:
        if user in self.created:
            return f"uid={user},{self.base}" if self.flavor == "openldap" else f"CN={user},{self.base}"
        self.admin.search(self.base, f"({self.attr}={user})", attributes=["cn"])
        assert self.admin.entries, f"no lab user {user}"
        return str(self.admin.entries[0].entry_dn)

    def create_user(
        self, *, given: str = "Test", sn: str = "Person", mail: bool = True, **extra: Any
    ) -> tuple[str, str]:
        """A fresh user with a known password; returns (login, password)."""
        user = f"t{secrets.token_hex(5)}"
        self.created.append(user)
        pw = new_password()
        if self.flavor == "openldap":
            attrs: dict[str, Any] = {
                "objectClass": ["inetOrgPerson"],
                "uid": user,
                "cn": f"{given} {sn}",
                "givenName": given,
                "sn": sn,
                "userPassword": pw,
            }
        else:
            attrs = {
                "objectClass": ["top", "person", "organizationalPerson", "user"],
                "sAMAccountName": user,
                "userPrincipalName": f"{user}@example.test",
                "givenName": given,
                "sn": sn,
                "unicodePwd": f'"{pw}"'.encode("utf-16-le"),
                "userAccountControl": "512",
            }
        if mail:
            attrs["mail"] = f"{user}@example.org"
        attrs.update(extra)
        ok = self.admin.add(self.dn(user), attributes=attrs)
        assert ok, self.admin.result
        return user, pw

    def read(self, user: str, *attrs: str) -> dict[str, Any]:
        names = list(attrs) or ["*", "+"]
        self.admin.search(self.dn(user), "(objectClass=*)", BASE, attributes=names)
        assert self.admin.entries, self.admin.result
        return {k: v for k, v in self.admin.entries[0].entry_attributes_as_dict.items()}

    def state_attrs(self, user: str) -> dict[str, Any]:
        """Everything that an action could change, for before/after comparisons."""
        if self.flavor == "openldap":
            names = ["userPassword", "pwdAccountLockedTime", "pwdReset", "pwdChangedTime", "pwdHistory", "mail"]
        else:
            names = ["pwdLastSet", "lockoutTime", "userAccountControl", "badPwdCount", "mail", "whenChanged"]
        return self.read(user, *names)

    def bind_ok(self, user: str, password: str) -> bool:
        c = Connection(self.server, self.dn(user), password)
        try:
            return bool(c.bind())
        finally:
            c.unbind()

    def lock(self, user: str) -> None:
        """Lock *user* the real way: three failed binds."""
        for _ in range(3):
            c = Connection(self.server, self.dn(user), "wrong-" + secrets.token_hex(4))
            c.bind()
            c.unbind()
        assert self.conn.run("account_status", {"user": user}, timeout=10)["locked"] is True

    def set(self, user: str, **values: Any) -> None:
        ok = self.admin.modify(
            self.dn(user), {k: [(MODIFY_REPLACE, v if isinstance(v, list) else [v])] for k, v in values.items()}
        )
        assert ok, self.admin.result

    def cleanup(self) -> None:
        for user in self.created:
            self.admin.delete(self.dn(user))


def _admin(flavor: str) -> tuple[Connection, Server]:
    if flavor == "openldap":
        server = Server("127.0.0.1", port=6636, use_ssl=True, tls=_tls(), get_info=None)
        pw = (VAR / "slapd" / "secrets" / "admin").read_text()
        return Connection(server, "cn=admin,dc=example,dc=org", pw, auto_bind=True), server
    server = Server("127.0.0.1", port=636, use_ssl=True, tls=_tls(), get_info=None)
    pw = (VAR / "samba" / "secrets" / "admin").read_text()
    return Connection(server, "Administrator@example.test", pw, auto_bind=True), server


@contextmanager
def openldap_directory() -> Iterator[Directory]:
    """The lab slapd's ``corp`` directory with its admin connection, cleaned up afterwards
    (the slapd must be running: ``start_lab("slapd")``)."""
    admin, server = _admin("openldap")
    d = Directory("openldap", "corp", connector("corp"), admin, server, FLAVORS["openldap"][1], "uid")
    try:
        yield d
    finally:
        d.conn.close()
        d.cleanup()
        admin.unbind()


FLAVORS = {
    "openldap": ("corp", "ou=people,dc=example,dc=org", "uid"),
    "active_directory": ("ad", "OU=People,DC=example,DC=test", "sAMAccountName"),
}


def lab_users(flavor: str) -> dict[str, str]:
    svc = "slapd" if flavor == "openldap" else "samba"
    users: dict[str, str] = json.loads((VAR / svc / "secrets" / "users.json").read_text())
    return users


# The sink writes each message under a temporary name and renames it (lab/smtp_sink.py): a
# file seen here never changes, so each is parsed once per test process. Without this,
# every poll parsed the whole mail folder again (thousands of messages late in a CI run:
# seconds per poll).
_PARSED: dict[Path, tuple[str, EmailMessage]] = {}


def _parsed(path: Path) -> tuple[str, EmailMessage]:
    found = _PARSED.get(path)
    if found is None:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found = _PARSED[path] = (str(msg["To"]).lower(), msg)
    return found


def mails_to(address: str, *, wait: float = 5.0) -> list[EmailMessage]:
    """Messages the lab SMTP sink stored for *address* (waits briefly for delivery), oldest first."""
    deadline = time.monotonic() + wait
    wanted = address.lower()
    while True:
        found = []
        for path in sorted(MAILDIR.glob("*.eml")):
            to, msg = _parsed(path)
            if to == wanted:
                found.append(msg)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def raw_mails_to(address: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(MAILDIR.glob("*.eml")) if address.encode() in p.read_bytes())


Run = Callable[..., dict[str, Any]]
