"""What differs between OpenLDAP (ppolicy) and Active Directory: attributes, state, writes.

Passwords are handed to ldap3 as ``bytes`` (the exact UTF-8 of what the user typed):
given a ``str``, ldap3 runs SASLprep (RFC 4013) over it, which maps ``²`` to ``2``, NBSP to
a space and raises on some strings. The caller has checked that the text encodes.

Each flavour reads the account state from attributes fetched by a base search (AD's
``msDS-User-Account-Control-Computed`` is a constructed attribute that only a base search
returns) and performs the writes on an open ldap3 ``Connection``. Writes return the ldap3
result dict on refusal (``None`` on success); the connector turns that into a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, Connection

from connectors.ldap_controls import policy_hints, ppolicy_request
from connectors.ldap_protect import GroupMissing as GroupMissing  # re-exported for connectors.ldap
from connectors.ldap_protect import ad_holder_filter, ad_protected, openldap_admin_member
from connectors.ldap_time import (
    FILETIME_MAX,
    DirectoryTimeError,
    filetime_ticks,
    filetime_to_datetime,
    openldap_seconds,
    unix_seconds,
)

Attrs = Mapping[str, Sequence[Any]]
# key under which connectors.ldap keeps raw bytes of the identity / protection attributes it
# read with the account (never an LDAP attribute name: those start with a letter)
RAW_KEY = "_raw"

UF_ACCOUNTDISABLE = 0x2
UF_LOCKOUT = 0x10
UF_DONT_EXPIRE_PASSWD = 0x10000
UF_SMARTCARD_REQUIRED = 0x40000  # MS-ADTS 2.2.16: interactive sign-in needs the smart card
UF_PASSWORD_EXPIRED = 0x800000
AD_NEVER = (0, FILETIME_MAX)  # accountExpires / msDS-UserPasswordExpiryTimeComputed: never


class UnreadableValue(ValueError):
    """An account or policy attribute holds a value the connector cannot read (fail closed).

    ``attribute`` names it; the connector turns this into a ``Rejected`` that escalates.
    """

    def __init__(self, attribute: str, why: str) -> None:
        super().__init__(f"{attribute}: {why}")
        self.attribute = attribute


class PartlyApplied(Exception):
    """A reset replaced the password, then the directory refused its next write (``result``).

    Raised instead of returning the refusal: the caller must not report "nothing was changed".
    """

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("the password was replaced; a later write of the reset was refused")
        self.result = result


def _result(conn: Connection) -> dict[str, Any]:
    result: dict[str, Any] = dict(conn.result or {})
    return result


def first(attrs: Attrs, name: str) -> Any:
    """The first value of attribute *name* (any case; the first such key), None when absent."""
    want = name.lower()  # once, not per key: this runs some 40 times per account read
    for key, values in attrs.items():
        if key == name or key.lower() == want:
            if isinstance(values, list | tuple):
                return values[0] if values else None
            return values
    return None


def values_of(attrs: Attrs, name: str) -> list[Any]:
    """Every value of attribute *name* (any case; the first such key), [] when absent."""
    want = name.lower()
    for key, values in attrs.items():
        if key == name or key.lower() == want:
            return list(values) if isinstance(values, list | tuple) else [values]
    return []


def gentime(attrs: Attrs, name: str) -> datetime | None:
    """The password-policy time *name* as slapd 2.5 reads it (``connectors.ldap_time.
    openldap_seconds``: whole seconds; after 2100-02-28 not the calendar's), aware UTC; None
    when absent; ``UnreadableValue`` if it does not parse or slapd reads it as time 0 (the
    lock time's own meaning of 0 is ``OpenLdap._lock``'s)."""
    raw = first(attrs, name)
    if raw is None:
        return None
    try:
        seconds = openldap_seconds(raw)
    except DirectoryTimeError as exc:
        raise UnreadableValue(name, str(exc)) from exc
    if seconds == 0:  # slapd's "no time" (year 0, the epoch): only a lock time has a meaning for it
        raise UnreadableValue(name, "slapd reads this time as 0")
    return datetime.fromtimestamp(seconds, UTC)


def filetime(attrs: Attrs, name: str) -> int | None:
    """The FILETIME / Large Integer attribute *name* as an int, None when absent; ``UnreadableValue`` if bad."""
    raw = first(attrs, name)
    if raw is None:
        return None
    try:
        return filetime_ticks(raw)
    except DirectoryTimeError as exc:
        raise UnreadableValue(name, str(exc)) from exc


def _when(attrs: Attrs, name: str, ticks: int) -> datetime:
    try:
        return filetime_to_datetime(ticks)
    except DirectoryTimeError as exc:
        raise UnreadableValue(name, str(exc)) from exc


def integer(attrs: Attrs, name: str, *, required: bool = False) -> int | None:
    """An LDAP Integer attribute (RFC 4517 §3.3.16: optional ``-``, ASCII digits); ``UnreadableValue`` if bad."""
    raw = first(attrs, name)
    if raw is None:
        if required:
            raise UnreadableValue(name, "missing (not readable by the service account?)")
        return None
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    if not _INTEGER.fullmatch(text):
        raise UnreadableValue(name, "not an integer")
    return int(text)


_INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)


def utc_text(when: datetime | None) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` or ``""`` — how times leave the connector."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else ""


@dataclass(frozen=True)
class PwdPolicy:
    """What the connector uses of an OpenLDAP ``pwdPolicy`` entry (seconds / counts; None = absent).

    ``max_age`` 0 or None: passwords never expire. ``lockout_duration`` 0: locked until an
    administrator unlocks (draft-behera-ldap-password-policy §5.2). ``lockout`` False: slapd 2.5
    ignores ``pwdAccountLockedTime`` altogether (``account_locked`` returns before reading it;
    verified in the lab).
    """

    lockout: bool = False
    lockout_duration: int | None = None
    # pwdMustChange: with pwdReset TRUE, slapd restricts the bind to a password change (and
    # skips the expiry check); None = the entry holds a value that is neither TRUE nor FALSE
    must_change: bool | None = False
    max_age: int | None = None
    grace_limit: int | None = None
    grace_expiry: int | None = None
    max_idle: int | None = None  # pwdMaxIdle: locked this long after the last successful bind
    allow_user_change: bool = True  # pwdAllowUserChange: the account may change its own password


class OpenLdap:
    """OpenLDAP with the ppolicy overlay."""

    name = "openldap"
    attributes = (
        "uid",  # what a posixGroup's memberUid names (admin groups: is_privileged)
        "gidNumber",  # a posixAccount's primary group (admin groups: is_privileged)
        "pwdAccountLockedTime",
        "pwdReset",
        "pwdStartTime",
        "pwdEndTime",
        "pwdPolicySubentry",
        "pwdChangedTime",
        "pwdGraceUseTime",
        "pwdAccountTmpLockoutEnd",
        "pwdLastSuccess",
    )
    # read as raw bytes and parsed by connectors.ldap_time only (never by ldap3's formatters)
    time_attributes = (
        "pwdAccountLockedTime",
        "pwdStartTime",
        "pwdEndTime",
        "pwdChangedTime",
        "pwdGraceUseTime",
        "pwdAccountTmpLockoutEnd",
        "pwdLastSuccess",
    )

    def __init__(self, policy: Callable[[str | None], PwdPolicy | None]) -> None:
        # policy(pwdPolicySubentry or None) -> the effective policy, None when unknown
        self._policy = policy

    def _effective(self, attrs: Attrs) -> PwdPolicy | None:
        sub = first(attrs, "pwdPolicySubentry")
        return self._policy(str(sub) if sub is not None else None)

    def temporary_lock_end(self, attrs: Attrs, now: datetime) -> datetime | None:
        """When slapd's temporary lockout ends, if one is in effect now; else None.

        ``pwdAccountTmpLockoutEnd`` (slapd 2.5+, set after failed binds under ``pwdMinDelay``;
        NO-USER-MODIFICATION, so no service account can lift it) refuses every bind, the right
        password too and a new one after a reset, until that time — under a policy with
        ``pwdLockout`` (or an unknown one), as slapd's ``account_locked`` decides (seen on
        slapd 2.5.13). ``UnreadableValue`` if it does not parse.
        """
        end = gentime(attrs, "pwdAccountTmpLockoutEnd")
        if end is None or now >= end:
            return None
        policy = self._effective(attrs)
        return end if policy is None or policy.lockout else None

    def idle_lock_since(self, attrs: Attrs, now: datetime) -> datetime | None:
        """When slapd's idle lockout took effect, if it is in effect now; else None.

        slapd 2.5 (``account_locked``), for a database that keeps the last bind (``olcLastBind``)
        and a policy with ``pwdLockout`` and ``pwdMaxIdle``: refused once now is past
        ``pwdLastSuccess`` (or, without it, ``pwdChangedTime``) + ``pwdMaxIdle`` — the right
        password too, with no ``pwdAccountLockedTime``. Seen on a private slapd 2.5.13:
        ``pwdLastSuccess`` is NO-USER-MODIFICATION (even the rootdn with the relax control cannot
        change it), so no unlock lifts this; a password reset or change does (slapd removes
        ``pwdLastSuccess`` and sets ``pwdChangedTime``). Firstline cannot read ``olcLastBind``;
        a policy with ``pwdMaxIdle`` (which does nothing without it) is taken as enforced.
        An unknown policy: None (no figure to judge by). ``UnreadableValue`` if a time does not parse.
        """
        return self._idle_since(attrs, self._effective(attrs), now)

    @staticmethod
    def _idle_since(attrs: Attrs, policy: PwdPolicy | None, now: datetime) -> datetime | None:
        if policy is None or not policy.lockout or not policy.max_idle or policy.max_idle < 0:
            return None
        last = gentime(attrs, "pwdLastSuccess")
        if last is None:
            last = gentime(attrs, "pwdChangedTime")
        if last is None:
            return None
        try:
            since = last.replace(microsecond=0) + timedelta(seconds=policy.max_idle)
        except OverflowError:
            return None
        return since if now.replace(microsecond=0) > since else None

    def _lock(self, attrs: Attrs, policy: PwdPolicy | None, now: datetime) -> tuple[bool, str, bool]:
        """(locked, lock_reason, disabled) as slapd 2.5 decides it, reading every time as slapd
        does (``openldap_seconds``: after 2100-02-28 not the calendar's).

        The administrator lock — ``pwdAccountLockedTime`` that slapd reads as time 0 (year 0,
        the Unix epoch, any spelling) — is locked and disabled for good, reported so even under
        a policy without ``pwdLockout``, where slapd would ignore it: the value states an
        administrator's decision. So is a lock time still to come by the calendar that slapd
        reads as past (``99991231235959Z``, the "locked for ever" some tools write, is
        1970-02-20 to slapd, which then refuses every bind): no failed sign-in writes a time
        to come, an administrator did. A temporary lockout still running
        (``temporary_lock_end``) is locked, ``temporary``; then slapd's idle lockout
        (``idle_lock_since``) is locked, ``idle``. Any other ``pwdAccountLockedTime``: a time
        slapd reads as still to come is not in effect yet (``25000101000000Z`` is 2091 to
        slapd: the right password binds), and a policy without ``pwdLockout`` ignores the
        value; otherwise locked until ``pwdLockoutDuration`` has passed (0, or policy unknown:
        until unlocked). ``UnreadableValue`` if a time does not parse.
        """
        raw = first(attrs, "pwdAccountLockedTime")
        then = None
        if raw is not None:
            try:
                then = openldap_seconds(raw)
                written_for = unix_seconds(raw)
            except DirectoryTimeError as exc:
                raise UnreadableValue("pwdAccountLockedTime", str(exc)) from exc
            now_s = int(now.timestamp())
            if then == 0 or (written_for > now_s >= then):
                return True, "admin", True
        if self.temporary_lock_end(attrs, now) is not None:
            return True, "temporary", False
        if self._idle_since(attrs, policy, now) is not None:
            return True, "idle", False
        if then is None:
            return False, "", False
        since = datetime.fromtimestamp(then, UTC)
        if since > now or (policy is not None and not policy.lockout):
            return False, "", False  # not in effect yet / the policy does not lock accounts
        duration = policy.lockout_duration if policy is not None else None
        locked = not duration or now < since + timedelta(seconds=duration)
        return locked, "failures" if locked else "", False

    def password_expires(self, attrs: Attrs, policy: PwdPolicy | None) -> datetime | None:
        """``pwdChangedTime`` + the effective ``pwdMaxAge``; None when it never expires or is unknown."""
        changed = gentime(attrs, "pwdChangedTime")
        if changed is None or policy is None or not policy.max_age:
            return None
        try:
            return changed + timedelta(seconds=policy.max_age)
        except OverflowError:
            return None  # beyond the year 9999: never, in practice

    @staticmethod
    def _expired(changed: datetime | None, policy: PwdPolicy | None, now: datetime) -> bool:
        """slapd's bind rule: expired once whole seconds since ``pwdChangedTime`` exceed ``pwdMaxAge``."""
        if changed is None or policy is None or not policy.max_age:
            return False
        age = now.replace(microsecond=0) - changed.replace(microsecond=0)
        return age > timedelta(seconds=policy.max_age)

    def change_blocked_by_expiry(self, attrs: Attrs, now: datetime) -> bool:
        """True when slapd will refuse the user's own bind as ``passwordExpired`` (ppolicy error 0).

        Expired (``_expired``), no grace bind left, and not in the reset state that slapd
        lets through (``pwdReset: TRUE`` under ``pwdMustChange``: the bind succeeds restricted
        to a password change). Mirrors ``ppolicy_bind_response`` in slapd 2.5.
        """
        policy = self._effective(attrs)
        if not self._expired(gentime(attrs, "pwdChangedTime"), policy, now):
            return False
        reset = str(first(attrs, "pwdReset") or "").upper() == "TRUE"
        if reset and policy is not None and policy.must_change is True:
            return False
        return self.grace_left(attrs, now) == 0

    def grace_left(self, attrs: Attrs, now: datetime) -> int:
        """Grace binds left after expiry: ``pwdGraceAuthNLimit`` minus ``pwdGraceUseTime`` values.

        Zero once ``pwdGraceExpiry`` seconds have passed since the password expired.
        """
        policy = self._effective(attrs)
        if policy is None or not policy.grace_limit:
            return 0
        used = values_of(attrs, "pwdGraceUseTime")
        for value in used:  # each must parse: a bad one fails closed like any other time
            gentime({"pwdGraceUseTime": [value]}, "pwdGraceUseTime")
        changed = gentime(attrs, "pwdChangedTime")
        if policy.grace_expiry and changed is not None:
            age = now.replace(microsecond=0) - changed.replace(microsecond=0)
            if age > timedelta(seconds=(policy.max_age or 0) + policy.grace_expiry):
                return 0
        return max(0, policy.grace_limit - len(used))

    def must_change_enforced(self, attrs: Attrs) -> bool | None:
        """Whether slapd makes the user change a password marked ``pwdReset: TRUE``.

        slapd 2.5 (``ppolicy_bind_response``) restricts the bind to a password change only when
        the effective policy has ``pwdMustChange: TRUE``; without it ``pwdReset`` is ignored and
        the reset password works for good (seen on the lab slapd).

        None — not known — when the policy that applies could not be read (the connector's
        ``policy`` gave None: no ``pwdPolicySubentry`` and no default configured, an entry that
        does not exist or the service account may not read, a failed read) or its
        ``pwdMustChange`` is neither TRUE nor FALSE. Never read as True: slapd itself falls back
        to a policy without ``pwdMustChange`` when ``pwdPolicySubentry`` names a missing entry
        (seen on the lab slapd), so "unknown" can well mean "not enforced".
        """
        policy = self._effective(attrs)
        return None if policy is None else policy.must_change

    def user_may_change(self, attrs: Attrs) -> bool | None:
        """Whether the account may change its own password (``pwdAllowUserChange``, absent =
        TRUE); None when the policy is unknown. With ``pwdMustChange`` and FALSE here, slapd
        lets the reset password bind only to change it and then refuses the change (seen on
        slapd 2.5.13 by a tester): such a must-change reset locks the account out."""
        policy = self._effective(attrs)
        return None if policy is None else policy.allow_user_change

    def state(self, attrs: Attrs, now: datetime) -> dict[str, Any]:
        """Lock, validity and password state; ``UnreadableValue`` when a time does not parse.

        ``pwdEndTime`` reached: expired. ``pwdStartTime`` not reached: disabled (not active
        yet). Both as slapd's ``account_locked`` decides them. ``must_change``: ``pwdReset``
        under a policy known to enforce it (``must_change_enforced`` True), or an expired
        password. ``must_change_unknown``: ``pwdReset`` is set but whether slapd enforces it
        could not be established (``must_change_enforced`` None) — neither claimed nor denied.
        """
        policy = self._effective(attrs)
        locked, reason, disabled = self._lock(attrs, policy, now)
        start, end = gentime(attrs, "pwdStartTime"), gentime(attrs, "pwdEndTime")
        expired = end is not None and end <= now
        disabled = disabled or (start is not None and now < start)
        expires = self.password_expires(attrs, policy)
        password_expired = self._expired(gentime(attrs, "pwdChangedTime"), policy, now)
        reset = str(first(attrs, "pwdReset") or "").upper() == "TRUE"
        enforced = None if policy is None else policy.must_change
        must_change = (reset and enforced is True) or password_expired
        return {
            "locked": locked,
            "lock_reason": reason,
            "disabled": disabled,
            "expired": expired,
            "must_change": must_change,
            "must_change_unknown": reset and enforced is None and not must_change,
            "password_expired": password_expired,
            "password_expires": utc_text(expires),
        }

    def is_privileged(self, conn: Connection, dn: str, attrs: Attrs, admin_groups: Sequence[str]) -> bool:
        # configured admin groups, nested groupOfNames / groupOfUniqueNames followed upwards;
        # a posixGroup holds the account by its uid (memberUid)
        uids = [str(v) for v in values_of(attrs, "uid") if v is not None and str(v)]
        # ... and by its primary group (posixAccount gidNumber), which memberUid does not list
        gids = [
            str(v) for v in values_of(attrs, "gidNumber") if v is not None and str(v).isascii() and str(v).isdigit()
        ]
        return openldap_admin_member(conn, dn, admin_groups, uids, gids)

    def unlock(self, conn: Connection, dn: str, seen: Attrs) -> dict[str, Any] | None:
        """Delete exactly the ``pwdAccountLockedTime`` value that was read and judged a failure lock.

        Deleting that value (not the attribute) means a lock set in between — say the
        administrator lock — is left in place; the caller's re-read then reports it.
        """
        value = first(seen, "pwdAccountLockedTime")
        if value is None:
            return None
        ok = conn.modify(dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [value])]})
        if ok is True or conn.result.get("result") == 16:  # noSuchAttribute: gone or changed; re-read decides
            return None
        return _result(conn)

    def reset(self, conn: Connection, dn: str, password: str, must_change: bool) -> dict[str, Any] | None:
        """The password by RFC 3062, then ``pwdReset``: two operations (an extended operation
        cannot share a modify). ``PartlyApplied`` when the second is refused after the first
        replaced the password."""
        # RFC 3062 as an account with `write` (not `manage`): ppolicy checks length/history
        # and the server stores the hash.
        ok = conn.extend.standard.modify_password(
            user=dn, new_password=password.encode("utf-8"), controls=[ppolicy_request()]
        )
        if ok is not True:
            return _result(conn)
        if must_change:
            ok = conn.modify(dn, {"pwdReset": [(MODIFY_REPLACE, ["TRUE"])]})
        else:
            ok = conn.modify(dn, {"pwdReset": [(MODIFY_DELETE, [])]})
            ok = ok is True or conn.result.get("result") == 16
        if ok is not True:
            raise PartlyApplied(_result(conn))
        return None

    def change(self, user_conn: Connection, dn: str, old: str, new: str) -> dict[str, Any] | None:
        ok = user_conn.extend.standard.modify_password(
            user=dn, old_password=old.encode("utf-8"), new_password=new.encode("utf-8"), controls=[ppolicy_request()]
        )
        return None if ok is True else _result(user_conn)

    bind_as_user = True


