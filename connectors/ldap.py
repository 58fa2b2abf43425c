"""The ``ldap`` connector: account status, unlock, password reset and change on a directory.

Two flavours, chosen per inventory target with ``flavor:``:

* ``openldap`` — slapd with the ppolicy overlay: lock state from ``pwdAccountLockedTime``
  (and the effective policy's ``pwdLockoutDuration``), must-change from ``pwdReset``,
  resets through the RFC 3062 password-modify operation so that slapd applies its policy.
* ``active_directory`` — Microsoft AD or Samba: ``unicodePwd`` with the policy-hints
  control, ``lockoutTime=0``, ``pwdLastSet``, ``msDS-User-Account-Control-Computed``.

Inventory target (all keys; unknown keys are errors)::

    corp:
      connector: ldap
      flavor: openldap                       # or active_directory
      url: ldaps://ldap.example.org:636      # or ldap://...:389 with start_tls: true
      ca_file: /etc/firstline/ldap-ca.pem    # or {file: relative/to/inventory.pem}; default: system CAs
      tls_server_name: dc01.example.org      # optional: the name the certificate must carry (and SNI)
      bind_dn: cn=firstline,ou=services,dc=example,dc=org
      password: {file: secrets/firstline}
      base_dn: ou=people,dc=example,dc=org   # accounts outside it are never touched
      user_attribute: uid                    # sAMAccountName for AD
      admin_groups: [cn=it-admins,ou=groups,dc=example,dc=org]   # nested groups count; must exist
      protected_accounts: [cn=admin,dc=example,dc=org]           # optional: DNs never acted on
      auth_failure_cooldown: 300             # s without binding again after the service bind was refused
      password_policy: {min_length: 15, min_length_with_mfa: 8, max_length: 128}

Safety rules enforced here: account names are validated and escaped, exactly one entry
under ``base_dn`` must match, privileged accounts are refused (``not_allowed``) — the
target's own bind account always (see ``connectors.ldap_protect``), on AD every member of
the built-in protected groups by well-known SID, krbtgt and Administrator — and no
password is sent unless the connection is TLS-protected with a certificate verified for
``tls_server_name`` or the URL's host. Passwords travel as the exact UTF-8 bytes typed
(``wire_password``: no SASLprep). After the directory refuses the service account, runs
fail fast for ``auth_failure_cooldown`` seconds (``connectors.auth_breaker``) instead of
adding failed sign-ins until the service account locks.
"""

from __future__ import annotations

import math
import re
import secrets as pysecrets
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPException,
    LDAPInvalidValueError,
    LDAPPasswordIsMandatoryError,
    LDAPResponseTimeoutError,
    LDAPSASLPrepError,
    LDAPSocketOpenError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn
from pydantic import Field, field_validator, model_validator

from connectors.auth_breaker import BREAKERS
from connectors.base import (
    ActionSpec,
    AuthFailed,
    Connector,
    ConnectorError,
    InputSpec,
    InvalidInput,
    NotFound,
    Rejected,
    SecretResolver,
    TargetConfig,
    Timeout,
    Unreachable,
)
from connectors.ldap_controls import ad_bind_reason, ppolicy_request, refusal, response_ppolicy, stated_figure
from connectors.ldap_flavors import (
    RAW_KEY,
    ActiveDirectory,
    GroupMissing,
    OpenLdap,
    PartlyApplied,
    PwdPolicy,
    UnreadableValue,
    first,
    integer,
    utc_text,
    values_of,
)
from connectors.ldap_protect import (
    AD_PROTECTION_ATTRIBUTES,
    MAX_NESTING,
    ProtectionUnknown,
    canonical_dn,
    require_group,
    same_dn,
    sid_to_str,
    tidy_dn,
    unique_member,
)
from connectors.password_policy import REQUESTER_REASONS, PasswordPolicy, PolicyViolation, message
from connectors.tls_errors import certificate_error, client_context

__all__ = ["LdapConnector", "LdapTarget", "implicit_upn_domain", "validate_account_name", "validate_upn"]

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
FORBIDDEN_IN_NAME = re.compile(r"[*()\\\x00-\x1f\x7f]")


