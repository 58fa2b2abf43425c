"""A private slapd 2.5 for policy experiments the shared lab slapd must not run (tests that
need other cn=config settings, e.g. ``olcLastBind``). Same suffix, CA, certificate, service
account password and ACLs as lab/slapd.sh, on its own free port and data folder; started by
the test and stopped by its own pid only."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ldap3 import BASE, Connection, Server, Tls

from connectors.ldap import LdapConnector
from runner.secrets import SecretStore
from tests.integration.directory.helpers import CA, LAB, VAR, new_password, target_config

SUFFIX = "dc=example,dc=org"
ROOTDN = f"cn=admin,{SUFFIX}"
SVCDN = f"cn=firstline,ou=services,{SUFFIX}"
PEOPLE = f"ou=people,{SUFFIX}"


@dataclass
class PrivateSlapd:
    url: str
    port: int
    pid: int
    admin_password: str

    def admin(self) -> tuple[Connection, Server]:
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(CA))
        server = Server("127.0.0.1", port=self.port, use_ssl=True, tls=tls, get_info=None)
        return Connection(server, ROOTDN, self.admin_password, auto_bind=True), server

    def connector(self) -> LdapConnector:
        """The lab's ``corp`` target pointed here, under a target name of its own (a refused
        service bind here must not trip the lab target's breaker). Close it after use."""
        return LdapConnector("corp-private", target_config("corp", url=self.url), SecretStore(LAB))

    def add_user(self, name: str, sn: str, **extra: str) -> str:
        """Add ``uid=<name>`` under people (inetOrgPerson, *extra* attributes); its password."""
        admin, _server = self.admin()
        pw = new_password()
        attrs = {"objectClass": ["inetOrgPerson"], "uid": name, "cn": name, "sn": sn, "userPassword": pw, **extra}
        assert admin.add(f"uid={name},{PEOPLE}", attributes=attrs), admin.result
        admin.unbind()
        return pw

    def binds(self, name: str, pw: str) -> bool:
        """Whether ``uid=<name>`` binds with *pw*."""
        admin, server = self.admin()
        admin.unbind()
        c = Connection(server, f"uid={name},{PEOPLE}", pw)
        try:
            return bool(c.bind())
        finally:
            c.unbind()

    def entry(self, name: str) -> dict[str, object]:
        """Every attribute of ``uid=<name>``, operational ones included."""
        admin, _server = self.admin()
        admin.search(f"uid={name},{PEOPLE}", "(objectClass=*)", BASE, attributes=["*", "+"])
        attrs = dict(admin.response[0]["attributes"])
        admin.unbind()
        return attrs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hash(secret: str) -> str:
    return subprocess.run(["slappasswd", "-s", secret], check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def private_slapd(
    base: Path, *, database: str = "", policy: str = "", access: tuple[str, ...] = ()
) -> Iterator[PrivateSlapd]:
    """Start a private slapd under *base*; *database* adds cn=config lines to the mdb database
    (e.g. ``olcLastBind: TRUE``), *policy* adds lines to cn=default,ou=policies, *access* adds
    olcAccess rules (``to ... by ...``) before the lab's own."""
    admin_pw = (VAR / "slapd" / "secrets" / "admin").read_text().strip()
    svc_pw = (VAR / "slapd" / "secrets" / "firstline").read_text().strip()
    tls = VAR / "slapd" / "tls"
    for sub in ("slapd.d", "data", "run"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    pidfile = base / "run" / "slapd.pid"
    people = f"ou=people,{SUFFIX}"
    svc, own = f'by dn.exact="{SVCDN}"', "by self write by anonymous auth by * none"  # as lab/slapd.sh
    rules = [
        *access,
        f'to dn.subtree="{people}" attrs=userPassword {svc} write {own}',
        f"to attrs=userPassword {own}",
        f'to dn.subtree="{people}" attrs=pwdAccountLockedTime,pwdReset {svc} write by users read by * none',
        "to * by users read by * none",
    ]
    acl = "\n".join(f"olcAccess: {{{i}}}{rule}" for i, rule in enumerate(rules))
    config = f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {pidfile}
olcArgsFile: {base}/run/slapd.args
olcLogLevel: none
olcTLSCACertificateFile: {CA}
olcTLSCertificateFile: {tls}/server.crt
olcTLSCertificateKeyFile: {tls}/server.key
olcTLSProtocolMin: 3.3

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcRootDN: {ROOTDN}
olcRootPW: {_hash(admin_pw)}
olcDbDirectory: {base}/data
olcDbMaxSize: 104857600
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: member eq
{acl}
{database.strip()}

dn: olcOverlay={{0}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{0}}ppolicy
olcPPolicyDefault: cn=default,ou=policies,{SUFFIX}
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: FALSE
"""
    data = f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: {people}
objectClass: organizationalUnit
ou: people

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=policies,{SUFFIX}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,{SUFFIX}
objectClass: top
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 3
pwdLockoutDuration: 0
pwdMinLength: 8
pwdInHistory: 3
pwdCheckQuality: 2
pwdAllowUserChange: TRUE
pwdMustChange: TRUE
{policy.strip()}

dn: {SVCDN}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: firstline
userPassword: {_hash(svc_pw)}

dn: cn=it-admins,ou=groups,{SUFFIX}
objectClass: groupOfNames
cn: it-admins
member: {ROOTDN}
"""
    (base / "config.ldif").write_text(config)
    (base / "data.ldif").write_text(data)
    subprocess.run(["slapadd", "-q", "-n0", "-F", f"{base}/slapd.d", "-l", f"{base}/config.ldif"], check=True)
    subprocess.run(["slapadd", "-q", "-n1", "-F", f"{base}/slapd.d", "-l", f"{base}/data.ldif"], check=True)
    port = _free_port()
    url = f"ldaps://127.0.0.1:{port}"
    subprocess.run(["slapd", "-F", f"{base}/slapd.d", "-h", url], check=True)
    pid = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text().strip():
            pid = int(pidfile.read_text().strip())
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                pass
        time.sleep(0.05)
    assert pid, "the private slapd did not start"
    try:
        yield PrivateSlapd(url, port, pid, admin_pw)
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
