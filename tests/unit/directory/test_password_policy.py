"""NIST SP 800-63B rules of connectors.password_policy, one by one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.password_policy import MESSAGES, PasswordPolicy, PolicyViolation, blocklist, is_common, message

POLICY = PasswordPolicy()
PERSONAL = ["jdevries", "Johanna", "de Vries", "johanna.devries@example.org"]


def reason(pw: str, **kw: object) -> str | None:
    try:
        POLICY.check(pw, personal=PERSONAL, **kw)  # type: ignore[arg-type]
    except PolicyViolation as exc:
        return exc.reason
    return None


def test_default_minimum_is_15_and_8_with_mfa() -> None:
    assert reason("a tulip garden") == "too_short"  # 14
    assert reason("ab tulip garden") is None  # 15
    assert reason("Tulip 9!", mfa_verified=True) is None
    assert reason("Tulip 9", mfa_verified=True) == "too_short"


def test_long_unicode_and_spaces_are_accepted_and_max_is_enforced() -> None:
    assert reason("één twee drie vier vijf zes zeven acht negen tien elf twaalf dertien") is None
    assert reason("x" * 64 + " tail") is None
    assert reason("y" * 129) == "too_long"
    assert reason("🐢🐢🐢🐢🐢🐢🐢🐢🐢🐢🐢🐢🐢🐢🐢") is None


def test_length_is_counted_after_nfkc() -> None:
    # U+FB01 (ﬁ ligature) becomes "fi": two characters after NFKC
    assert reason("ﬁ" * 8) is None
    assert reason("ﬁ" * 7) == "too_short"


def test_no_composition_rules() -> None:
    assert reason("only lower case letters here") is None


def test_common_passwords_are_refused_case_insensitively() -> None:
    assert reason("QWERTYUIOP123456") == "common_password"
    assert reason("qwertyuiop123456") == "common_password"
    assert is_common("Password123") and not is_common("zebra tulip wardrobe kettle")


def test_blocklist_is_large_and_loaded_once() -> None:
    first = blocklist()
    assert len(first) >= 100_000
    assert blocklist() is first


def test_blocklist_can_be_switched_off() -> None:
    PasswordPolicy(blocklist=False).check("qwertyuiop123456")


@pytest.mark.parametrize(
    "pw",
    [
        "my name is Johanna ok",
        "J0h4nn4 in the garden",
        "devries family 2024",
        "jdevr1e$ 123456789",
        "JOHANNA.DEVRIES spring!",
    ],
)
def test_personal_information_with_substitutions_is_refused(pw: str) -> None:
    assert reason(pw) == "contains_personal_info"


def test_short_personal_tokens_are_ignored() -> None:
    assert reason("the de facto standard is fine", mfa_verified=False) is None  # "de" < 4 characters


def test_equal_to_current_is_refused() -> None:
    assert reason("a perfectly fine passphrase", current="a perfectly fine passphrase") == "same_as_current"
    assert reason("a perfectly fine passphrase", current="another one entirely") is None


def test_every_reason_has_english_and_dutch_text_without_the_password() -> None:
    for code, texts in MESSAGES.items():
        assert texts["en"] and texts["nl"], code
    try:
        POLICY.check("short secret")
    except PolicyViolation as exc:
        assert "short secret" not in str(exc) and "short secret" not in exc.text("nl")
        assert "15" in exc.text("nl")
    assert message("unknown_code") == "The request was refused."


def test_policy_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        PasswordPolicy(max_length=32)
    with pytest.raises(ValidationError):
        PasswordPolicy(min_length=4)
    with pytest.raises(ValidationError):
        PasswordPolicy.model_validate({"min_length": 15, "typo": 1})
