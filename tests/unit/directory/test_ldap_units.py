"""Account-name validation, BER control encoding/decoding, refusal mapping, config, mail text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from connectors.base import InvalidInput
from connectors.ldap import LdapTarget, _under, generate_password, validate_account_name
from connectors.ldap_controls import (
    POLICY_HINTS_VALUE,
    ad_bind_reason,
    decode_ppolicy,
    encode_ppolicy,
    policy_hints,
    refusal,
)
from connectors.ldap_flavors import ActiveDirectory, OpenLdap, PwdPolicy
from connectors.mail import MailTarget, render, render_code

BASE = {
    "connector": "ldap",
    "flavor": "openldap",
    "url": "ldaps://127.0.0.1:6636",
    "bind_dn": "cn=firstline,ou=services,dc=example,dc=org",
    "password": {"env": "X"},
    "base_dn": "ou=people,dc=example,dc=org",
}


@pytest.mark.parametrize("name", ["alice", "j.de-vries", "svc_01", "A" * 64, "0abc"])
def test_valid_account_names(name: str) -> None:
    assert validate_account_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["*", ")(uid=*", "\\2a", "a\x00b", "admin*)(|(uid=*", "", " x", "x\n", "A" * 65, "-x", ".x", "a b", "é", "a/b", 5],
)
def test_hostile_account_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_account_name(name)
    assert err.value.reason == "invalid_account"


def test_ppolicy_response_values_from_slapd_decode() -> None:
    assert decode_ppolicy(b"0\x03\x81\x01\x01").error == "locked"
    assert decode_ppolicy(b"0\x03\x81\x01\x06").error == "too_short"
    assert decode_ppolicy(b"0\x03\x81\x01\x08").error == "in_history"
    assert decode_ppolicy(b"0\x03\x81\x01\x02").error == "change_after_reset"
    assert decode_ppolicy(b"0\x00").error is None
    assert decode_ppolicy(None).error is None


@pytest.mark.parametrize("code", range(10))
def test_ppolicy_round_trip_errors(code: int) -> None:
    assert decode_ppolicy(encode_ppolicy(code)).error_code == code


def test_ppolicy_warnings_decode() -> None:
    pp = decode_ppolicy(encode_ppolicy(None, time_before_expiration=86400))
    assert pp.time_before_expiration == 86400 and pp.error is None
    pp = decode_ppolicy(encode_ppolicy(2, grace=3))
    assert pp.grace_logins_remaining == 3 and pp.error == "change_after_reset"


@pytest.mark.parametrize("bad", [b"\x31\x00", b"0\x05\x81\x01", b"0\x03\x82\x01\x01", b"0\x84\xff\xff\xff\xff"])
def test_malformed_ppolicy_values_raise(bad: bytes) -> None:
    with pytest.raises(ValueError):
        decode_ppolicy(bad)


def test_policy_hints_is_sequence_of_integer_one() -> None:
    assert POLICY_HINTS_VALUE == bytes([0x30, 0x03, 0x02, 0x01, 0x01])
    assert policy_hints(True) == ("1.2.840.113556.1.4.2239", True, POLICY_HINTS_VALUE)


@pytest.mark.parametrize(
    ("message", "flavor", "reason"),
    [
        ("Password fails quality checking policy", "openldap", "quality"),
        ("Password is in history of old passwords", "openldap", "in_history"),
        ("Password is not being changed from existing value", "openldap", "same_as_current"),
        ("Password is too young to change", "openldap", "too_young"),
        (
            "0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be "
            "equal or longer than 8 characters!",
            "active_directory",
            "too_short",
        ),
        (
            "0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity "
            "criteria!",
            "active_directory",
            "complexity",
        ),
        (
            "0000052D: Constraint violation - check_password_restrictions: the password was already used (in history)!",
            "active_directory",
            "in_history",
        ),
        (
            "00000056: Constraint violation - check_password_restrictions: The old password specified doesn't match!",
            "active_directory",
            "wrong_password",
        ),
        ("00000775: Password change not permitted, account locked out!", "active_directory", "locked"),
        ("0000052D: SvcErr: DSID-031A1236, problem 5003 (WILL_NOT_PERFORM), data 0", "active_directory", "quality"),
    ],
)
def test_directory_refusals_map_to_reason_codes(message: str, flavor: str, reason: str) -> None:
    assert refusal({"result": 19, "message": message}, flavor) == reason


def test_ppolicy_control_used_when_text_is_unknown() -> None:
    result = {"result": 19, "message": "", "controls": {"1.3.6.1.4.1.42.2.27.8.5.1": {"value": b"0\x03\x81\x01\x06"}}}
    assert refusal(result, "openldap") == "too_short"


@pytest.mark.parametrize(
    ("data", "reason"),
    [("52e", "wrong_password"), ("775", "locked"), ("533", "disabled"), ("701", "expired"), ("773", "must_change")],
)
def test_ad_bind_data_codes(data: str, reason: str) -> None:
    msg = f"80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {data}, v1db1"
    assert ad_bind_reason(msg) == reason


def test_openldap_lock_states() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    forever = OpenLdap(lambda _dn: PwdPolicy(lockout=True, lockout_duration=0))
    hourly = OpenLdap(lambda _dn: PwdPolicy(lockout=True, lockout_duration=3600))
    assert forever.state({"pwdAccountLockedTime": ["000001010000Z"]}, now)["lock_reason"] == "admin"
    assert forever.state({"pwdAccountLockedTime": ["20200101000000Z"]}, now)["locked"] is True
    assert hourly.state({"pwdAccountLockedTime": ["20260101113000Z"]}, now)["locked"] is True
    assert hourly.state({"pwdAccountLockedTime": ["20260101100000Z"]}, now)["locked"] is False
    # pwdReset binds the user to a change only under pwdMustChange TRUE (slapd ignores it otherwise)
    assert forever.state({"pwdReset": ["TRUE"]}, now)["must_change"] is False
    enforcing = OpenLdap(lambda _dn: PwdPolicy(lockout=True, must_change=True))
    assert enforcing.state({"pwdReset": ["TRUE"]}, now)["must_change"] is True
    # an unknown policy (or pwdMustChange neither TRUE nor FALSE): must-change is neither claimed nor denied
    for unknown in (OpenLdap(lambda _dn: None), OpenLdap(lambda _dn: PwdPolicy(must_change=None))):
        s = unknown.state({"pwdReset": ["TRUE"]}, now)
        assert (s["must_change"], s["must_change_unknown"]) == (False, True)
        assert unknown.must_change_enforced({"pwdReset": ["TRUE"]}) is None
        assert unknown.state({}, now)["must_change_unknown"] is False
    assert enforcing.state({"pwdReset": ["TRUE"]}, now)["must_change_unknown"] is False
    assert forever.state({"pwdEndTime": ["20251231000000Z"]}, now)["expired"] is True


def test_ad_states() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ad = ActiveDirectory(hints_critical=True)
    s = ad.state(
        {
            "userAccountControl": ["514"],
            "msDS-User-Account-Control-Computed": ["16"],
            "pwdLastSet": ["0"],
            "accountExpires": ["132223104000000000"],
        },
        now,
    )
    assert s == {
        "locked": True,
        "lock_reason": "failures",
        "disabled": True,
        "expired": True,
        "must_change": True,
        "must_change_unknown": False,
        "password_expired": False,
        "password_expires": "",
    }
    s = ad.state(
        {
            "userAccountControl": ["512"],
            "msDS-User-Account-Control-Computed": ["0"],
            "pwdLastSet": ["1"],
            "accountExpires": ["9223372036854775807"],
        },
        now,
    )
    assert not any(v for k, v in s.items() if k != "lock_reason")


def test_base_dn_containment() -> None:
    assert _under("uid=a,ou=People,dc=example,dc=org", "ou=people,dc=example,dc=org")
    assert not _under("uid=a,ou=external,dc=example,dc=org", "ou=people,dc=example,dc=org")
    assert not _under("ou=people,dc=example,dc=org", "ou=people,dc=example,dc=org")
    assert not _under("uid=a,ou=people,dc=example,dc=org,dc=evil", "ou=people,dc=example,dc=org")


def test_target_config_requires_tls() -> None:
    LdapTarget.model_validate(BASE)
    LdapTarget.model_validate(BASE | {"url": "ldap://h:389", "start_tls": True})
    for bad in (
        {"url": "ldap://h:389"},
        {"start_tls": True},
        {"flavor": "novell"},
        {"typo": 1},
        {"base_dn": "not a dn"},
    ):
        with pytest.raises(ValidationError):
            LdapTarget.model_validate(BASE | bad)


def test_generated_passwords_have_every_class() -> None:
    for _ in range(50):
        pw = generate_password(20)
        assert len(pw) == 20
        assert any(c.isupper() for c in pw) and any(c.islower() for c in pw) and any(c.isdigit() for c in pw)
        assert any(not c.isalnum() for c in pw)


def test_mail_text_is_bilingual_and_has_time_channel_and_contact() -> None:
    subject, body = render("password_reset", "alice", "portal", datetime(2026, 5, 4, 3, 2, tzinfo=UTC), "the desk (x1)")
    assert "reset" in subject and "opnieuw ingesteld" in subject
    assert "2026-05-04 03:02 UTC" in body and "self-service portal" in body and "selfserviceportaal" in body
    assert "This wasn't you? Contact the desk (x1)" in body and "Was u dit niet?" in body


def test_the_dutch_part_names_the_service_desk_in_dutch() -> None:
    """``service_desk_nl`` (else "de servicedesk" for the default, else the one text) in the
    Dutch half of notifications and code mails; it said "neem contact op met the service desk"."""
    cfg = MailTarget.model_validate({"connector": "mail", "host": "h", "sender": "a@b.nl", "starttls": False})
    assert cfg.service_desk_texts == ("the service desk", "de servicedesk")
    named = cfg.model_copy(update={"service_desk": "IT (x1)", "service_desk_nl": "ICT (x1)"})
    assert named.service_desk_texts == ("IT (x1)", "ICT (x1)")
    only = cfg.model_copy(update={"service_desk": "Helpdesk 42"})
    assert only.service_desk_texts == ("Helpdesk 42", "Helpdesk 42")
    when = datetime(2026, 5, 4, 3, 2, tzinfo=UTC)
    _s, body = render("account_unlock", "alice", "portal", when, "the service desk", service_desk_nl="de servicedesk")
    english, dutch = body.split("\n-- \n")
    assert "Contact the service desk" in english and "contact op met de servicedesk" in dutch
    _s, code_body = render_code("reset", "alice", "123456", 15, "https://x/reset", "the service desk", "de servicedesk")
    english, dutch = code_body.split("\n-- \n")
    assert "contact the service desk" in english and "contact op met de servicedesk" in dutch


def test_mail_config_refuses_credentials_without_tls() -> None:
    with pytest.raises(ValidationError):
        MailTarget.model_validate(
            {
                "connector": "mail",
                "host": "h",
                "sender": "a@b.c",
                "starttls": False,
                "username": "u",
                "password": {"env": "P"},
            }
        )


def test_mail_message_is_well_formed_in_ascii_and_beyond() -> None:
    """``build_message`` (compat32, for speed) gives what ``EmailMessage`` gave: CRLF line
    ends, 7bit for ASCII, UTF-8 quoted-printable otherwise, an encoded non-ASCII subject, no
    ``>From`` mangling, and the headers a relay and a reader rely on."""
    import email
    import email.policy

    from connectors.mail import build_message

    ascii_body = "From here on: all fine.\n.\nsecond line\n"
    raw = build_message("desk@example.org", "a@example.org", "Unlocked", ascii_body, "account_unlock", "<1@x.org>")
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"Content-Transfer-Encoding: 7bit" in head and b'charset="us-ascii"' in head
    assert payload == ascii_body.replace("\n", "\r\n").encode()  # not ">From here on"
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert (msg["From"], msg["To"], msg["Message-ID"]) == ("desk@example.org", "a@example.org", "<1@x.org>")
    assert msg["Auto-Submitted"] == "auto-generated" and msg["X-Firstline-Kind"] == "account_unlock"
    assert msg["Date"].datetime is not None and msg["MIME-Version"] == "1.0"

    wide = "Uw account jos\u00e9 \u0141ukasz is ontgrendeld. " * 5 + "\n"  # non-ASCII and a line over 78
    raw = build_message("desk@example.org", "a@example.org", "Ontgrendeld \u2013 \u00e9", wide, "k", "<2@x.org>")
    assert raw.isascii() and b"quoted-printable" in raw and all(len(line) <= 78 for line in raw.split(b"\r\n"))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "Ontgrendeld \u2013 \u00e9"
    assert msg.get_content().replace("\r\n", "\n") == wide
