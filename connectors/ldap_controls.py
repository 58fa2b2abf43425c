"""LDAP controls and directory refusals: the BER bits and the translation to reason codes.

* OpenLDAP password-policy control (draft-behera-ldap-password-policy, OID
  1.3.6.1.4.1.42.2.27.8.5.1): sent empty with binds and password writes; the response value
  ``SEQUENCE { warning [0] CHOICE {...} OPTIONAL, error [1] ENUMERATED OPTIONAL }`` is decoded
  by hand (a few bytes; no ASN.1 schema needed).
* AD ``LDAP_SERVER_POLICY_HINTS_OID`` (1.2.840.113556.1.4.2239) with ``Flags=1``:
  ``SEQUENCE { INTEGER 1 }``, so that history and complexity apply to an administrator's reset.
* ``refusal()`` maps a failed result (code + server message + decoded control) to a reason
  code from ``connectors.password_policy.MESSAGES``; callers never show the raw message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PPOLICY_OID = "1.3.6.1.4.1.42.2.27.8.5.1"
POLICY_HINTS_OID = "1.2.840.113556.1.4.2239"
POLICY_HINTS_VALUE = b"\x30\x03\x02\x01\x01"  # SEQUENCE { INTEGER 1 }  (Flags = 1)

PPOLICY_ERRORS = {
    0: "password_expired",
    1: "locked",
    2: "change_after_reset",
    3: "not_allowed",  # passwordModNotAllowed
    4: "must_supply_old_password",
    5: "quality",  # insufficientPasswordQuality
    6: "too_short",
    7: "too_young",
    8: "in_history",
    9: "too_long",
}


def ppolicy_request() -> tuple[str, bool, None]:
    """The empty, non-critical password-policy request control (ldap3 control tuple)."""
    return (PPOLICY_OID, False, None)


def policy_hints(critical: bool) -> tuple[str, bool, bytes]:
    """The AD policy-hints control (Flags=1) as an ldap3 control tuple."""
    return (POLICY_HINTS_OID, critical, POLICY_HINTS_VALUE)


@dataclass(frozen=True)
class PPolicyResponse:
    """Decoded password-policy response: ``error`` is a reason code or None."""

    error: str | None = None
    error_code: int | None = None
    time_before_expiration: int | None = None
    grace_logins_remaining: int | None = None


def _tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """One BER element at *pos*: (tag, value, next position). Short and long lengths."""
    if pos + 2 > len(data):
        raise ValueError("truncated BER element")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("unsupported BER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("truncated BER value")
    return tag, data[pos : pos + length], pos + length


def _int(value: bytes) -> int:
    if not value or len(value) > 8:
        raise ValueError("bad BER integer")
    return int.from_bytes(value, "big", signed=True)


def decode_ppolicy(value: bytes | None) -> PPolicyResponse:
    """Decode a password-policy response control value; raise ``ValueError`` if malformed."""
    if not value:
        return PPolicyResponse()
    tag, body, end = _tlv(value, 0)
    if tag != 0x30 or end != len(value):
        raise ValueError("password-policy response is not one SEQUENCE")
    error_code = expiry = grace = None
    pos = 0
    while pos < len(body):
        tag, inner, pos = _tlv(body, pos)
        if tag == 0xA0:  # warning [0] CHOICE, constructed
            wtag, wval, _ = _tlv(inner, 0)
            if wtag == 0x80:
                expiry = _int(wval)
            elif wtag == 0x81:
                grace = _int(wval)
            else:
                raise ValueError("unknown password-policy warning")
        elif tag == 0x81:  # error [1] ENUMERATED, primitive
            error_code = _int(inner)
        else:
            raise ValueError("unknown password-policy element")
    return PPolicyResponse(
        error=PPOLICY_ERRORS.get(error_code, "quality") if error_code is not None else None,
        error_code=error_code,
        time_before_expiration=expiry,
        grace_logins_remaining=grace,
    )


def encode_ppolicy(
    error_code: int | None = None, *, time_before_expiration: int | None = None, grace: int | None = None
) -> bytes:
    """Encode a response value (used by the unit tests to round-trip the decoder)."""

    def integer(n: int) -> bytes:
        raw = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)
        return raw

    body = b""
    if time_before_expiration is not None or grace is not None:
        tag, n = (0x80, time_before_expiration) if time_before_expiration is not None else (0x81, grace)
        assert n is not None
        w = bytes([tag, len(integer(n))]) + integer(n)
        body += bytes([0xA0, len(w)]) + w
    if error_code is not None:
        body += bytes([0x81, len(integer(error_code))]) + integer(error_code)
    return bytes([0x30, len(body)]) + body


def response_ppolicy(result: dict[str, Any] | None) -> PPolicyResponse:
    """The decoded password-policy control of an ldap3 result dict, if any (never raises)."""
    controls = (result or {}).get("controls") or {}
    ctrl = controls.get(PPOLICY_OID)
    if not ctrl:
        return PPolicyResponse()
    try:
        return decode_ppolicy(ctrl.get("value"))
    except ValueError:
        return PPolicyResponse()


# OpenLDAP ppolicy texts (servers/slapd/overlays/ppolicy.c), checked before the control
# because "not being changed from existing value" shares error 8 with history.
_OPENLDAP_TEXTS = (
    ("not being changed from existing value", "same_as_current"),
    ("in history", "in_history"),
    ("too young", "too_young"),
    ("too long", "too_long"),
    ("fails quality checking", "quality"),
    ("must supply old password", "must_supply_old_password"),
)

# Samba / Windows AD texts after 0000052D (check_password_restrictions) and friends.
_AD_TEXTS = (
    ("too short", "too_short"),
    ("too long", "too_long"),
    ("complexity", "complexity"),
    ("in history", "in_history"),
    ("already used", "in_history"),
    ("too young", "too_young"),
    ("minimum password age", "too_young"),
    ("old password specified doesn't match", "wrong_password"),
)

_AD_DATA = re.compile(r"\bdata ([0-9a-f]{3,8})\b", re.IGNORECASE)
AD_BIND_DATA = {
    "52e": "wrong_password",
    "525": "not_found",
    "530": "not_allowed",  # logon hours
    "531": "not_allowed",  # workstation
    "532": "password_expired",
    "533": "disabled",
    "701": "expired",
    "773": "must_change",
    "775": "locked",
}


def ad_bind_reason(message: str) -> str | None:
    """Reason code of an AD ``invalidCredentials`` message (``... data 775, ...``)."""
    m = _AD_DATA.search(message or "")
    return AD_BIND_DATA.get(m.group(1).lower()) if m else None


def refusal(result: dict[str, Any] | None, flavor: str) -> str:
    """Reason code for a refused password write (constraintViolation and relatives)."""
    result = result or {}
    text = str(result.get("message") or "").lower()
    table = _OPENLDAP_TEXTS if flavor == "openldap" else _AD_TEXTS
    for needle, reason in table:
        if needle in text:
            return reason
    if flavor == "openldap":
        pp = response_ppolicy(result)
        if pp.error:
            return pp.error
    else:
        if text.startswith("00000775") or "locked out" in text:
            return "locked"
        if "0000052d" in text:
            return "quality"
        if text.startswith("00000056"):
            return "wrong_password"
    code = result.get("result")
    if code == 19:
        return "quality"
    if code == 50:
        return "insufficient_access"
    if code == 53:
        return "unwilling"
    return "rejected"
