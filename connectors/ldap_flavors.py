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

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, Connection
from ldap3.utils.conv import escape_filter_chars

from connectors.ldap_controls import policy_hints, ppolicy_request

Attrs = Mapping[str, Sequence[Any]]

PERMANENT_LOCK = "000001010000Z"  # OpenLDAP: locked by an administrator until unlocked
UF_ACCOUNTDISABLE = 0x2
UF_LOCKOUT = 0x10
UF_PASSWORD_EXPIRED = 0x800000
AD_NEVER = (0, 0x7FFFFFFFFFFFFFFF)
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def _result(conn: Connection) -> dict[str, Any]:
    result: dict[str, Any] = dict(conn.result or {})
    return result


def first(attrs: Attrs, name: str) -> Any:
    for key, values in attrs.items():
        if key.lower() == name.lower():
            if isinstance(values, list | tuple):
                return values[0] if values else None
            return values
    return None


def gentime(value: Any) -> datetime | None:
    """Parse an LDAP GeneralizedTime (``YYYYmmddHHMMSS[.f]Z``)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip().rstrip("Z").split(".")[0].split(",")[0]
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def filetime(value: Any) -> datetime | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    if n in AD_NEVER or n < 0:
        return None
    return FILETIME_EPOCH + timedelta(microseconds=n // 10)


class OpenLdap:
    """OpenLDAP with the ppolicy overlay."""

    name = "openldap"
    attributes = (
        "pwdAccountLockedTime",
        "pwdReset",
        "pwdStartTime",
        "pwdEndTime",
        "pwdPolicySubentry",
    )

    def __init__(self, lockout_duration: Callable[[str | None], int | None]) -> None:
        # lockout_duration(policy_dn) -> seconds (0 = until unlocked), None when unknown
        self._lockout_duration = lockout_duration

    def state(self, attrs: Attrs, now: datetime) -> dict[str, Any]:
        raw_lock = first(attrs, "pwdAccountLockedTime")
        locked, reason, disabled = False, "", False
        if raw_lock is not None:
            if str(raw_lock).strip() == PERMANENT_LOCK:
                locked, reason, disabled = True, "admin", True
            else:
                since = gentime(raw_lock)
                duration = self._lockout_duration(first(attrs, "pwdPolicySubentry"))
                if not duration or since is None:
                    locked = True
                else:
                    locked = now < since + timedelta(seconds=duration)
                reason = "failures" if locked else ""
        start, end = gentime(first(attrs, "pwdStartTime")), gentime(first(attrs, "pwdEndTime"))
        expired = (end is not None and end <= now) or (start is not None and start > now)
        must_change = str(first(attrs, "pwdReset") or "").upper() == "TRUE"
        return {
            "locked": locked,
            "lock_reason": reason,
            "disabled": disabled,
            "expired": expired,
            "must_change": must_change,
        }

    def is_privileged(self, conn: Connection, dn: str, attrs: Attrs, admin_groups: Sequence[str]) -> bool:
        who = escape_filter_chars(dn)
        for group in admin_groups:
            if group_has_member(conn, group, f"(|(member={who})(uniqueMember={who}))"):
                return True
        return False

    def unlock(self, conn: Connection, dn: str) -> dict[str, Any] | None:
        ok = conn.modify(dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]})
        if ok is True or conn.result.get("result") == 16:  # noSuchAttribute: already unlocked
            return None
        return _result(conn)

    def reset(self, conn: Connection, dn: str, password: str, must_change: bool) -> dict[str, Any] | None:
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
        return None if ok is True else _result(conn)

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
    )
    bind_as_user = False

    def __init__(self, hints_critical: bool) -> None:
        self._hints_critical = hints_critical

    def state(self, attrs: Attrs, now: datetime) -> dict[str, Any]:
        uac = int(first(attrs, "userAccountControl") or 0)
        computed = int(first(attrs, "msDS-User-Account-Control-Computed") or 0)
        expires = filetime(first(attrs, "accountExpires"))
        locked = bool(computed & UF_LOCKOUT)
        pwd_last_set = first(attrs, "pwdLastSet")
        return {
            "locked": locked,
            "lock_reason": "failures" if locked else "",
            "disabled": bool(uac & UF_ACCOUNTDISABLE),
            "expired": expires is not None and expires <= now,
            "must_change": str(pwd_last_set) == "0" or bool(computed & UF_PASSWORD_EXPIRED),
        }

    def is_privileged(self, conn: Connection, dn: str, attrs: Attrs, admin_groups: Sequence[str]) -> bool:
        if str(first(attrs, "adminCount") or "0") == "1":
            return True
        who = escape_filter_chars(dn)
        # LDAP_MATCHING_RULE_IN_CHAIN: nested membership counts too
        return any(group_has_member(conn, g, f"(member:1.2.840.113556.1.4.1941:={who})") for g in admin_groups)

    def unlock(self, conn: Connection, dn: str) -> dict[str, Any] | None:
        ok = conn.modify(dn, {"lockoutTime": [(MODIFY_REPLACE, ["0"])]})
        return None if ok is True else _result(conn)

    @staticmethod
    def _unicode_pwd(password: str) -> bytes:
        # The quoted password in UTF-16LE, code unit for code unit as typed (no normalisation).
        return f'"{password}"'.encode("utf-16-le")

    def reset(self, conn: Connection, dn: str, password: str, must_change: bool) -> dict[str, Any] | None:
        ok = conn.modify(
            dn,
            {"unicodePwd": [(MODIFY_REPLACE, [self._unicode_pwd(password)])]},
            controls=[policy_hints(self._hints_critical)],
        )
        if ok is not True:
            return _result(conn)
        # 0 = must change at next logon; -1 = "now" (clears a pending must-change)
        ok = conn.modify(dn, {"pwdLastSet": [(MODIFY_REPLACE, ["0" if must_change else "-1"])]})
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


class GroupMissing(Exception):
    """A configured admin group does not exist (fail closed)."""


def group_has_member(conn: Connection, group_dn: str, member_filter: str) -> bool:
    conn.search(group_dn, member_filter, BASE, attributes=[], size_limit=1)
    code = conn.result.get("result")
    if code == 32:  # noSuchObject
        raise GroupMissing(group_dn)
    return any(r.get("type") == "searchResEntry" for r in conn.response or [])
