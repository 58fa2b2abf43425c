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
      ca_file: /etc/firstline/ldap-ca.pem    # or {file: relative/to/inventory.pem}
      bind_dn: cn=firstline,ou=services,dc=example,dc=org
      password: {file: secrets/firstline}
      base_dn: ou=people,dc=example,dc=org   # accounts outside it are never touched
      user_attribute: uid                    # sAMAccountName for AD
      admin_groups: [cn=it-admins,ou=groups,dc=example,dc=org]
      password_policy: {min_length: 15, min_length_with_mfa: 8, max_length: 128}

Safety rules enforced here: account names are validated and escaped, exactly one entry
under ``base_dn`` must match, privileged accounts are refused (``not_allowed``), and no
password is sent unless the connection is TLS-protected with a validated certificate.
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
from connectors.ldap_controls import ad_bind_reason, ppolicy_request, refusal, response_ppolicy
from connectors.ldap_flavors import ActiveDirectory, GroupMissing, OpenLdap, first, gentime
from connectors.password_policy import REQUESTER_REASONS, PasswordPolicy, PolicyViolation, message

__all__ = ["LdapConnector", "LdapTarget", "validate_account_name"]

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
FORBIDDEN_IN_NAME = re.compile(r"[*()\\\x00-\x1f\x7f]")


