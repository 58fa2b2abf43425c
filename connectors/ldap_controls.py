"""LDAP controls and directory refusals: the BER bits and the translation to reason codes.

* OpenLDAP password-policy control (draft-behera-ldap-password-policy, OID
  1.3.6.1.4.1.42.2.27.8.5.1): sent empty with binds and password writes; the response value
  ``SEQUENCE { warning [0] CHOICE {...} OPTIONAL, error [1] ENUMERATED OPTIONAL }`` is decoded
  by hand (a few bytes; no ASN.1 schema needed).
* AD ``LDAP_SERVER_POLICY_HINTS_OID`` (1.2.840.113556.1.4.2239) with ``Flags=1``:
  ``SEQUENCE { INTEGER 1 }``, so that history and complexity apply to an administrator's reset.
* Matched values (RFC 3876, OID 1.2.826.0.1.3344810.2.3): ``ValuesReturnFilter ::= SEQUENCE
  OF SimpleFilterItem``, here only ``equalityMatch [3] AttributeValueAssertion`` items, so that
  a search returns of a multi-valued attribute (a group's ``member``) only the values asked about.
* ``refusal()`` maps a failed result (code + server message + decoded control) to a reason
  code from ``connectors.password_policy.MESSAGES``; callers never show the raw message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PPOLICY_OID = "1.3.6.1.4.1.42.2.27.8.5.1"
POLICY_HINTS_OID = "1.2.840.113556.1.4.2239"
POLICY_HINTS_VALUE = b"\x30\x03\x02\x01\x01"  # SEQUENCE { INTEGER 1 }  (Flags = 1)
MATCHED_VALUES_OID = "1.2.826.0.1.3344810.2.3"

PPOLICY_ERRORS = {
    0: "password_expired",
    1: "locked",
    2: "change_after_reset",
    3: "change_not_allowed",  # passwordModNotAllowed (pwdAllowUserChange FALSE)
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


def _ber(tag: int, content: bytes) -> bytes:
    """One BER element (definite length, short or long form)."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def matched_values(
    assertions: list[tuple[str, str]], rules: Mapping[str, str] | None = None
) -> tuple[str, bool, bytes]:
    """The critical matched-values control (RFC 3876) for equality *assertions*.

    Each ``(attribute, value)`` becomes ``equalityMatch [3] { attributeDesc, assertionValue }``
    (UTF-8 octet strings); the server then returns, of the attributes asked for, only the values
    that match one of them under the attribute's own equality rule. An attribute named in
    *rules* is matched by that rule instead (``extensibleMatch [9] { matchingRule [1], type [2],
    matchValue [3] }``; e.g. ``memberUid`` by ``caseIgnoreIA5Match``). Critical: a server that
    does not support it refuses the search (``unavailableCriticalExtension``) rather than
    returning every value.
    """
    chosen = {k.lower(): v for k, v in (rules or {}).items()}

    def item(attr: str, value: str) -> bytes:
        rule = chosen.get(attr.lower())
        if rule is None:
            return _ber(0xA3, _ber(0x04, attr.encode("utf-8")) + _ber(0x04, value.encode("utf-8")))
        return _ber(
            0xA9,
            _ber(0x81, rule.encode("utf-8")) + _ber(0x82, attr.encode("utf-8")) + _ber(0x83, value.encode("utf-8")),
        )

    items = b"".join(item(attr, value) for attr, value in assertions)
    return (MATCHED_VALUES_OID, True, _ber(0x30, items))


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
        error=PPOLICY_ERRORS.get(error_code, "rejected") if error_code is not None else None,
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


# OpenLDAP: the ppolicy response control carries the reason (errors 0-9 above). Its text is
# generic ("Password fails quality checking policy" for too short, too long and quality
# alike), so the control wins; only "not being changed from existing value" is told apart
# by text, because it shares error 8 (passwordInHistory) with the history rule.
# Texts are the fallback when a server sends no control (servers/slapd/overlays/ppolicy.c).
_OPENLDAP_TEXTS: tuple[tuple[str, str], ...] = (
    ("in history", "in_history"),
    ("too young", "too_young"),
    ("too long", "too_long"),
    ("too short", "too_short"),
    ("must supply old password", "must_supply_old_password"),
    ("fails quality checking", "quality"),
)

# Samba check_password_restrictions() texts after 0000052D; Windows sends no text, only the
# extended error code, handled in _AD_CODES.
_AD_TEXTS: tuple[tuple[str, str], ...] = (
    ("too short", "too_short"),
    ("too long", "too_long"),
    ("complexity", "complexity"),
    ("in history", "in_history"),
    ("already used", "in_history"),
    ("too young", "too_young"),
    ("minimum password age", "too_young"),
    ("old password specified doesn't match", "wrong_password"),
)

# AD extended errors: the Win32 code that starts the diagnostic message ("0000052D: ...").
_AD_CODES = {
    "0000052d": "quality",  # ERROR_PASSWORD_RESTRICTION: length, complexity, history or age
    "00000056": "wrong_password",  # ERROR_INVALID_PASSWORD: the old value does not match
    "0000052e": "wrong_password",  # ERROR_LOGON_FAILURE
    "00000775": "locked",  # ERROR_ACCOUNT_LOCKED_OUT
    "00000532": "password_expired",  # ERROR_PASSWORD_EXPIRED
    "00000773": "must_change",  # ERROR_PASSWORD_MUST_CHANGE
    "00000533": "disabled",  # ERROR_ACCOUNT_DISABLED
    "00000005": "insufficient_access",  # ERROR_ACCESS_DENIED
    "00002098": "insufficient_access",  # ERROR_DS_INSUFF_ACCESS_RIGHTS
    "0000001f": "unwilling",  # ERROR_GEN_FAILURE, e.g. unicodePwd without an encrypted connection
    "00000523": "rejected",  # ERROR_INVALID_ACCOUNT_NAME
}
_AD_CODE = re.compile(r"^\s*([0-9a-f]{8})\b", re.IGNORECASE)
_FIGURE = re.compile(r"(?:longer|shorter) than (\d+) characters", re.IGNORECASE)

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
    """Reason code for a refused password write (constraintViolation and relatives).

    OpenLDAP: the ppolicy control's error first (see ``PPOLICY_ERRORS``), then the text.
    AD: Samba's ``check_password_restrictions`` text first (it names the rule), then the
    extended error code that starts the message (``_AD_CODES``). Then the LDAP result code.
    """
    result = result or {}
    text = str(result.get("message") or "").lower()
    if flavor == "openldap":
        if "not being changed from existing value" in text:
            return "same_as_current"
        pp = response_ppolicy(result)
        if pp.error:
            return pp.error
        table = _OPENLDAP_TEXTS
    else:
        table = _AD_TEXTS
    for needle, reason in table:
        if needle in text:
            return reason
    if flavor != "openldap":
        if "locked out" in text:
            return "locked"
        m = _AD_CODE.match(text)
        if m and m.group(1) in _AD_CODES:
            return _AD_CODES[m.group(1)]
    code = result.get("result")
    if code == 19:
        return "quality"
    if code in (50, 8):  # insufficientAccessRights, strongerAuthRequired
        return "insufficient_access"
    if code == 53:
        return "unwilling"
    return "rejected"


def stated_figure(result: dict[str, Any] | None) -> int | None:
    """The length the directory's own message states (Samba: "... longer than 12 characters")."""
    m = _FIGURE.search(str((result or {}).get("message") or ""))
    return int(m.group(1)) if m else None