class ActiveDirectory:
    """Microsoft Active Directory (and Samba AD DC)."""

    name = "active_directory"
    attributes = (
        "userAccountControl",
        "msDS-User-Account-Control-Computed",
        "accountExpires",
        "pwdLastSet",
        "lockoutTime",
        "adminCount",
        "msDS-UserPasswordExpiryTimeComputed",
    )
    bind_as_user = False
    time_attributes = ("accountExpires", "pwdLastSet", "lockoutTime", "msDS-UserPasswordExpiryTimeComputed")

    def __init__(self, hints_critical: bool) -> None:
        self._hints_critical = hints_critical

    def state(self, attrs: Attrs, now: datetime) -> dict[str, Any]:
        """Lock, validity and password state (MS-ADTS §3.1.1.4.4 / MS-ADA1..3 attribute semantics).

        ``userAccountControl`` and the constructed ``msDS-User-Account-Control-Computed`` must be
        readable (``UnreadableValue`` otherwise: fail closed). Locked = ``UF_LOCKOUT`` of the
        computed flags (the DC applies the lockout duration); ``lockoutTime`` is checked to
        parse. ``accountExpires`` 0 / max = never. ``pwdLastSet`` 0 = must change at next
        logon (bind ``data 773``) unless ``UF_DONT_EXPIRE_PASSWD`` is set (the DC then ignores it:
        ``must_change_enforced``); ``UF_PASSWORD_EXPIRED`` otherwise = expired (``data 532``).
        """
        uac = integer(attrs, "userAccountControl", required=True)
        computed = integer(attrs, "msDS-User-Account-Control-Computed", required=True)
        assert uac is not None and computed is not None
        account_expires = filetime(attrs, "accountExpires")
        expired = account_expires not in (None, *AD_NEVER) and _when(attrs, "accountExpires", account_expires) <= now
        lockout = filetime(attrs, "lockoutTime")
        if lockout not in (None, 0):
            _when(attrs, "lockoutTime", lockout)
        locked = bool(computed & UF_LOCKOUT)
        pwd_last_set = filetime(attrs, "pwdLastSet")
        if pwd_last_set not in (None, 0, -1):
            _when(attrs, "pwdLastSet", pwd_last_set)
        flagged = bool(computed & UF_PASSWORD_EXPIRED)
        expiry = filetime(attrs, "msDS-UserPasswordExpiryTimeComputed")
        expires = None
        if expiry not in (None, *AD_NEVER):
            expires = _when(attrs, "msDS-UserPasswordExpiryTimeComputed", expiry)
        return {
            "locked": locked,
            "lock_reason": "failures" if locked else "",
            "disabled": bool(uac & UF_ACCOUNTDISABLE),
            "expired": expired,
            "must_change": (pwd_last_set == 0 and not uac & UF_DONT_EXPIRE_PASSWD) or flagged,
            "must_change_unknown": False,  # userAccountControl is required above: never unknown here
            "password_expired": flagged and pwd_last_set != 0,
            "password_expires": utc_text(expires),
        }

    def must_change_enforced(self, attrs: Attrs) -> bool | None:
        """Whether the DC makes the user change a password whose ``pwdLastSet`` is 0.

        Not for an account with ``UF_DONT_EXPIRE_PASSWD`` ("password never expires"): the DC
        then ignores "must change at next logon" and the password works for good (Windows says
        so in ADUC; seen on the lab Samba DC: the bind succeeds). ``UnreadableValue`` when
        ``userAccountControl`` cannot be read.
        """
        uac = integer(attrs, "userAccountControl", required=True)
        assert uac is not None
        return not uac & UF_DONT_EXPIRE_PASSWD

    @staticmethod
    def smartcard_required(attrs: Attrs) -> bool:
        """``UF_SMARTCARD_REQUIRED``: the person signs in with a smart card, so a temporary
        password would not let them in (``UnreadableValue`` when ``userAccountControl`` cannot
        be read)."""
        uac = integer(attrs, "userAccountControl", required=True)
        assert uac is not None
        return bool(uac & UF_SMARTCARD_REQUIRED)

    @staticmethod
    def user_may_change(_attrs: Attrs) -> bool | None:
        """AD: "user cannot change password" is an access rule (not readable from the account's
        attributes), so not known here; never read as "may not"."""
        return None

    def is_privileged(self, conn: Connection, dn: str, attrs: Attrs, admin_groups: Sequence[str]) -> bool:
        if str(first(attrs, "adminCount") or "0") == "1":
            return True
        # built-in protected groups by well-known SID/RID (tokenGroups), Administrator, krbtgt;
        # from the raw values the account read fetched with it (RAW_KEY), else read now
        raw = attrs.get(RAW_KEY) if isinstance(attrs, Mapping) else None
        entry = {"raw_attributes": raw} if isinstance(raw, Mapping) else None
        if ad_protected(conn, dn, entry):
            return True
        if not admin_groups:
            return False
        # nested membership (LDAP_MATCHING_RULE_IN_CHAIN), and the primary group, which AD
        # keeps out of `member`: the group's SID among the account's tokenGroups
        holds = ad_holder_filter(conn, dn, entry)
        return any(group_has_member(conn, g, holds) for g in admin_groups)

    def unlock(self, conn: Connection, dn: str, seen: Attrs) -> dict[str, Any] | None:
        ok = conn.modify(dn, {"lockoutTime": [(MODIFY_REPLACE, ["0"])]})
        return None if ok is True else _result(conn)

    @staticmethod
    def _unicode_pwd(password: str) -> bytes:
        # The quoted password in UTF-16LE, code unit for code unit as typed (no normalisation).
        return f'"{password}"'.encode("utf-16-le")

    def reset(self, conn: Connection, dn: str, password: str, must_change: bool) -> dict[str, Any] | None:
        # One modify, so the DC applies both or neither: as two, a refused pwdLastSet left the
        # password replaced by one nobody was given while the reset reported "not allowed".
        # pwdLastSet 0 = must change at next logon; -1 = "now" (clears a pending must-change).
        ok = conn.modify(
            dn,
            {
                "unicodePwd": [(MODIFY_REPLACE, [self._unicode_pwd(password)])],
                "pwdLastSet": [(MODIFY_REPLACE, ["0" if must_change else "-1"])],
            },
            controls=[policy_hints(self._hints_critical)],
        )
        return None if ok is True else _result(conn)

    def change(self, conn: Connection, dn: str, old: str, new: str) -> dict[str, Any] | None:
        # A change (delete old + add new) is checked against the old value and the history by
        # the DC, and works even when the user could not bind (must change at next logon, 773).
        ok = conn.modify(
            dn,
            {
                "unicodePwd": [
                    (MODIFY_DELETE, [self._unicode_pwd(old)]),
                    (MODIFY_ADD, [self._unicode_pwd(new)]),
                ]
            },
        )
        return None if ok is True else _result(conn)


def group_has_member(conn: Connection, group_dn: str, member_filter: str) -> bool:
    conn.search(group_dn, member_filter, BASE, attributes=[], size_limit=1)
    code = conn.result.get("result")
    if code == 32:  # noSuchObject
        raise GroupMissing(group_dn)
    return any(r.get("type") == "searchResEntry" for r in conn.response or [])