class _VerifiedTls(Tls):  # type: ignore[misc]  # ldap3 ships no type information
    """ldap3 ``Tls`` that wraps the socket with our own ``SSLContext``.

    ldap3's own wrapping turns hostname checking off and then accepts the URL's host *or*
    any ``valid_names``; here Python's verification checks the certificate against
    ``server_name`` (sent as SNI too) and the failure is kept in ``failure`` so that the
    connector can tell an untrusted issuer from a name mismatch or an expired certificate
    (ldap3 re-raises it as text only).
    """

    def __init__(self, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self._context = context
        self._server_name = server_name
        self.failure: BaseException | None = None

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        try:
            connection.socket = self._context.wrap_socket(
                connection.socket,
                server_side=False,
                do_handshake_on_connect=do_handshake,
                server_hostname=self._server_name,
            )
        except (ssl.SSLError, OSError) as exc:  # SSLCertVerificationError included
            self.failure = exc
            raise


def _usable_dn(value: str) -> str:
    """*value* as a DN ldap3 accepts: spaces around separators dropped; else ``ValueError``.

    RFC 4514 allows spaces after commas (ldap3 does not) — those are tidied; attribute types
    given as OIDs are refused here, because ldap3 would refuse them on every operation.
    """
    try:
        if not canonical_dn(value):
            raise ValueError("empty")
        tidied = tidy_dn(value)
        parse_dn(tidied)
    except (ValueError, UnicodeDecodeError, LDAPException) as exc:
        raise ValueError(f"'{value}' is not a valid DN (use attribute names such as cn, ou, dc)") from exc
    return tidied


class LdapTarget(TargetConfig):
    """Inventory settings of one directory target."""

    flavor: Literal["openldap", "active_directory"]
    url: str = Field(pattern=r"^ldaps?://[^/\s]+/?$")
    start_tls: bool = False
    ca_file: str | dict[str, str] | None = None
    # the name the certificate must carry (and SNI), when it differs from the URL's host
    tls_server_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9*]([A-Za-z0-9.*-]{0,251}[A-Za-z0-9])?$")
    bind_dn: str = Field(min_length=3)
    password: dict[str, str]
    base_dn: str = Field(min_length=3)
    user_attribute: str = Field(default="uid", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
    user_object_class: str = Field(default="person", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
    admin_groups: list[str] = Field(default_factory=list)
    protected_accounts: list[str] = Field(default_factory=list)  # DNs never acted on (e.g. a root DN)
    password_policy: PasswordPolicy = Field(default_factory=PasswordPolicy)
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    ppolicy_default_dn: str | None = None  # OpenLDAP: olcPPolicyDefault, for lockout duration
    policy_hints: Literal["critical", "optional"] = "critical"  # AD: see docs/directory.md
    auth_failure_cooldown: float = Field(default=300.0, ge=0, le=86400)  # s; see connectors.auth_breaker

    @field_validator("admin_groups", "protected_accounts")
    @classmethod
    def _dns(cls, values: list[str]) -> list[str]:
        return [_usable_dn(v) for v in values]

    @field_validator("base_dn", "bind_dn")
    @classmethod
    def _dn(cls, value: str) -> str:
        return _usable_dn(value)

    @model_validator(mode="after")
    def _tls(self) -> LdapTarget:
        scheme = urlsplit(self.url).scheme
        if scheme == "ldap" and not self.start_tls:
            raise ValueError("ldap:// needs start_tls: true (passwords only travel over TLS); or use ldaps://")
        if scheme == "ldaps" and self.start_tls:
            raise ValueError("start_tls applies to ldap:// URLs only")
        return self


def validate_account_name(user: Any) -> str:
    """Return *user* if it is a plausible account name; raise ``InvalidInput`` otherwise."""
    if not isinstance(user, str) or not user:
        raise InvalidInput("Give an account name.", reason="invalid_account")
    if len(user) > 64:
        raise InvalidInput("The account name is too long.", reason="invalid_account")
    if FORBIDDEN_IN_NAME.search(user) or not ACCOUNT_NAME.fullmatch(user):
        raise InvalidInput(
            "The account name may only contain letters, digits, dots, dashes and underscores.",
            reason="invalid_account",
        )
    return user


def _is_account_name(value: Any) -> bool:
    try:
        validate_account_name(value)
    except InvalidInput:
        return False
    return True


_UPN_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


def validate_upn(user: Any) -> str:
    """Return *user* if it is ``name@domain`` as a person types a sign-in name (UPN) for AD:
    the name an account name (``validate_account_name``), the domain an ASCII DNS name; the
    domain comes back in lower case. ``InvalidInput`` (``invalid_account``) otherwise."""
    if not isinstance(user, str) or user.count("@") != 1 or len(user) > 320:
        raise InvalidInput("Give an account name.", reason="invalid_account")
    name, domain = user.split("@")
    validate_account_name(name)
    if not domain.isascii() or len(domain) > 253 or not _UPN_DOMAIN.fullmatch(domain.lower()):
        raise InvalidInput("The account's domain is not a domain name.", reason="invalid_account")
    return f"{name}@{domain.lower()}"


def wire_password(password: str) -> bytes:
    """The exact UTF-8 bytes of *password* as typed, for ldap3 (which SASLpreps a ``str``).

    Raises ``InvalidInput`` (``invalid_characters``, requester action) for text with no
    UTF-8 form (a lone surrogate) or an empty password; the exception never carries the value.
    """
    try:
        data = password.encode("utf-8")
    except UnicodeEncodeError:
        # not chained: UnicodeEncodeError.object holds the whole password
        raise InvalidInput(
            message("invalid_characters", "en"), reason="invalid_characters", requester_action=True, fixed_text=True
        ) from None
    if not data:
        raise InvalidInput("Give the password.", reason="password_missing", requester_action=True, fixed_text=True)
    return data


def _under(dn: str, base: str) -> bool:
    """True when *dn* lies below *base*, compared as DNs (``canonical_dn``), never as strings.

    A server spells an escaped character its own way: slapd returns ``ou=Sales\\2C EMEA`` for a
    base written ``ou=Sales\\, EMEA`` (AD the other way round), and case and spaces may differ.
    """
    try:
        d, b = canonical_dn(dn), canonical_dn(base)
    except (ValueError, UnicodeDecodeError):
        return False
    return len(d) > len(b) and d[-len(b) :] == b


def _dns_domain(dn: str) -> str | None:
    """The DNS name of the AD domain naming context *dn* lies in: its trailing ``DC=`` RDNs,
    joined by dots, in lower case (``CN=x,OU=People,DC=Example,DC=test`` → ``example.test``);
    None when *dn* ends in no ``DC=`` RDN or cannot be parsed. An AD domain's naming context
    is named after the domain's DNS name ([MS-ADTS] 3.1.1.1.4), so this is the suffix of the
    implicit UPN (``sAMAccountName@<this>``) of an account whose DN it is."""
    try:
        rdns = canonical_dn(dn)
    except (ValueError, UnicodeDecodeError):
        return None
    labels: list[str] = []
    for rdn in reversed(rdns):
        if len(rdn) != 1 or rdn[0][0] != "dc" or not rdn[0][1]:
            break
        labels.append(rdn[0][1])
    return ".".join(reversed(labels)).lower() if labels else None


def implicit_upn_domain(config: LdapTarget) -> str | None:
    """The domain of AD's implicit sign-in names (``sAMAccountName@<this>``) for a target's
    accounts: the DNS name of ``base_dn``'s domain naming context (``_dns_domain``); None on
    OpenLDAP (no UPNs) or when ``base_dn`` has no ``DC=`` components. Not the directory's
    declared ``domains``: those may list alternate UPN suffixes, which AD never applies
    implicitly (``LdapConnector._find``)."""
    return _dns_domain(config.base_dn) if config.flavor == "active_directory" else None


def _refused(reason: str, **values: object) -> Rejected:
    return Rejected(
        message(reason, "en", **values), reason=reason, requester_action=reason in REQUESTER_REASONS, fixed_text=True
    )


_GEN_ALPHABETS = ("ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "-_.!#%+=")


def generate_password(length: int) -> str:
    """A random temporary password with every character class (satisfies AD complexity)."""
    alphabet = "".join(_GEN_ALPHABETS)
    chars = [pysecrets.choice(a) for a in _GEN_ALPHABETS]
    chars += [pysecrets.choice(alphabet) for _ in range(length - len(chars))]
    pysecrets.SystemRandom().shuffle(chars)
    return "".join(chars)


_STATUS_OUT = frozenset(
    {
        "exists",
        "account",
        "dn",
        "locked",
        "lock_reason",
        "disabled",
        "expired",
        "must_change",
        "must_change_unknown",
        "password_expired",
        "password_expires",
        "mail",
        "mails",
        "given_name",
        "surname",
        "privileged",
        "password_set",
        "reset_blocked",
    }
)
_MISSING = {
    "exists": False,
    "account": "",
    "dn": "",
    "locked": False,
    "lock_reason": "",
    "disabled": False,
    "expired": False,
    "must_change": False,
    "must_change_unknown": False,
    "password_expired": False,
    "password_expires": "",
    "mail": "",
    "mails": "",
    "given_name": "",
    "surname": "",
    "privileged": False,
    "password_set": "",
    "reset_blocked": "",
}
_USER = InputSpec("user", max_length=256)
_NOT_ENFORCED = (
    "The directory would not make this account change the new password at the next sign-in: {why}. "
    "Nothing was changed; reset it without 'must be changed at the next sign-in' only if that is intended."
)
ADMIN_GROUP_CLASSES = frozenset({"groupofnames", "groupofuniquenames", "posixgroup"})
MUST_CHANGE_NOT_ENFORCED = {  # fixed sentences (runner.texts has them in Dutch)
    "openldap": _NOT_ENFORCED.format(
        why="its password policy does not require a change after a reset (pwdMustChange is not TRUE)"
    ),
    "active_directory": _NOT_ENFORCED.format(
        why="the account is set so that its password never expires, and the directory then ignores "
        "'must change at next logon'"
    ),
}
SMARTCARD_REQUIRED = (  # fixed sentence (runner.texts has it in Dutch)
    "This account signs in with a smart card, so a new password would not let the person in. Nothing was "
    "changed; the service desk will look at it (a lost or broken card is replaced, not reset)."
)
RESET_TOO_YOUNG = (  # fixed sentence (runner.texts has it in Dutch)
    "The directory does not allow another password change for this account yet (its password policy sets a "
    "minimum time between changes). Nothing was changed; the service desk will look at it."
)
MUST_CHANGE_IMPOSSIBLE = (  # fixed sentence (runner.texts has it in Dutch)
    "The directory would make this account change the new password at the next sign-in, but its password "
    "policy does not let the account change its own password (pwdAllowUserChange is FALSE), so the account "
    "could not be used at all. Nothing was changed; the service desk will look at it."
)
MUST_CHANGE_UNKNOWN = (
    "The password policy that applies to this account could not be read, so Firstline cannot tell whether "
    "the directory would make the new password be changed at the next sign-in. Nothing was changed; the "
    "service desk will look at it (the service account must be able to read the policy entry named by the "
    "account's pwdPolicySubentry, or by ppolicy_default_dn of the target)."
)


def all_mail(attrs: Mapping[str, Any]) -> str:
    """Every address the entry holds (all ``mail`` values, then AD ``otherMailbox``), comma-separated,
    each once (case-insensitive), for notifications that go to all registered addresses
    (../shared/security.md item 36)."""
    found: dict[str, str] = {}
    for name in ("mail", "otherMailbox"):
        for key, values in attrs.items():
            if key.lower() != name.lower():
                continue
            for value in values if isinstance(values, list | tuple) else [values]:
                text = str(value or "").strip()
                if text and "," not in text:
                    found.setdefault(text.lower(), text)
    return ",".join(found.values())


class LdapConnector(Connector):
    """Accounts on an OpenLDAP or Active Directory directory (see the module docstring)."""

    name = "ldap"
    config_model = LdapTarget
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "account_status": ActionSpec(
            name="account_status",
            inputs=(_USER,),
            outputs=_STATUS_OUT,
            description="Read whether an account exists, is locked, disabled, expired or must change.",
        ),
        "unlock_account": ActionSpec(
            name="unlock_account",
            inputs=(_USER,),
            outputs=frozenset({"unlocked", "was_locked", "changed"}),
            changes_state=True,
            description="Lift a lockout caused by failed sign-ins; confirmed by reading back.",
        ),
        "reset_password": ActionSpec(
            name="reset_password",
            inputs=(
                _USER,
                InputSpec("new_password", type="secret", secret=True, required=False),
                InputSpec("must_change", type="bool", required=False),
                InputSpec("mfa_verified", type="bool", required=False),
            ),
            outputs=frozenset({"temporary_password", "must_change"}),
            secret_outputs=frozenset({"temporary_password"}),
            changes_state=True,
            description="Set a new password (given, or generated and returned once).",
        ),
        "change_password": ActionSpec(
            name="change_password",
            inputs=(
                _USER,
                InputSpec("old_password", type="secret", secret=True),
                InputSpec("new_password", type="secret", secret=True),
                InputSpec("mfa_verified", type="bool", required=False),
            ),
            outputs=frozenset({"changed"}),
            changes_state=True,
            description="Change a password, proving the current one.",
        ),
        "check_password": ActionSpec(
            name="check_password",
            inputs=(
                _USER,
                InputSpec("new_password", type="secret", secret=True),
                InputSpec("mfa_verified", type="bool", required=False),
            ),
            outputs=frozenset({"ok"}),
            description="Check a candidate password against the policy; writes nothing.",
        ),
        "account_groups": ActionSpec(
            name="account_groups",
            inputs=(_USER,),
            outputs=frozenset({"exists", "groups", "groups_complete"}),
            description="Read the groups that hold an account, nested groups included; writes nothing.",
        ),
        "authenticate": ActionSpec(
            name="authenticate",
            inputs=(_USER, InputSpec("password", type="secret", secret=True)),
            outputs=frozenset({"account", "dn", "display_name", "mail", "groups", "groups_complete", "must_change"}),
            description="Prove a password by binding as the account (portal sign-in); writes nothing.",
        ),
    }

    config: LdapTarget

    def __init__(self, target_name: str, config: TargetConfig, secrets: SecretResolver) -> None:
        super().__init__(target_name, config, secrets)
        assert isinstance(config, LdapTarget)
        parts = urlsplit(config.url)
        self._host = parts.hostname or "127.0.0.1"
        self._use_ssl = parts.scheme == "ldaps"
        self._port = parts.port or (636 if self._use_ssl else 389)
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._policy_cache: dict[str, tuple[float, PwdPolicy | None]] = {}
        self._shapes_checked_until = 0.0  # monotonic: when the admin groups' classes are read again
        self._bind_identity: tuple[str, frozenset[bytes]] | None = None  # see _is_protected
        self._flavor: OpenLdap | ActiveDirectory = (
            OpenLdap(self._pwd_policy)
            if config.flavor == "openldap"
            else ActiveDirectory(hints_critical=config.policy_hints == "critical")
        )

    def _account_name(self, user: Any) -> str:
        """*user* checked as an account name; on Active Directory also a typed sign-in name
        ``name@domain`` (``validate_upn``), which ``_find`` looks up by ``userPrincipalName``."""
        if self.config.flavor == "active_directory" and isinstance(user, str) and "@" in user:
            return validate_upn(user)
        return validate_account_name(user)

    # ---------------------------------------------------------------- connections

    def _ssl_context(self) -> ssl.SSLContext:
        """Certificate and host name verified (TLS 1.2+), trusting ``ca_file`` or the system store.

        Raises ``ConnectorError`` (``config_error``) naming ``ca_file`` when it cannot be
        read or holds no PEM certificate (``connectors.tls_errors.client_context``).
        """
        return client_context(
            self.config.ca_file, setting=f"ca_file of target '{self.target_name}'", resolve=self._secrets
        )

    def _tls(self) -> _VerifiedTls:
        return _VerifiedTls(self._ssl_context(), self.config.tls_server_name or self._host)

    def _server(self, tls: _VerifiedTls | None = None) -> Server:
        return Server(
            self._host,
            port=self._port,
            use_ssl=self._use_ssl,
            tls=tls or self._tls(),
            get_info=NONE,
            connect_timeout=self.config.connect_timeout,
        )

    def _tls_error(self, exc: BaseException, where: str) -> ConnectorError:
        """A failed TLS handshake as one plain message naming the inventory setting to fix.

        ``certificate_untrusted`` (``ca_file``), ``certificate_name_mismatch``
        (``tls_server_name``), ``certificate_expired``, ``certificate_invalid`` — see
        ``connectors.tls_errors``; a handshake that fails without a certificate verdict
        (not a TLS port, protocol error) is ``Unreachable``.
        """
        target = self.target_name
        error = certificate_error(
            exc,
            what=f"the directory at {where}",
            ca_setting=f"ca_file of target '{target}'",
            name_setting=f"tls_server_name of target '{target}' (or use that name in url)",
            name=self.config.tls_server_name or self._host,
        )
        if error is not None:
            return error
        return Unreachable(f"The TLS handshake with the directory at {where} failed; is it an LDAPS/StartTLS port?")

    def _open(self, user: str | None, password: str | None, timeout: float) -> Connection:
        """A fresh connection, TLS established and checked, not yet bound."""
        tls = self._tls()
        conn = Connection(
            self._server(tls),
            user=user,
            password=password,
            client_strategy=SYNC,
            raise_exceptions=False,
            receive_timeout=max(1, math.ceil(timeout)),  # ldap3 packs it as an integer (SO_RCVTIMEO)
            auto_referrals=False,
            read_only=False,
        )
        where = f"{self._host}:{self._port}"
        try:
            conn.open()
            sock = conn.socket
            if sock is not None:
                # Nagle + delayed ACK costs ~40 ms per fresh LDAPS exchange on loopback
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.config.start_tls and not conn.start_tls():
                raise Unreachable(f"The directory at {where} did not accept StartTLS.")
        except (LDAPStartTLSError, LDAPSocketOpenError) as exc:
            if tls.failure is not None:  # the handshake itself failed: say exactly why
                raise self._tls_error(tls.failure, where) from exc
            if isinstance(exc, LDAPStartTLSError):
                raise Unreachable(f"The directory at {where} did not accept StartTLS.") from exc
            raise Unreachable(f"The directory at {where} cannot be reached.") from exc
        except LDAPException as exc:
            raise Unreachable(f"The directory at {where} cannot be reached.") from exc
        self._require_tls(conn)
        return conn

    @staticmethod
    def _require_tls(conn: Connection) -> None:
        if not (conn.tls_started or conn.server.ssl):
            raise Rejected(
                "Refusing to send credentials over an unencrypted directory connection.",
                reason="insecure_connection",
            )

    def _service(self, timeout: float) -> Connection:
        """The pooled, bound service connection (opened on first use or after a drop)."""
        conn = self._conn
        if conn is not None and not conn.closed and conn.bound:
            if conn.socket is not None:
                conn.socket.settimeout(timeout)
            return conn
        self._drop()
        secret = self._secrets(self.config.password)
        try:
            password = wire_password(secret)
        except InvalidInput:
            raise ConnectorError(
                f"The service password of target '{self.target_name}' is empty or not valid text; "
                "check the secret named by its 'password' setting.",
                reason="config",
            ) from None
        # after a refused sign-in, fail fast instead of adding failures to the service account
        breaker = BREAKERS.key(self.target_name, self.config.bind_dn, secret)
        BREAKERS.check(breaker)
        conn = self._open(self.config.bind_dn, None, timeout)
        try:
            conn.password = password
            ok = conn.bind(controls=[ppolicy_request()] if self.config.flavor == "openldap" else None)
        except LDAPException as exc:
            raise Unreachable(f"The directory at {self._host}:{self._port} dropped the connection.") from exc
        finally:
            conn.password = None  # do not keep the credential on the object
        if not ok:
            code = conn.result.get("result")
            result = dict(conn.result or {})
            self._safe_unbind(conn)
            if code == 49:
                error = self._service_auth_error(result)
                BREAKERS.trip(breaker, error, self.config.auth_failure_cooldown)
                raise error
            raise Unreachable("The directory refused the service connection.")
        BREAKERS.close(breaker)
        self._conn = conn
        return conn

    def _service_auth_error(self, result: Mapping[str, Any]) -> AuthFailed:
        """The plain reason the directory refused the service account (never the password)."""
        who = f"the service account of target '{self.target_name}'"
        pp = response_ppolicy(dict(result))
        reason = pp.error or ad_bind_reason(str(result.get("message") or "")) or "wrong_password"
        texts = {
            "locked": f"The directory reports {who} as locked; an administrator must unlock it "
            "(and check its password in the inventory).",
            "disabled": f"The directory reports {who} as disabled; an administrator must enable it.",
            "expired": f"The directory reports {who} as expired; an administrator must extend it.",
            "password_expired": f"The password of {who} has expired in the directory; set a new one "
            "there and in the secret named by its 'password' setting.",
            "must_change": f"The directory requires a new password for {who}; set one there and in "
            "the secret named by its 'password' setting.",
        }
        text = texts.get(
            reason,
            f"The directory refused {who}; check its bind_dn and the secret named by its 'password' setting.",
        )
        return AuthFailed(text, reason="auth_failed" if reason not in texts else f"service_{reason}")

    @staticmethod
    def _safe_unbind(conn: Connection) -> None:
        try:
            conn.unbind()
        except (LDAPException, OSError):
            pass

    def _drop(self) -> None:
        if self._conn is not None:
            self._safe_unbind(self._conn)
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    @contextmanager
    def _translate(self, what: str, *, write: bool = False) -> Iterator[None]:
        """Turn ldap3/socket failures during an operation into connector errors; during a
        *write* a lost connection or a missing answer leaves the change ``outcome_unknown``."""
        try:
            yield
        except ConnectorError:
            raise
        except LDAPResponseTimeoutError as exc:
            self._drop()
            raise Timeout(f"The directory did not answer in time ({what}).", outcome_unknown=write) from exc
        except (LDAPCommunicationError, OSError) as exc:
            self._drop()
            if "timed out" in str(exc).lower():
                raise Timeout(f"The directory did not answer in time ({what}).", outcome_unknown=write) from exc
            raise Unreachable(
                f"The connection to the directory was lost during {what}; it may or may not have been applied.",
                outcome_unknown=write,
            ) from exc
        except (LDAPSASLPrepError, LDAPPasswordIsMandatoryError, LDAPInvalidValueError):
            # ldap3 refused a value before sending it: the directory was never asked. Not
            # chained: these exceptions may quote the value, which can be a password.
            raise InvalidInput(
                f"A value could not be sent to the directory as given ({what}); nothing was changed.",
                reason="invalid_characters",
                requester_action=True,
                fixed_text=True,
            ) from None
        except LDAPException as exc:
            self._drop()
            raise Unreachable(f"The directory failed during {what}.") from exc

    @contextmanager
    def _session(self, timeout: float) -> Iterator[None]:
        """Hold the pooled connection for one action (ldap3 SYNC is not thread-safe)."""
        with self._lock:
            yield

    def check_connection(self, *, timeout: float) -> str:
        """Bind with the service account (TLS verified as for every action) and read base_dn."""
        base = self.config.base_dn
        with self._session(timeout), self._translate("the connection check"):
            conn = self._service(timeout)
            conn.search(base, "(objectClass=*)", BASE, attributes=["1.1"], dereference_aliases="NEVER")
            code = conn.result.get("result")
            if code == 32:
                raise NotFound(f"base_dn {base} of target '{self.target_name}' does not exist on the directory.")
            if code not in (0, None):
                raise Rejected(
                    f"The service account of target '{self.target_name}' cannot read base_dn {base} "
                    f"({conn.result.get('description') or code})."
                )
            for group in self.config.admin_groups:  # a missing admin group would refuse every action
                try:
                    require_group(conn, group)
                except GroupMissing as exc:
                    raise Rejected(
                        f"The admin group '{group}' named in admin_groups of target '{self.target_name}' "
                        "does not exist in the directory.",
                        reason="config",
                    ) from exc
                except ProtectionUnknown as exc:
                    raise Rejected(
                        f"The service account of target '{self.target_name}' cannot read the admin group '{group}'.",
                        reason="config",
                    ) from exc
            self._shapes_checked_until = 0.0  # read the classes now, whatever was read before
            self._admin_group_shapes(conn)
        groups = f", {len(self.config.admin_groups)} admin group(s) found" if self.config.admin_groups else ""
        return f"TLS verified, bound as {self.config.bind_dn}, read {base}{groups}"

    # ---------------------------------------------------------------- reads

    def _identity_names(self) -> tuple[str, ...]:
        """The attributes that identify an entry whatever its DN (see ``_is_protected``)."""
        return ("entryUUID",) if self.config.flavor == "openldap" else ("objectSid", "objectGUID")

    def _account_names(self, *, protection: bool = True) -> list[str]:
        """What one read of an account asks for: naming, contact and state attributes, and
        (*protection*) the raw identity / protection attributes that ``_status`` judges."""
        names = [self.config.user_attribute, "mail", "givenName", "sn", *self._flavor.attributes]
        if protection:
            names += self._identity_names()
            if self.config.flavor == "active_directory":
                names += AD_PROTECTION_ATTRIBUTES
        if self.config.flavor == "active_directory":
            names.append("otherMailbox")  # further addresses of the account (notifications: all of them)
        return list(dict.fromkeys(names))

    def _entry_attrs(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """The attributes of a search entry, times and identity / protection values as raw bytes.

        Times are the exact bytes sent (only connectors.ldap_time interprets them); the
        identity and protection attributes are kept under ``RAW_KEY`` as lists of bytes.
        """
        attributes = dict(entry["attributes"])
        raw = entry.get("raw_attributes") or {}
        times = {n.lower() for n in self._flavor.time_attributes}
        attributes.update({k: [bytes(v) for v in vs] for k, vs in raw.items() if k.lower() in times})
        kept = {n.lower() for n in (*self._identity_names(), *AD_PROTECTION_ATTRIBUTES)}
        attributes[RAW_KEY] = {k: [bytes(v) for v in vs] for k, vs in raw.items() if k.lower() in kept}
        return attributes

    def _read_attrs(self, conn: Connection, dn: str, *, protection: bool = True) -> dict[str, Any]:
        """One base read of the account at *dn* (``_account_names``); ``NotFound`` when it is gone."""
        attrs = self._account_names(protection=protection)
        conn.search(dn, "(objectClass=*)", BASE, attributes=attrs, dereference_aliases="NEVER")
        entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
        if conn.result.get("result") == 32 or not entries:
            raise NotFound("The account does not exist.", requester_action=True, fixed_text=True)
        if conn.result.get("result") not in (0, None):
            raise Unreachable("The directory could not read the account.")
        return self._entry_attrs(entries[0])

    @staticmethod
    def _unreadable(exc: UnreadableValue) -> Rejected:
        return Rejected(
            f"The directory holds a value in {exc.attribute} (of this account or its password policy) "
            "that Firstline cannot read, so it does not act on the account; the service desk will look at it.",
            reason="unreadable_value",
        )

    def _state(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The flavour's account state; a value it cannot read stops the action (fail closed)."""
        try:
            return self._flavor.state(attrs, datetime.now(UTC))
        except UnreadableValue as exc:
            raise self._unreadable(exc) from exc

    def _refuse_expired_password(self, status: Mapping[str, Any]) -> None:
        """OpenLDAP: refuse a self-change whose password expired with no grace bind left.

        slapd then refuses the user's bind (ppolicy error ``passwordExpired``), so the change
        cannot be proven; the requester is sent to password reset before any bind is tried.
        AD needs no such check: the DC accepts the change (delete old + add new) even then.
        """
        if not isinstance(self._flavor, OpenLdap) or not status["password_expired"]:
            return
        try:
            blocked = self._flavor.change_blocked_by_expiry(status["_attrs"], datetime.now(UTC))
        except UnreadableValue as exc:
            raise self._unreadable(exc) from exc
        if blocked:
            raise _refused("password_expired")

    def _find(self, conn: Connection, user: str) -> tuple[str, dict[str, Any]] | None:
        """The one entry under ``base_dn`` whose ``user_attribute`` is *user*: (DN, entry).

        On OpenLDAP the search asks for every attribute an account read needs, so the entry
        is the read (one round trip); AD's constructed attributes
        (``msDS-User-Account-Control-Computed``, ``tokenGroups``) come only from a base
        search, so there ``_resolve`` reads the entry again by DN.

        A sign-in name (UPN) ``name@domain`` (AD only, ``_account_name``) is the account whose
        ``userPrincipalName`` it is, whatever the domain; or, as AD's implicit UPN
        ``sAMAccountName@<domain DNS name>``, the account named *name* — but only when *domain*
        is the DNS name of the AD domain the account lives in. That name is read from the DNs
        (``_dns_domain``: the trailing ``DC=`` components, which name the domain naming
        context): the search asks for the implicit form only when *domain* is the domain of
        ``base_dn``, and the entry found counts as it only when *domain* is the domain of its
        own DN (an entry of a child domain has that domain's implicit UPN, not this one). Not
        the directory's declared ``domains`` (runner.routing): those route a typed name to a
        directory and may list alternate UPN suffixes, which AD never applies implicitly. So
        ``alice@alt.example`` or ``alice@foreign.example`` finds no account unless it is some
        account's explicit userPrincipalName, never the account named alice. Domains are
        compared in lower case (``validate_upn`` lowers the typed one). Two entries are
        ambiguous and refused (an explicit UPN of one that is the implicit UPN of another).
        """
        cfg = self.config
        upn = "@" in user  # only on AD (_account_name): the sign-in name (UPN) a person typed
        local, _at, domain = user.partition("@")
        domain = domain.lower()
        implicit = upn and domain == implicit_upn_domain(cfg)
        which = f"({cfg.user_attribute}={escape_filter_chars(user)})"
        if upn:
            # the account whose userPrincipalName is what was typed; when the domain is the AD
            # domain's DNS name, also the account whose sAMAccountName is the name part (AD's
            # implicit UPN); both existing as two accounts is ambiguous, never one of them
            which = f"(userPrincipalName={escape_filter_chars(user)})"
            if implicit:
                which = f"(|{which}({cfg.user_attribute}={escape_filter_chars(local)}))"
        flt = f"(&(objectClass={cfg.user_object_class}){which})"
        names = self._account_names() if cfg.flavor == "openldap" else [cfg.user_attribute, "userPrincipalName"]
        conn.search(
            cfg.base_dn,
            flt,
            SUBTREE,
            attributes=names,
            size_limit=2,
            dereference_aliases="NEVER",
        )
        code = conn.result.get("result")
        if code == 32:
            raise Rejected("The configured base DN does not exist in the directory.", reason="config")
        if code not in (0, 4, None):
            if code in (1, 2, 50, 80, 51, 52):
                raise Unreachable("The directory could not search for the account.")
            raise Rejected("The directory refused the account lookup.", reason="lookup_failed")
        entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
        if not entries:
            return None
        if len(entries) > 1 or code == 4:
            raise Rejected("More than one account matches that name.", reason="ambiguous")
        dn = str(entries[0]["dn"])

        def held(name: str) -> set[str]:
            values = entries[0]["attributes"].get(name) or []
            return {str(v).lower() for v in (values if isinstance(values, list) else [values])}

        if not _under(dn, cfg.base_dn):
            return None
        if upn:
            named = implicit and local.lower() in held(cfg.user_attribute) and _dns_domain(dn) == domain
            if user.lower() not in held("userPrincipalName") and not named:
                return None
        elif user.lower() not in held(cfg.user_attribute):
            return None
        return dn, entries[0]

    def _resolve(self, user: str, timeout: float, *, retry: bool = True) -> tuple[str, dict[str, Any]]:
        """DN + attributes of *user*; one transparent reconnect if the pooled link was dead.

        Only this first read of an action is retried: a drop during a later write is
        reported as Unreachable, because the write may or may not have been applied.
        """
        try:
            with self._translate("the account lookup"):
                found = self._find(self._service(timeout), user)
        except (Unreachable, Timeout):
            if not retry:
                raise
            return self._resolve(user, timeout, retry=False)
        if found is None:
            raise NotFound("The account does not exist.", requester_action=True, fixed_text=True)
        dn, entry = found
        with self._translate("reading the account"):
            if self.config.flavor == "openldap":
                return dn, self._entry_attrs(entry)
            return dn, self._read_attrs(self._service(timeout), dn)

    def _pwd_policy(self, policy_dn: str | None) -> PwdPolicy | None:
        """The effective OpenLDAP policy: the entry's ``pwdPolicySubentry``, else ``ppolicy_default_dn``.

        None — unknown — when neither is known; when the entry does not exist or the service
        account may not see it (slapd answers both as noSuchObject); when the read ends in any
        other result than success; and when the entry comes back without ``pwdAttribute``,
        which every ``pwdPolicy`` entry holds (so its attributes are hidden from the service
        account, or it is no policy at all). Callers then stay conservative, and whether a reset
        must be changed is not known (``must_change_enforced`` None: such resets are refused).
        A policy read is cached for 60 s; an unknown one is asked again at its next use.
        ``pwdMustChange`` other than TRUE / FALSE (absent = FALSE, as slapd reads it) is
        ``must_change`` None. ``UnreadableValue`` when a policy value is not an integer.
        """
        dn = policy_dn or self.config.ppolicy_default_dn
        if not dn or self._conn is None:
            return None
        cached = self._policy_cache.get(dn.lower())
        if cached and cached[0] > time.monotonic():
            return cached[1]
        conn = self._conn
        names = ["pwdAttribute", "pwdLockout", "pwdLockoutDuration", "pwdMaxAge", "pwdGraceAuthNLimit"]
        names += ["pwdGraceExpiry", "pwdMustChange", "pwdMaxIdle", "pwdAllowUserChange"]
        conn.search(dn, "(objectClass=*)", BASE, attributes=names, dereference_aliases="NEVER")
        entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
        if conn.result.get("result") not in (0, None) or not entries:
            return None
        values = entries[0]["attributes"]
        if first(values, "pwdAttribute") is None:
            return None
        must_change = {"TRUE": True, "FALSE": False}.get(str(first(values, "pwdMustChange") or "FALSE").upper())
        policy = PwdPolicy(
            lockout=str(first(values, "pwdLockout") or "FALSE").upper() == "TRUE",
            lockout_duration=integer(values, "pwdLockoutDuration"),
            max_age=integer(values, "pwdMaxAge"),
            grace_limit=integer(values, "pwdGraceAuthNLimit"),
            grace_expiry=integer(values, "pwdGraceExpiry"),
            must_change=must_change,
            max_idle=integer(values, "pwdMaxIdle"),
            # absent = TRUE (slapd); anything but FALSE is not read as "may not"
            allow_user_change=str(first(values, "pwdAllowUserChange") or "TRUE").upper() != "FALSE",
        )
        self._policy_cache[dn.lower()] = (time.monotonic() + 60, policy)
        return policy

    def _identity(self, conn: Connection, dn: str) -> tuple[str, frozenset[bytes]]:
        """The server's spelling of *dn* and its unique ids (entryUUID / objectSid, objectGUID)."""
        names = list(self._identity_names())
        conn.search(dn, "(objectClass=*)", BASE, attributes=names, dereference_aliases="NEVER")
        entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
        if not entries:
            return dn, frozenset()
        raw = entries[0].get("raw_attributes") or {}
        ids = frozenset(bytes(v) for key in raw for v in raw[key] if v)
        return str(entries[0].get("dn") or dn), ids

    def _ids_of(self, conn: Connection, dn: str, attrs: Mapping[str, Any] | None) -> frozenset[bytes]:
        """The unique ids of the account at *dn*: from its read (``RAW_KEY``), else read now."""
        raw = (attrs or {}).get(RAW_KEY)
        if isinstance(raw, Mapping):
            wanted = {n.lower() for n in self._identity_names()}
            return frozenset(bytes(v) for key, vs in raw.items() if key.lower() in wanted for v in vs if v)
        return self._identity(conn, dn)[1]

    def _is_protected(self, conn: Connection, dn: str, attrs: Mapping[str, Any] | None = None) -> bool:
        """True for the target's own bind account (by DN and by id) and ``protected_accounts``.

        *attrs*: the account's read (``_read_attrs`` / ``_resolve``), whose raw identity
        values are compared; without it they are read here.
        """
        cfg = self.config
        if any(same_dn(dn, p) for p in (cfg.bind_dn, *cfg.protected_accounts)):
            return True
        if self._bind_identity is None:
            self._bind_identity = self._identity(conn, cfg.bind_dn)
        bind_dn, bind_ids = self._bind_identity
        if same_dn(dn, bind_dn):
            return True
        return bool(self._ids_of(conn, dn, attrs) & bind_ids)

    def _admin_group_shapes(self, conn: Connection) -> None:
        """OpenLDAP: refuse (``config``) an admin group of a class whose members Firstline does
        not read — an ``organizationalRole`` (``roleOccupant``), a dynamic ``groupOfURLs`` —:
        its members passed as ordinary accounts (a tester's find). Read at most once a minute
        (one base read per group); a missing group is left to the membership check."""
        if self.config.flavor != "openldap" or time.monotonic() < self._shapes_checked_until:
            return
        for group in self.config.admin_groups:
            conn.search(group, "(objectClass=*)", BASE, attributes=["objectClass"], dereference_aliases="NEVER")
            entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
            if not entries:
                continue
            classes = {str(c).lower() for c in entries[0]["attributes"].get("objectClass") or []}
            if not classes & ADMIN_GROUP_CLASSES:
                raise Rejected(
                    f"The admin group '{group}' named in admin_groups of target '{self.target_name}' is not a "
                    "group whose members Firstline reads (groupOfNames, groupOfUniqueNames or posixGroup), so "
                    "whether an account is an administrator cannot be told; nothing is changed until the "
                    "inventory is fixed.",
                    reason="config",
                )
        self._shapes_checked_until = time.monotonic() + 60

    def _status(self, conn: Connection, dn: str, attrs: dict[str, Any]) -> dict[str, Any]:
        state = self._state(attrs)
        self._admin_group_shapes(conn)
        try:
            privileged = self._is_protected(conn, dn, attrs) or self._flavor.is_privileged(
                conn, dn, attrs, self.config.admin_groups
            )
        except GroupMissing as exc:
            raise Rejected(
                f"The admin group '{exc.args[0]}' named in admin_groups of target '{self.target_name}' "
                "does not exist in the directory; nothing is changed until the inventory is fixed.",
                reason="config",
            ) from exc
        except ProtectionUnknown as exc:
            raise Rejected(
                "The directory would not tell whether this account is protected (an administrator "
                "or the service account), so nothing is changed.",
                reason="protection_unknown",
            ) from exc
        return {
            "exists": True,
            "account": self._own_name(dn, attrs),
            "dn": dn,
            **state,
            "mail": str(first(attrs, "mail") or ""),
            "mails": all_mail(attrs),
            "given_name": str(first(attrs, "givenName") or ""),
            "surname": str(first(attrs, "sn") or ""),
            "privileged": privileged,
            "password_set": self._password_set(attrs),
            "reset_blocked": self._reset_blocked(attrs),
        }

    def _reset_blocked(self, attrs: dict[str, Any]) -> str:
        """Why a reset to a temporary password that must be changed would be refused
        (``_require_must_change_enforced``: ``must_change_not_enforced`` / ``_unknown`` /
        ``_impossible``, or an unreadable value's reason), '' when it would not: so the agent
        desk withholds a reset that could only escalate (runner.agent)."""
        try:
            self._require_must_change_enforced({"_attrs": attrs})
        except ConnectorError as exc:
            return exc.reason or "refused"
        return ""

    def _own_name(self, dn: str, attrs: Mapping[str, Any]) -> str:
        """The account's own name (``account``), one spelling per entry whatever name found it.

        ``user_attribute`` may hold several values on OpenLDAP (``uid: alice`` and the
        ``uid: alice.old`` kept after a rename): any of them finds the entry, so each caller
        would have recorded the person under the name typed — two identities, an agent's own
        account reachable through its second name, sessions of one name left when the other's
        password was reset. The name is the value that names the entry in its DN
        (``uid=alice,ou=people,...``) when the DN is so named, else the one value, else the
        first of the values in code-point order of their lower case (a fixed choice). '' when
        the entry has none. Only values that are account names count (``validate_account_name``).
        """
        names = [str(v) for v in values_of(attrs, self.config.user_attribute) if _is_account_name(v)]
        if len(names) <= 1:
            return names[0] if names else ""
        want = self.config.user_attribute.lower()
        try:
            rdn = [(a, v) for a, v, _sep in parse_dn(dn)[:1]]
        except (LDAPException, ValueError):
            rdn = []
        for attribute, value in rdn:
            if attribute.lower() == want:
                for name in names:
                    if name.lower() == value.lower():
                        return name
        return min(names, key=lambda n: (n.lower(), n))

    def _password_set(self, attrs: Mapping[str, Any]) -> str:
        """The raw value of ``pwdChangedTime`` (OpenLDAP) or ``pwdLastSet`` (AD), '' when absent.

        Not interpreted: it only has to change whenever the password changes, by any path
        (runner.selfservice snapshots it when a one-time code is issued and compares it at
        redemption: security.md item 12).
        """
        name = "pwdChangedTime" if self.config.flavor == "openldap" else "pwdLastSet"
        value = first(attrs, name)
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode("ascii", "replace")
        return "" if value is None else str(value)

    def _target(self, user: str, timeout: float) -> dict[str, Any]:
        """Resolve *user* for a change: refuse privileged, disabled and expired accounts."""
        dn, attrs = self._resolve(user, timeout)
        with self._translate("reading the account"):
            status = self._status(self._service(timeout), dn, attrs)
        if status["privileged"]:
            raise _refused("not_allowed")
        if status["disabled"]:
            raise _refused("disabled")
        if status["expired"]:
            raise _refused("expired")
        status["_attrs"] = attrs
        return status

    def _personal(self, user: str, status: dict[str, Any]) -> list[str]:
        return [user, status.get("given_name", ""), status.get("surname", ""), status.get("mail", "")]

    def _check_policy(
        self, user: str, status: dict[str, Any], password: str, mfa: bool, current: str | None = None
    ) -> None:
        try:
            self.config.password_policy.check(
                password, mfa_verified=mfa, personal=self._personal(user, status), current=current
            )
        except PolicyViolation as exc:
            raise Rejected(str(exc), reason=exc.reason, requester_action=True, fixed_text=True) from None

    def _directory_refusal(self, result: dict[str, Any] | None, dn: str | None = None) -> Rejected:
        """The directory's refusal as a reason code and a text with the *directory's* figures.

        When the directory refused for length, the message quotes the directory's own
        minimum / maximum (read from the effective policy of *dn*, or stated by the server),
        never this connector's ``password_policy`` — the password already passed that.
        """
        if (result or {}).get("result") == 12:  # unavailableCriticalExtension
            return Rejected(
                "The directory does not support the password-policy hints control, so it would not "
                "apply its history rules to this reset; nothing was changed.",
                reason="policy_hints_unsupported",
                fixed_text=True,
            )
        reason = refusal(result, self.config.flavor)
        if reason == "insufficient_access":
            return Rejected(
                "The service account is not allowed to do this on that account.", reason=reason, fixed_text=True
            )
        if reason in ("rejected", "unwilling"):
            return Rejected("The directory refused the change.", reason=reason, fixed_text=True)
        text = "" if reason in ("too_short", "too_long") else message(reason, "en")
        if reason in ("too_short", "too_long", "quality", "complexity"):
            minimum, maximum = self._directory_lengths(dn, result)
            if reason == "too_short":
                text = (
                    message("directory_too_short", "en", min=minimum)
                    if minimum
                    else message("directory_too_short_unknown", "en")
                )
            elif reason == "too_long":
                text = (
                    message("directory_too_long", "en", max=maximum)
                    if maximum
                    else message("directory_too_long_unknown", "en")
                )
            elif reason == "quality" and minimum:
                text = f"{text} {message('directory_minimum', 'en', min=minimum)}"
        return Rejected(text, reason=reason, requester_action=reason in REQUESTER_REASONS, fixed_text=True)

    def _directory_lengths(self, dn: str | None, result: dict[str, Any] | None) -> tuple[int | None, int | None]:
        """(minimum, maximum) password length of the directory's policy for *dn*; None if unknown.

        OpenLDAP: ``pwdMinLength`` / ``pwdMaxLength`` of the entry's ``pwdPolicySubentry``, else
        of ``ppolicy_default_dn``. AD: the figure Samba states in its message; else
        ``msDS-MinimumPasswordLength`` of the account's resultant PSO (None if a PSO applies
        but cannot be read), else ``minPwdLength`` of the domain. Never raises.
        """
        stated = stated_figure(result)
        text = str((result or {}).get("message") or "").lower()
        if stated is not None:
            return (stated, None) if "longer than" in text else (None, stated)
        if dn is None or self._conn is None:
            return None, None
        conn = self._conn

        def read(entry_dn: str, *names: str) -> dict[str, Any]:
            conn.search(entry_dn, "(objectClass=*)", BASE, attributes=list(names), dereference_aliases="NEVER")
            found = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
            return dict(found[0]["attributes"]) if found else {}

        def number(attrs: Mapping[str, Any], name: str) -> int | None:
            value = first(attrs, name)
            try:
                n = int(str(value)) if value not in (None, "", []) else None
            except ValueError:
                return None
            return n if n and n > 0 else None

        try:
            if self.config.flavor == "openldap":
                policy = str(first(read(dn, "pwdPolicySubentry"), "pwdPolicySubentry") or "")
                policy = policy or (self.config.ppolicy_default_dn or "")
                if not policy:
                    return None, None
                values = read(policy, "pwdMinLength", "pwdMaxLength")
                return number(values, "pwdMinLength"), number(values, "pwdMaxLength")
            pso = str(first(read(dn, "msDS-ResultantPSO"), "msDS-ResultantPSO") or "")
            if pso:
                return number(read(pso, "msDS-MinimumPasswordLength"), "msDS-MinimumPasswordLength"), None
            root = [r for r in dn.split(",") if r.strip().lower().startswith("dc=")]
            return number(read(",".join(root), "minPwdLength"), "minPwdLength"), None
        except (LDAPException, OSError):
            return None, None

    # ---------------------------------------------------------------- actions

    def account_status(self, *, timeout: float, user: str) -> dict[str, Any]:
        user = self._account_name(user)
        with self._session(timeout):
            try:
                dn, attrs = self._resolve(user, timeout)
            except NotFound:
                return dict(_MISSING)
            with self._translate("reading the account"):
                return self._status(self._service(timeout), dn, attrs)

    def unlock_account(self, *, timeout: float, user: str) -> dict[str, Any]:
        user = self._account_name(user)
        with self._session(timeout):
            status = self._target(user, timeout)
            if not status["locked"]:
                return {"unlocked": False, "was_locked": False, "changed": False}
            if status.get("lock_reason") == "temporary":
                raise self._temporarily_locked(status)
            if status.get("lock_reason") == "idle":
                raise self._idle_locked(status)
            conn = self._service(timeout)
            with self._translate("the unlock", write=True):
                failure = self._flavor.unlock(conn, status["dn"], status["_attrs"])
            if failure is not None:
                raise self._directory_refusal(failure)
            # The write was accepted: from here on a failure is never "nothing was applied"
            with self._translate("re-reading the account after the unlock", write=True):
                try:
                    after = self._state(self._read_attrs(conn, status["dn"], protection=False))
                except ConnectorError as exc:
                    exc.outcome_unknown = True
                    raise
            if after["locked"]:
                raise Rejected(
                    "The directory still reports the account as locked.", reason="unlock_failed", outcome_unknown=True
                )
            return {"unlocked": True, "was_locked": True, "changed": True}

    def _temporarily_locked(self, status: Mapping[str, Any]) -> Rejected:
        """The refusal for slapd's temporary lockout, which no write of Firstline can lift."""
        end = (
            self._flavor.temporary_lock_end(status["_attrs"], datetime.now(UTC))
            if isinstance(self._flavor, OpenLdap)
            else None
        )
        until = f" until {utc_text(end)}" if end is not None else ""
        return Rejected(
            f"The directory has locked this account for a while after failed sign-ins{until}; "
            "Firstline cannot lift that lock (it ends by itself), so nothing was changed.",
            reason="locked_temporarily",
        )

    def _idle_locked(self, status: Mapping[str, Any]) -> Rejected:
        """The refusal of an unlock for slapd's idle lockout (``pwdMaxIdle``): no write of an
        unlock lifts it (``pwdLastSuccess`` cannot be changed), a password reset does."""
        since = (
            self._flavor.idle_lock_since(status["_attrs"], datetime.now(UTC))
            if isinstance(self._flavor, OpenLdap)
            else None
        )
        when = f" since {utc_text(since)}" if since is not None else ""
        return Rejected(
            f"The directory has locked this account{when} because it was not used for longer than its "
            "password policy allows (pwdMaxIdle). Unlocking cannot lift that lock, so nothing was changed; "
            "a password reset does (the account can sign in with the new password).",
            reason="locked_idle",
        )

    def reset_password(
        self,
        *,
        timeout: float,
        user: str,
        new_password: str | None = None,
        must_change: bool = True,
        mfa_verified: bool = False,
    ) -> dict[str, Any]:
        user = self._account_name(user)
        with self._session(timeout):
            status = self._target(user, timeout)
            if status.get("lock_reason") == "temporary":  # the new password could not be used either
                raise self._temporarily_locked(status)
            if isinstance(self._flavor, ActiveDirectory):
                try:
                    smartcard = self._flavor.smartcard_required(status["_attrs"])
                except UnreadableValue as exc:
                    raise self._unreadable(exc) from exc
                if smartcard:
                    raise Rejected(SMARTCARD_REQUIRED, reason="smartcard_required")
            if must_change:
                self._require_must_change_enforced(status)
            generated = new_password is None
            if generated:
                length = max(self.config.password_policy.min_length, 16) + 4
                for _ in range(10):
                    new_password = generate_password(length)
                    try:
                        self._check_policy(user, status, new_password, mfa_verified)
                        break
                    except Rejected:
                        continue
            assert new_password is not None
            if not generated:
                self._check_policy(user, status, new_password, mfa_verified)
            conn = self._service(timeout)
            self._require_tls(conn)
            with self._translate("the password reset", write=True):
                try:
                    failure = self._flavor.reset(conn, status["dn"], new_password, must_change)
                except PartlyApplied:
                    # the password is replaced: never "nothing was changed" (audit outcome unknown)
                    raise Rejected(
                        "The password was replaced, but the directory refused to record whether it must be "
                        "changed at the next sign-in, so the new password was not handed out; the service "
                        "desk will look at it.",
                        reason="reset_incomplete",
                        outcome_unknown=True,
                    ) from None
            if failure is not None:
                refused = self._directory_refusal(failure, status["dn"])
                if refused.reason == "too_young":
                    # pwdMinAge applies to a reset by the service account too (slapd): neither the
                    # person nor the agent can fix that by trying again
                    raise Rejected(RESET_TOO_YOUNG, reason="too_young", fixed_text=True)
                if generated:
                    refused.requester_action = False  # Firstline chose that password, not the requester
                raise refused
            out: dict[str, Any] = {"must_change": must_change}
            if generated:
                out["temporary_password"] = new_password
            return out

    def _require_must_change_enforced(self, status: Mapping[str, Any]) -> None:
        """Refuse a must-change reset the directory would not enforce, or of which it cannot be
        known whether it would, before anything is written.

        OpenLDAP ignores ``pwdReset`` under a policy without ``pwdMustChange: TRUE``; AD ignores
        ``pwdLastSet = 0`` for an account whose password never expires. Such a reset used to
        report "must be changed at the next sign-in" while the (possibly generated, handed-out)
        password stayed valid for good (``must_change_not_enforced``).

        When the OpenLDAP policy that applies cannot be read (``must_change_enforced`` None: no
        ``pwdPolicySubentry`` and no ``ppolicy_default_dn``, an entry that is missing or hidden
        from the service account, a failed read, a ``pwdMustChange`` that is neither TRUE nor
        FALSE) the reset is refused too, with its own reason ``must_change_unknown``. Counting
        that as enforced, as before, answered "must be changed at the next sign-in" without
        knowing it — and slapd itself applies no ``pwdMustChange`` when ``pwdPolicySubentry``
        names a missing entry, so the answer was wrong exactly there. The other ways out are
        worse: resetting and reporting "unknown" hands out a temporary password that may be
        valid for good, and silently resetting without must-change is not what was asked. So,
        as for a policy known not to enforce it, nothing is written and the run escalates: the
        service desk can fix what keeps the policy from being read, or reset without
        must-change deliberately. AD needs no such case: ``userAccountControl`` is always read
        (``UnreadableValue``, ``unreadable_value``, when it cannot be).
        """
        try:
            enforced = self._flavor.must_change_enforced(status["_attrs"])
        except UnreadableValue as exc:
            raise self._unreadable(exc) from exc
        if enforced is None:
            raise Rejected(MUST_CHANGE_UNKNOWN, reason="must_change_unknown")
        if not enforced:
            raise Rejected(MUST_CHANGE_NOT_ENFORCED[self.config.flavor], reason="must_change_not_enforced")
        if self._flavor.user_may_change(status["_attrs"]) is False:
            # slapd restricts the reset account to a password change it then refuses: the
            # temporary password would open nothing, and a second reset only repeats it
            raise Rejected(MUST_CHANGE_IMPOSSIBLE, reason="must_change_impossible")

    def change_password(
        self,
        *,
        timeout: float,
        user: str,
        old_password: str,
        new_password: str,
        mfa_verified: bool = False,
    ) -> dict[str, Any]:
        user = self._account_name(user)
        with self._session(timeout):
            status = self._target(user, timeout)
            if status["locked"]:
                raise _refused("locked")
            self._refuse_expired_password(status)
            wire_password(old_password)  # refuse what cannot be sent as typed before any bind
            self._check_policy(user, status, new_password, mfa_verified, current=old_password)
            dn = status["dn"]
            if isinstance(self._flavor, OpenLdap):
                self._change_as_user(dn, old_password, new_password, timeout)
            else:
                conn = self._service(timeout)
                self._require_tls(conn)
                with self._translate("the password change", write=True):
                    failure = self._flavor.change(conn, dn, old_password, new_password)
                if failure is not None:
                    raise self._directory_refusal(failure, dn)
            return {"changed": True}

    def _change_as_user(self, dn: str, old: str, new: str, timeout: float) -> None:
        """OpenLDAP self-change: bind as the user (ppolicy control tells 'locked' apart)."""
        user_conn = self._open(dn, None, timeout)
        try:
            with self._translate("the password change", write=True):
                user_conn.password = wire_password(old)  # bytes: no SASLprep, exactly as typed
                ok = user_conn.bind(controls=[ppolicy_request()])
                user_conn.password = None
                if not ok:
                    pp = response_ppolicy(user_conn.result)
                    if pp.error in ("locked", "password_expired"):
                        raise _refused(pp.error)  # passwordExpired: the old password was right, but expired
                    reason = ad_bind_reason(str(user_conn.result.get("message", ""))) or "wrong_password"
                    if reason == "wrong_password":
                        # ppolicy hides the lock when olcPPolicyUseLockout is FALSE: look it up
                        with self._session(timeout):
                            attrs = self._read_attrs(self._service(timeout), dn, protection=False)
                            state = self._state(attrs)
                        if state["locked"]:
                            raise _refused("locked")
                    raise _refused(reason)
                self._require_tls(user_conn)
                failure = self._flavor.change(user_conn, dn, old, new)
            if failure is not None:
                raise self._directory_refusal(failure, dn)
        finally:
            self._safe_unbind(user_conn)

    def check_password(
        self, *, timeout: float, user: str, new_password: str, mfa_verified: bool = False
    ) -> dict[str, Any]:
        user = self._account_name(user)
        with self._session(timeout):
            _dn, attrs = self._resolve(user, timeout)
            status = {
                "given_name": str(first(attrs, "givenName") or ""),
                "surname": str(first(attrs, "sn") or ""),
                "mail": str(first(attrs, "mail") or ""),
            }
        self._check_policy(user, status, new_password, mfa_verified)
        return {"ok": True}

    # ---------------------------------------------------------------- sign-in (portal)

    def authenticate(self, *, timeout: float, user: str, password: str) -> dict[str, Any]:
        """Prove *password* by a simple bind as *user* (over TLS); writes nothing itself.

        A failed bind counts towards the directory's own lockout, as any sign-in does.
        Returns ``dn``, ``display_name``, ``mail``, ``must_change``, ``groups`` (the DNs
        of every group holding the account, nested groups included: ``member`` /
        ``uniqueMember`` followed upwards on OpenLDAP, ``tokenGroups`` on AD) and
        ``groups_complete`` (False when the walk could not finish: nesting deeper than
        ``MAX_NESTING`` levels or a failed group search; ``groups`` then lists only what was found).
        Every failure that concerns the account — malformed or unknown name, outside
        ``base_dn``, wrong password, locked, disabled, expired — raises the same
        ``Rejected(reason="invalid_credentials")`` so a caller cannot tell them apart;
        ``Unreachable`` / ``Timeout`` when the directory does not answer.
        """
        bad = Rejected("The user name or password is not correct.", reason="invalid_credentials")
        try:
            user = self._account_name(user)
            secret = wire_password(password)
        except InvalidInput:
            raise bad from None
        with self._session(timeout):
            try:
                dn, attrs = self._resolve(user, timeout)
            except (NotFound, Rejected) as exc:
                if isinstance(exc, Rejected) and not isinstance(exc, NotFound) and exc.reason == "config":
                    raise
                raise bad from None
        user_conn = self._open(dn, None, timeout)
        try:
            with self._translate("the sign-in"):
                user_conn.password = secret
                ok = user_conn.bind(controls=[ppolicy_request()] if self.config.flavor == "openldap" else None)
                user_conn.password = None
        finally:
            user_conn.password = None
            self._safe_unbind(user_conn)
        if not ok:
            raise bad
        with self._session(timeout), self._translate("reading the account's groups"):
            try:
                state = self._state(attrs)
            except Rejected:
                raise bad from None
            if state.get("locked") or state.get("disabled") or state.get("expired"):
                raise bad
            conn = self._service(timeout)
            display = self._display_name(conn, dn, attrs)
            groups, complete = self._groups_of(conn, dn, attrs)
        return {
            "account": self._own_name(dn, attrs),
            "dn": dn,
            "display_name": display,
            "mail": str(first(attrs, "mail") or ""),
            "groups": groups,
            "groups_complete": complete,
            # an unknown policy: the portal still has a reset password changed first (its own
            # caution; it tells nobody that the directory requires it)
            "must_change": bool(state.get("must_change") or state.get("must_change_unknown")),
        }

    def account_groups(self, *, timeout: float, user: str) -> dict[str, Any]:
        """The groups holding *user* as sign-in reads them (``_groups_of``: nested groups
        included), read with the service account: ``exists``, ``groups`` (DNs) and
        ``groups_complete`` (False when the walk could not finish; a missing group then
        proves nothing). For the agent desk, which must not hand a temporary password for an
        account that holds a role in the portal (``runner.agent``). ``exists`` False and no
        groups when there is no such account; ``Unreachable`` / ``Timeout`` as every read."""
        user = self._account_name(user)
        with self._session(timeout):
            try:
                dn, attrs = self._resolve(user, timeout)
            except NotFound:
                return {"exists": False, "groups": [], "groups_complete": True}
            with self._translate("reading the account's groups"):
                groups, complete = self._groups_of(self._service(timeout), dn, attrs)
        return {"exists": True, "groups": groups, "groups_complete": complete}

    def _display_name(self, conn: Connection, dn: str, attrs: Mapping[str, Any]) -> str:
        conn.search(dn, "(objectClass=*)", BASE, attributes=["displayName", "cn"], dereference_aliases="NEVER")
        entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
        found = entries[0]["attributes"] if entries else {}
        for name in ("displayName", "cn"):
            value = first(found, name)
            if value:
                return str(value)
        joined = f"{first(attrs, 'givenName') or ''} {first(attrs, 'sn') or ''}".strip()
        return joined or str(first(attrs, self.config.user_attribute) or "")

    def _groups_of(self, conn: Connection, dn: str, attrs: Mapping[str, Any] | None = None) -> tuple[list[str], bool]:
        """DNs of the groups holding *dn*, directly or through nested groups, and whether that
        list is complete.

        OpenLDAP with the account's *attrs*: also the RFC 2307 ``posixGroup`` entries naming
        any of its ``uid`` values in ``memberUid`` (matched without case, as the admin-group
        check does) or holding its ``gidNumber`` (its primary group), which can be role
        groups too; they were silently never matched, so a posixGroup named as an agent group
        gave no role (a tester's find). Their own memberships are followed as any group's.

        OpenLDAP: ``member`` / ``uniqueMember`` followed upwards ``MAX_NESTING`` (8) levels; one
        more search asks whether the groups reached last are themselves held by a group. When
        they are (the nesting goes deeper), or a group search fails, the list is incomplete:
        ``(groups found, False)`` — a caller must not read a group missing from it as "not a
        member" (runner.auth then grants only what the list proves: ``roles_unknown``). AD:
        ``tokenGroups`` is transitive; more than 500 of them, or a failed search, is incomplete.
        """
        base = ",".join(f"{a}={v}" for a, v, _sep in parse_dn(self.config.base_dn, escape=True) if a.lower() == "dc")
        base = base or self.config.base_dn
        if self.config.flavor == "active_directory":
            # tokenGroups: every group, transitive, the primary group (Domain Users) included
            conn.search(dn, "(objectClass=*)", BASE, attributes=["tokenGroups"], dereference_aliases="NEVER")
            complete = conn.result.get("result") in (0, None)
            entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            raw = (entries[0].get("raw_attributes") or {}).get("tokenGroups", []) if entries else []
            sids = sorted({sid_to_str(bytes(v)) for v in raw if v})
            complete = complete and len(sids) <= 500
            if sids:
                flt = "(|" + "".join(f"(objectSid={sid})" for sid in sids[:500]) + ")"
            else:  # no tokenGroups readable: membership through member links (LDAP_MATCHING_RULE_IN_CHAIN)
                flt = f"(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={escape_filter_chars(dn)}))"
            conn.search(base, flt, SUBTREE, attributes=["1.1"], dereference_aliases="NEVER")
            complete = complete and conn.result.get("result") in (0, None)
            found_ad = sorted(str(e["dn"]) for e in conn.response or [] if e.get("type") == "searchResEntry")
            return found_ad, complete
        found: dict[str, str] = {}
        frontier, seen = [dn], {dn.lower()}
        if attrs is not None:
            uids = [str(v) for v in values_of(attrs, "uid") if v not in (None, "")]
            gids = [str(v) for v in values_of(attrs, "gidNumber") if str(v).isascii() and str(v).isdigit()]
            terms = "".join(f"(memberUid:caseIgnoreIA5Match:={escape_filter_chars(u)})" for u in uids)
            terms += "".join(f"(gidNumber={g})" for g in gids)
            if terms:
                conn.search(
                    base,
                    f"(&(objectClass=posixGroup)(|{terms}))",
                    SUBTREE,
                    attributes=["1.1"],
                    dereference_aliases="NEVER",
                )
                if conn.result.get("result") not in (0, None):
                    return [], False
                for entry in conn.response or []:
                    if entry.get("type") == "searchResEntry" and str(entry["dn"]).lower() not in seen:
                        seen.add(str(entry["dn"]).lower())
                        found[str(entry["dn"]).lower()] = str(entry["dn"])
                        frontier.append(str(entry["dn"]))
        for level in range(MAX_NESTING + 1):
            if not frontier:
                break
            members = "".join(
                f"(member={escape_filter_chars(d)}){unique_member(escape_filter_chars(d))}" for d in frontier
            )
            flt = f"(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))(|{members}))"
            conn.search(base, flt, SUBTREE, attributes=["1.1"], dereference_aliases="NEVER")
            if conn.result.get("result") not in (0, None):
                return sorted(found.values()), False
            nxt = []
            for entry in conn.response or []:
                if entry.get("type") != "searchResEntry":
                    continue
                group = str(entry["dn"])
                if group.lower() not in seen:
                    if level == MAX_NESTING:  # held by a group one level deeper than Firstline looks
                        return sorted(found.values()), False
                    seen.add(group.lower())
                    found[group.lower()] = group
                    nxt.append(group)
            frontier = nxt
        return sorted(found.values()), True


__all__ += ["generate_password"]
