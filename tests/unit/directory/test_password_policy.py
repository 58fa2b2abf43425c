"""NIST SP 800-63B rules of connectors.password_policy, one by one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.password_policy import (
    MESSAGES,
    PasswordPolicy,
    PolicyViolation,
    blocklist,
    check_characters,
    is_common,
    message,
    typed_length,
)

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


@pytest.mark.parametrize(
    ("pw", "typed"),
    [
        ("ﷺ" * 9, 9),  # U+FDFA: 18 characters each after NFKC, one as typed
        ("ﬁ" * 8, 8),  # U+FB01 ligature: "fi" after NFKC
        ("Ｆｕｌｌｗｉｄｔｈ", 9),  # fullwidth letters: ASCII after NFKC, same count
        ("²½" * 4, 8),  # superscript two and one half: "2", "1⁄2" after NFKC
        ("e\u0301" * 8, 8),  # NFD: e + combining acute is one character after NFC
        ("\u00e9" * 8, 8),  # NFC é
        ("🐢" * 8, 8),  # emoji: one code point each
        ("a\u00a0b\u2003c d e", 9),  # NBSP, em space and space are characters like any other
    ],
)
def test_length_is_counted_as_typed_not_after_nfkc(pw: str, typed: int) -> None:
    assert typed_length(pw) == typed
    policy = PasswordPolicy(min_length=typed + 1, blocklist=False, check_personal_info=False)
    with pytest.raises(PolicyViolation) as err:
        policy.check(pw)
    assert err.value.reason == "too_short"
    PasswordPolicy(min_length=typed, blocklist=False, check_personal_info=False).check(pw)


def test_three_arabic_ligatures_do_not_pass_the_15_character_minimum() -> None:
    assert reason("ﷺﷺﷺ") == "too_short"
    assert reason("ﷺ" * 15) is None
    assert reason("ﷺ" * 129) == "too_long"  # max_length is counted as typed too (not 2322)


def test_nfc_and_nfd_spellings_are_the_same_current_password() -> None:
    nfc, nfd = "caf\u00e9 au lait du matin", "cafe\u0301 au lait du matin"
    assert reason(nfd, current=nfc) == "same_as_current"
    assert reason(nfc, current=nfd) == "same_as_current"


def test_blocklist_and_personal_checks_still_normalise() -> None:
    # fullwidth spelling of a common password, and of a personal name
    assert reason("ＱＷＥＲＴＹＵＩＯＰ１２３４５６") == "common_password"
    assert reason("ＪＯＨＡＮＮＡ in the spring garden") == "contains_personal_info"


@pytest.mark.parametrize(
    "pw",
    [
        "a fine long password\x00tail",  # NUL
        "a fine long password\ntail",  # line feed
        "a fine long password\x7ftail",  # DEL
        "a fine long password\x85tail",  # C1 next line
        "a fine long password \ud800 tail",  # lone surrogate: no UTF-8 form
    ],
)
def test_characters_that_cannot_travel_as_typed_are_refused(pw: str) -> None:
    assert reason(pw) == "invalid_characters"
    with pytest.raises(PolicyViolation):
        check_characters(pw)


@pytest.mark.parametrize("pw", ["Sommet lointain ²² orage", "½ ﬁ Ｗ ﷺ 🐢 e\u0301 \u00a0 tab-free text"])
def test_unusual_but_typeable_characters_are_accepted(pw: str) -> None:
    check_characters(pw)
    assert reason(pw) is None


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
    # One candidate per rule, each carrying a recognisable secret; every text in both
    # languages must name the rule and never echo the candidate.
    cases = {
        "too_short": ("short secret", {}),
        "too_long": ("long secret " * 12, {}),
        "common_password": ("qwertyuiop123456", {}),
        "contains_personal_info": ("Johanna secret in the garden", {}),
        "same_as_current": ("same secret garden tulip", {"current": "same secret garden tulip"}),
        "invalid_characters": ("control secret\x01 in the garden", {}),
    }
    for code, (candidate, kw) in cases.items():
        with pytest.raises(PolicyViolation) as err:
            POLICY.check(candidate, personal=PERSONAL, **kw)  # type: ignore[arg-type]
        exc = err.value
        assert exc.reason == code
        for text in (str(exc), exc.text("en"), exc.text("nl")):
            assert text and candidate not in text and "secret" not in text, (code, text)
        if code == "too_short":
            assert "15" in exc.text("nl") and "15" in str(exc)
        if code == "too_long":
            assert "128" in exc.text("nl")
    assert message("unknown_code") == "The request was refused."


def test_policy_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        PasswordPolicy(max_length=32)
    with pytest.raises(ValidationError):
        PasswordPolicy(min_length=4)
    with pytest.raises(ValidationError):
        PasswordPolicy.model_validate({"min_length": 15, "typo": 1})