class LdapTarget(TargetConfig):
    """Inventory settings of one directory target."""

    flavor: Literal["openldap", "active_directory"]
    url: str = Field(pattern=r"^ldaps?://[^/\s]+/?$")
    start_tls: bool = False
    ca_file: str | dict[str, str] | None = None
    bind_dn: str = Field(min_length=3)
    password: dict[str, str]
    base_dn: str = Field(min_length=3)
    user_attribute: str = Field(default="uid", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
    user_object_class: str = Field(default="person", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
    admin_groups: list[str] = Field(default_factory=list)
    password_policy: PasswordPolicy = Field(default_factory=PasswordPolicy)
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    ppolicy_default_dn: str | None = None  # OpenLDAP: olcPPolicyDefault, for lockout duration
    policy_hints: Literal["critical", "optional"] = "critical"  # AD: see docs/directory.md

    @field_validator("base_dn", "bind_dn")
    @classmethod
    def _dn(cls, value: str) -> str:
        try:
            parse_dn(value)
        except LDAPException as exc:
            raise ValueError("not a valid DN") from exc
        return value

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
            message("invalid_characters", "en"), reason="invalid_characters", requester_action=True
        ) from None
    if not data:
        raise InvalidInput("Give the password.", reason="password_missing", requester_action=True)
    return data


def _norm_dn(dn: str) -> list[tuple[str, str]]:
    return [(a.lower(), v.lower()) for a, v, _ in parse_dn(dn, escape=False)]


def _under(dn: str, base: str) -> bool:
    try:
        d, b = _norm_dn(dn), _norm_dn(base)
    except LDAPException:
        return False
    return len(d) > len(b) and d[-len(b) :] == b


def _refused(reason: str, **values: object) -> Rejected:
    return Rejected(message(reason, "en", **values), reason=reason, requester_action=reason in REQUESTER_REASONS)


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
        "dn",
        "locked",
        "lock_reason",
        "disabled",
        "expired",
        "must_change",
        "mail",
        "given_name",
        "surname",
        "privileged",
    }
)
_MISSING = {
    "exists": False,
    "dn": "",
    "locked": False,
    "lock_reason": "",
    "disabled": False,
    "expired": False,
    "must_change": False,
    "mail": "",
    "given_name": "",
    "surname": "",
    "privileged": False,
}
_USER = InputSpec("user", max_length=256)


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
            outputs=frozenset({"unlocked", "was_locked"}),
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
        self._policy_cache: dict[str, tuple[float, int | None]] = {}
        self._flavor: OpenLdap | ActiveDirectory = (
            OpenLdap(self._lockout_duration)
            if config.flavor == "openldap"
            else ActiveDirectory(hints_critical=config.policy_hints == "critical")
        )

    # ---------------------------------------------------------------- connections

    def _tls(self) -> Tls:
        ca = self.config.ca_file
        if isinstance(ca, dict):  # {file: ...} relative to the inventory, resolved like a secret
            return Tls(validate=ssl.CERT_REQUIRED, ca_certs_data=self._secrets(ca))
        return Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca)

    def _server(self) -> Server:
        return Server(
            self._host,
            port=self._port,
            use_ssl=self._use_ssl,
            tls=self._tls(),
            get_info=NONE,
            connect_timeout=self.config.connect_timeout,
        )

    def _open(self, user: str | None, password: str | None, timeout: float) -> Connection:
        """A fresh connection, TLS established and checked, not yet bound."""
        conn = Connection(
            self._server(),
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
        except LDAPStartTLSError as exc:
            raise Unreachable(f"TLS with the directory at {where} failed (certificate not trusted?).") from exc
        except LDAPSocketOpenError as exc:
            if "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
                raise Unreachable(
                    f"TLS with the directory at {where} failed: its certificate was not accepted."
                ) from exc
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
        conn = self._open(self.config.bind_dn, None, timeout)
        try:
            try:
                conn.password = wire_password(self._secrets(self.config.password))
            except InvalidInput:
                raise ConnectorError(
                    f"The service password of target '{self.target_name}' is empty or not valid text; "
                    "check the secret named by its 'password' setting.",
                    reason="config",
                ) from None
            ok = conn.bind()
        except LDAPException as exc:
            raise Unreachable(f"The directory at {self._host}:{self._port} dropped the connection.") from exc
        finally:
            conn.password = None  # do not keep the credential on the object
        if not ok:
            code = conn.result.get("result")
            self._safe_unbind(conn)
            if code == 49:
                raise AuthFailed(
                    f"The directory refused the service account of target '{self.target_name}'; "
                    "check bind_dn and its password."
                )
            raise Unreachable("The directory refused the service connection.")
        self._conn = conn
        return conn

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
    def _translate(self, what: str) -> Iterator[None]:
        """Turn ldap3/socket failures during an operation into connector errors."""
        try:
            yield
        except ConnectorError:
            raise
        except LDAPResponseTimeoutError as exc:
            self._drop()
            raise Timeout(f"The directory did not answer in time ({what}).") from exc
        except (LDAPCommunicationError, OSError) as exc:
            self._drop()
            if "timed out" in str(exc).lower():
                raise Timeout(f"The directory did not answer in time ({what}).") from exc
            raise Unreachable(
                f"The connection to the directory was lost during {what}; it may or may not have been applied."
            ) from exc
        except (LDAPSASLPrepError, LDAPPasswordIsMandatoryError, LDAPInvalidValueError):
            # ldap3 refused a value before sending it: the directory was never asked. Not
            # chained: these exceptions may quote the value, which can be a password.
            raise InvalidInput(
                f"A value could not be sent to the directory as given ({what}); nothing was changed.",
                reason="invalid_characters",
                requester_action=True,
            ) from None
        except LDAPException as exc:
            self._drop()
            raise Unreachable(f"The directory failed during {what}.") from exc

    @contextmanager
    def _session(self, timeout: float) -> Iterator[None]:
        """Hold the pooled connection for one action (ldap3 SYNC is not thread-safe)."""
        with self._lock:
            yield

    # ---------------------------------------------------------------- reads

    def _read_attrs(self, conn: Connection, dn: str) -> dict[str, Any]:
        attrs = [
            self.config.user_attribute,
            "mail",
            "givenName",
            "sn",
            *self._flavor.attributes,
        ]
        conn.search(dn, "(objectClass=*)", BASE, attributes=attrs, dereference_aliases="NEVER")
        entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
        if conn.result.get("result") == 32 or not entries:
            raise NotFound("The account does not exist.")
        if conn.result.get("result") not in (0, None):
            raise Unreachable("The directory could not read the account.")
        return dict(entries[0]["attributes"])

    def _find(self, conn: Connection, user: str) -> str | None:
        cfg = self.config
        flt = f"(&(objectClass={cfg.user_object_class})({cfg.user_attribute}={escape_filter_chars(user)}))"
        conn.search(
            cfg.base_dn,
            flt,
            SUBTREE,
            attributes=[cfg.user_attribute],
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
        values = entries[0]["attributes"].get(cfg.user_attribute) or []
        values = values if isinstance(values, list) else [values]
        if not _under(dn, cfg.base_dn) or user.lower() not in {str(v).lower() for v in values}:
            return None
        return dn

    def _resolve(self, user: str, timeout: float, *, retry: bool = True) -> tuple[str, dict[str, Any]]:
        """DN + attributes of *user*; one transparent reconnect if the pooled link was dead.

        Only this first read of an action is retried: a drop during a later write is
        reported as Unreachable, because the write may or may not have been applied.
        """
        try:
            with self._translate("the account lookup"):
                dn = self._find(self._service(timeout), user)
        except (Unreachable, Timeout):
            if not retry:
                raise
            return self._resolve(user, timeout, retry=False)
        if dn is None:
            raise NotFound("The account does not exist.")
        with self._translate("reading the account"):
            return dn, self._read_attrs(self._service(timeout), dn)

    def _lockout_duration(self, policy_dn: str | None) -> int | None:
        dn = policy_dn or self.config.ppolicy_default_dn
        if not dn or self._conn is None:
            return None
        cached = self._policy_cache.get(dn.lower())
        if cached and cached[0] > time.monotonic():
            return cached[1]
        conn = self._conn
        conn.search(dn, "(objectClass=*)", BASE, attributes=["pwdLockoutDuration"])
        entries = [r for r in conn.response or [] if r.get("type") == "searchResEntry"]
        value = first(entries[0]["attributes"], "pwdLockoutDuration") if entries else None
        duration = int(value) if value not in (None, "") else None
        self._policy_cache[dn.lower()] = (time.monotonic() + 60, duration)
        return duration

    def _status(self, conn: Connection, dn: str, attrs: dict[str, Any]) -> dict[str, Any]:
        state = self._flavor.state(attrs, datetime.now(UTC))
        try:
            privileged = self._flavor.is_privileged(conn, dn, attrs, self.config.admin_groups)
        except GroupMissing as exc:
            raise Rejected(
                "An admin group named in the inventory does not exist in the directory; "
                "nothing is changed until that is fixed.",
                reason="config",
            ) from exc
        return {
            "exists": True,
            "dn": dn,
            **state,
            "mail": str(first(attrs, "mail") or ""),
            "given_name": str(first(attrs, "givenName") or ""),
            "surname": str(first(attrs, "sn") or ""),
            "privileged": privileged,
        }

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
            raise Rejected(str(exc), reason=exc.reason, requester_action=True) from None

    def _directory_refusal(self, result: dict[str, Any] | None) -> Rejected:
        if (result or {}).get("result") == 12:  # unavailableCriticalExtension
            return Rejected(
                "The directory does not support the password-policy hints control, so it would not "
                "apply its history rules to this reset; nothing was changed.",
                reason="policy_hints_unsupported",
            )
        reason = refusal(result, self.config.flavor)
        if reason == "insufficient_access":
            return Rejected("The service account is not allowed to do this on that account.", reason=reason)
        if reason in ("rejected", "unwilling"):
            return Rejected("The directory refused the change.", reason=reason)
        pw = self.config.password_policy
        return Rejected(message(reason, "en", min=pw.min_length, max=pw.max_length), reason=reason)

    # ---------------------------------------------------------------- actions

    def account_status(self, *, timeout: float, user: str) -> dict[str, Any]:
        user = validate_account_name(user)
        with self._session(timeout):
            try:
                dn, attrs = self._resolve(user, timeout)
            except NotFound:
                return dict(_MISSING)
            with self._translate("reading the account"):
                return self._status(self._service(timeout), dn, attrs)

    def unlock_account(self, *, timeout: float, user: str) -> dict[str, Any]:
        user = validate_account_name(user)
        with self._session(timeout):
            status = self._target(user, timeout)
            if not status["locked"]:
                return {"unlocked": False, "was_locked": False}
            conn = self._service(timeout)
            with self._translate("the unlock"):
                failure = self._flavor.unlock(conn, status["dn"])
            if failure is not None:
                raise self._directory_refusal(failure)
            with self._translate("re-reading the account"):
                after = self._flavor.state(self._read_attrs(conn, status["dn"]), datetime.now(UTC))
            if after["locked"]:
                raise Rejected("The directory still reports the account as locked.", reason="unlock_failed")
            return {"unlocked": True, "was_locked": True}

    def reset_password(
        self,
        *,
        timeout: float,
        user: str,
        new_password: str | None = None,
        must_change: bool = True,
        mfa_verified: bool = False,
    ) -> dict[str, Any]:
        user = validate_account_name(user)
        with self._session(timeout):
            status = self._target(user, timeout)
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
            with self._translate("the password reset"):
                failure = self._flavor.reset(conn, status["dn"], new_password, must_change)
            if failure is not None:
                raise self._directory_refusal(failure)
            out: dict[str, Any] = {"must_change": must_change}
            if generated:
                out["temporary_password"] = new_password
            return out

    def change_password(
        self,
        *,
        timeout: float,
        user: str,
        old_password: str,
        new_password: str,
        mfa_verified: bool = False,
    ) -> dict[str, Any]:
        user = validate_account_name(user)
        with self._session(timeout):
            status = self._target(user, timeout)
            if status["locked"]:
                raise _refused("locked")
            wire_password(old_password)  # refuse what cannot be sent as typed before any bind
            self._check_policy(user, status, new_password, mfa_verified, current=old_password)
            dn = status["dn"]
            if isinstance(self._flavor, OpenLdap):
                self._change_as_user(dn, old_password, new_password, timeout)
            else:
                conn = self._service(timeout)
                self._require_tls(conn)
                with self._translate("the password change"):
                    failure = self._flavor.change(conn, dn, old_password, new_password)
                if failure is not None:
                    raise self._directory_refusal(failure)
            return {"changed": True}

    def _change_as_user(self, dn: str, old: str, new: str, timeout: float) -> None:
        """OpenLDAP self-change: bind as the user (ppolicy control tells 'locked' apart)."""
        user_conn = self._open(dn, None, timeout)
        try:
            with self._translate("the password change"):
                user_conn.password = wire_password(old)  # bytes: no SASLprep, exactly as typed
                ok = user_conn.bind(controls=[ppolicy_request()])
                user_conn.password = None
                if not ok:
                    pp = response_ppolicy(user_conn.result)
                    if pp.error == "locked":
                        raise _refused("locked")
                    reason = ad_bind_reason(str(user_conn.result.get("message", ""))) or "wrong_password"
                    if reason == "wrong_password":
                        # ppolicy hides the lock when olcPPolicyUseLockout is FALSE: look it up
                        with self._session(timeout):
                            attrs = self._read_attrs(self._service(timeout), dn)
                            state = self._flavor.state(attrs, datetime.now(UTC))
                        if state["locked"]:
                            raise _refused("locked")
                    raise _refused(reason)
                self._require_tls(user_conn)
                failure = self._flavor.change(user_conn, dn, old, new)
            if failure is not None:
                raise self._directory_refusal(failure)
        finally:
            self._safe_unbind(user_conn)

    def check_password(
        self, *, timeout: float, user: str, new_password: str, mfa_verified: bool = False
    ) -> dict[str, Any]:
        user = validate_account_name(user)
        with self._session(timeout):
            _dn, attrs = self._resolve(user, timeout)
            status = {
                "given_name": str(first(attrs, "givenName") or ""),
                "surname": str(first(attrs, "sn") or ""),
                "mail": str(first(attrs, "mail") or ""),
            }
        self._check_policy(user, status, new_password, mfa_verified)
        return {"ok": True}


__all__ += ["generate_password", "gentime"]
