"""Every ppolicy error and AD extended error maps to its own reason (issue 7, item 6)."""

from __future__ import annotations

import pytest

from connectors.ldap_controls import PPOLICY_OID, encode_ppolicy, refusal, stated_figure
from connectors.password_policy import MESSAGES, REQUESTER_REASONS

GENERIC = "Password fails quality checking policy"  # slapd's text for errors 5, 6 and 9 alike


def pp_result(code: int, text: str = GENERIC) -> dict[str, object]:
    return {"result": 19, "message": text, "controls": {PPOLICY_OID: {"value": encode_ppolicy(code)}}}


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (0, "password_expired"),
        (1, "locked"),
        (2, "change_after_reset"),
        (3, "change_not_allowed"),
        (4, "must_supply_old_password"),
        (5, "quality"),
        (6, "too_short"),
        (7, "too_young"),
        (8, "in_history"),
        (9, "too_long"),
        (42, "rejected"),  # unknown code: not guessed as "quality"
    ],
)
def test_every_ppolicy_error_has_its_reason_whatever_the_text(code: int, reason: str) -> None:
    assert refusal(pp_result(code), "openldap") == reason
    assert refusal(pp_result(code, "some other text"), "openldap") == reason
    if reason != "rejected":
        assert reason in MESSAGES, reason  # a plain text exists for each


def test_same_as_current_is_told_apart_from_history_by_text() -> None:
    assert refusal(pp_result(8, "Password is not being changed from existing value"), "openldap") == "same_as_current"


def test_openldap_without_a_control_falls_back_to_the_text() -> None:
    assert refusal({"result": 19, "message": "Password is too short for policy"}, "openldap") == "too_short"
    assert refusal({"result": 19, "message": GENERIC}, "openldap") == "quality"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            "0000052D: Constraint violation - check_password_restrictions: the password is too short. "
            "It should be equal or longer than 12 characters!",
            "too_short",
        ),
        (
            "0000052D: Constraint violation - check_password_restrictions: the password is too long. "
            "It should be equal or shorter than 256 characters!",
            "too_long",
        ),
        (
            "0000052D: Constraint violation - check_password_restrictions: the password does not meet the "
            "complexity criteria!",
            "complexity",
        ),
        (
            "0000052D: Constraint violation - check_password_restrictions: the password was already used (in history)!",
            "in_history",
        ),
        ("0000052D: Constraint violation - check_password_restrictions: password is too young to change!", "too_young"),
        ("00000056: Constraint violation - The old password specified doesn't match!", "wrong_password"),
        ("0000052D: AtrErr: DSID-03191083, #1:\n\t0: 0000052D: DSID-03191083, problem 1005", "quality"),
        ("00000056: AtrErr: DSID-03190F80, #1: problem 1005 (CONSTRAINT_ATT_TYPE)", "wrong_password"),
        ("00000775: SecErr: DSID-..., data 775", "locked"),
        ("00000005: SecErr: DSID-03152E29, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0", "insufficient_access"),
        ("0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0", "unwilling"),
    ],
)
def test_ad_extended_errors_map_to_their_reason(message: str, reason: str) -> None:
    assert refusal({"result": 19, "message": message}, "active_directory") == reason


def test_samba_states_its_own_figures() -> None:
    assert stated_figure({"message": "... It should be equal or longer than 12 characters!"}) == 12
    assert stated_figure({"message": "... equal or shorter than 256 characters!"}) == 256
    assert stated_figure({"message": "0000052D: AtrErr: DSID-03191083"}) is None


def test_requester_fixable_reasons_are_marked() -> None:
    # locked: a lockout after failed sign-ins, which the person lifts with a code ("Locked out?")
    for reason in (
        "too_short",
        "too_long",
        "in_history",
        "too_young",
        "quality",
        "complexity",
        "wrong_password",
        "locked",
    ):
        assert reason in REQUESTER_REASONS
    for reason in ("not_allowed", "disabled", "insufficient_access", "unwilling"):
        assert reason not in REQUESTER_REASONS
