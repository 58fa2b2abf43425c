"""NIST SP 800-63B password checks, applied before a directory ever sees the candidate.

Rules, each with its own reason code (``MESSAGES`` holds English and Dutch texts):

* ``too_short``   — fewer than ``min_length`` characters (default 15; ``min_length_with_mfa``,
  default 8, when a second factor was proven). Length counts the characters the user
  typed: Unicode code points after NFC (canonical composition, so ``e`` + combining acute
  counts as one, like ``é``) and never after NFKC, which expands ``ﷺ`` to 18 and ``ﬁ`` to 2.
  Spaces and any script are welcome; there are no composition rules.
* ``too_long``    — more than ``max_length`` (default 128, never below 64), counted the same way.
* ``invalid_characters`` — a NUL, another control character, or text that is not valid
  Unicode (a lone surrogate): such a password cannot be sent byte for byte or typed at a
  sign-in screen, so it is refused rather than changed.

Normalisation (NFKC, case folding, the substitutions below) is applied only where two
spellings must count as the same: the blocklist and the personal-information comparison.
* ``common_password`` — in the shipped blocklist (``data/common-passwords.txt.gz``, ~178,000
  entries, case-insensitive; see tools/build_password_blocklist.py for its provenance).
* ``contains_personal_info`` — after case folding and the substitutions 0→o 1→l 3→e 4→a 5→s
  7→t $→s @→a !→i, contains the login, given name, surname or mail local-part (tokens of
  four characters or more).
* ``same_as_current`` — equal to the current password after NFC, where it is known (self-change).

The directory's own policy (history, minimum age, AD complexity) is checked by the
directory afterwards; its refusals are translated in ``connectors.ldap_controls``.
"""

from __future__ import annotations

import gzip
import hmac
import re
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MESSAGES",
    "REQUESTER_REASONS",
    "PasswordPolicy",
    "PolicyViolation",
    "blocklist",
    "check_characters",
    "message",
    "typed_length",
]

BLOCKLIST_PATH = Path(__file__).with_name("data") / "common-passwords.txt.gz"

MESSAGES: dict[str, dict[str, str]] = {
    "too_short": {
        "en": "The new password is too short: use at least {min} characters. A few unrelated words "
        "with spaces make a long password that is easy to remember.",
        "nl": "Het nieuwe wachtwoord is te kort: gebruik minstens {min} tekens. Een paar losse woorden "
        "met spaties geven een lang wachtwoord dat makkelijk te onthouden is.",
    },
    "too_long": {
        "en": "The new password is too long: use at most {max} characters.",
        "nl": "Het nieuwe wachtwoord is te lang: gebruik hoogstens {max} tekens.",
    },
    "common_password": {
        "en": "The new password is on a list of commonly used or leaked passwords. Choose another one.",
        "nl": "Het nieuwe wachtwoord staat op een lijst van veelgebruikte of uitgelekte wachtwoorden. Kies een ander.",
    },
    "contains_personal_info": {
        "en": "The new password contains your name, account name or e-mail name. Choose one without them.",
        "nl": "Het nieuwe wachtwoord bevat uw naam, accountnaam of e-mailnaam. Kies er een zonder.",
    },
    "invalid_characters": {
        "en": "The password contains a character that cannot be used in a password (such as a control "
        "character). Choose one made of letters, digits, spaces and symbols.",
        "nl": "Het wachtwoord bevat een teken dat niet in een wachtwoord kan (zoals een stuurteken). "
        "Kies er een met letters, cijfers, spaties en leestekens.",
    },
    "same_as_current": {
        "en": "The new password is the same as the current one. Choose a different password.",
        "nl": "Het nieuwe wachtwoord is gelijk aan het huidige. Kies een ander wachtwoord.",
    },
    "in_history": {
        "en": "The new password was used recently. Choose one you have not used before.",
        "nl": "Het nieuwe wachtwoord is onlangs al gebruikt. Kies er een dat u nog niet eerder gebruikte.",
    },
    "quality": {
        "en": "The directory refused the new password under its password rules. Choose a longer, different password.",
        "nl": "De directory weigert het nieuwe wachtwoord volgens haar wachtwoordregels. Kies een langer, "
        "ander wachtwoord.",
    },
    "complexity": {
        "en": "The directory requires a mix of character types (for example capitals, lower case, digits "
        "or symbols) and does not accept the account or display name in the password.",
        "nl": "De directory vereist een mix van tekensoorten (bijvoorbeeld hoofdletters, kleine letters, "
        "cijfers of leestekens) en accepteert de account- of weergavenaam niet in het wachtwoord.",
    },
    "too_young": {
        "en": "The password was changed too recently to change it again. Try again later.",
        "nl": "Het wachtwoord is te kort geleden gewijzigd om het nu opnieuw te wijzigen. Probeer het later.",
    },
    "wrong_password": {
        "en": "The current password is not correct.",
        "nl": "Het huidige wachtwoord klopt niet.",
    },
    "locked": {
        "en": "The account is locked after failed sign-ins. Unlock it first ('Locked out?' on the sign-in page "
        "sends a code by e-mail), then change the password.",
        "nl": "Het account is geblokkeerd na mislukte aanmeldingen. Ontgrendel het eerst ('Buitengesloten?' op de "
        "aanmeldpagina stuurt een code per e-mail) en wijzig daarna het wachtwoord.",
    },
    "disabled": {
        "en": "The account is disabled; the service desk can help.",
        "nl": "Het account is uitgeschakeld; de servicedesk kan helpen.",
    },
    "expired": {
        "en": "The account has expired; the service desk can help.",
        "nl": "Het account is verlopen; de servicedesk kan helpen.",
    },
    "password_expired": {
        "en": "Your password has expired, so it can no longer be used to change it. Set a new password "
        'with "forgot password" (the password-reset request) instead.',
        "nl": "Uw wachtwoord is verlopen en kan daarom niet meer gebruikt worden om het te wijzigen. Stel een "
        'nieuw wachtwoord in met "wachtwoord vergeten" (de aanvraag om uw wachtwoord opnieuw in te stellen).',
    },
    "directory_too_short": {
        "en": "The new password is too short for the directory: it requires at least {min} characters. "
        "A few unrelated words with spaces make a long password that is easy to remember.",
        "nl": "Het nieuwe wachtwoord is te kort voor de directory: die vereist minstens {min} tekens. "
        "Een paar losse woorden met spaties geven een lang wachtwoord dat makkelijk te onthouden is.",
    },
    "directory_too_short_unknown": {
        "en": "The new password is too short for the directory's own rules. Choose a longer one.",
        "nl": "Het nieuwe wachtwoord is te kort volgens de regels van de directory. Kies een langer wachtwoord.",
    },
    "directory_too_long": {
        "en": "The new password is too long for the directory: it accepts at most {max} characters.",
        "nl": "Het nieuwe wachtwoord is te lang voor de directory: die accepteert hoogstens {max} tekens.",
    },
    "directory_too_long_unknown": {
        "en": "The new password is too long for the directory's own rules. Choose a shorter one.",
        "nl": "Het nieuwe wachtwoord is te lang volgens de regels van de directory. Kies een korter wachtwoord.",
    },
    "directory_minimum": {
        "en": "The directory requires at least {min} characters.",
        "nl": "De directory vereist minstens {min} tekens.",
    },
    "change_after_reset": {
        "en": "The password was reset and must be changed first: sign in once and choose a new password, "
        "or ask for a new reset.",
        "nl": "Het wachtwoord is opnieuw ingesteld en moet eerst gewijzigd worden: meld u aan en kies een "
        "nieuw wachtwoord, of vraag een nieuwe reset aan.",
    },
    "must_change": {
        "en": "The password must be changed at the next sign-in; use the temporary password as the current one.",
        "nl": "Het wachtwoord moet bij de volgende aanmelding gewijzigd worden; gebruik het tijdelijke wachtwoord "
        "als huidige.",
    },
    "change_not_allowed": {
        "en": "The directory does not let this account change its own password; the service desk can reset it.",
        "nl": "De directory staat niet toe dat dit account zijn eigen wachtwoord wijzigt; de servicedesk kan het "
        "opnieuw instellen.",
    },
    "must_supply_old_password": {
        "en": "The directory requires the current password for this change. Give the current password.",
        "nl": "De directory vereist het huidige wachtwoord voor deze wijziging. Geef het huidige wachtwoord op.",
    },
    "not_allowed": {
        "en": "This account cannot be handled automatically; the service desk will help.",
        "nl": "Dit account kan niet automatisch worden behandeld; de servicedesk helpt u verder.",
    },
}


PASSWORD_CHOICE_REASONS = frozenset(
    {
        "too_short",
        "too_long",
        "common_password",
        "contains_personal_info",
        "same_as_current",
        "invalid_characters",
        "in_history",
        "quality",
        "complexity",
    }
)
"""Refusals of the chosen password itself: another choice fixes them (``runner.selfservice``
gives a code back for them)."""

REQUESTER_REASONS = PASSWORD_CHOICE_REASONS | frozenset(
    {
        "too_young",
        "wrong_password",
        # a lockout after failed sign-ins, which the person lifts with a code ("Locked out?");
        # an administrator's lock is refused as "disabled" before this (LdapConnector._target)
        "locked",
        "change_after_reset",
        "must_change",
        "must_supply_old_password",
        "password_expired",
    }
)
"""Reasons the requester can fix by trying again (``ConnectorError.requester_action``)."""


def message(reason: str, lang: str = "en", **values: object) -> str:
    """The plain-language text for *reason* in *lang* (English when unknown)."""
    texts = MESSAGES.get(reason)
    if texts is None:
        return "The request was refused."
    return texts.get(lang, texts["en"]).format(**values)


class PasswordPolicy(BaseModel):
    """Per-target password rules (inventory ``password_policy:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_length: int = Field(default=15, ge=8, le=64)
    min_length_with_mfa: int = Field(default=8, ge=8, le=64)
    max_length: int = Field(default=128, ge=64, le=1024)
    blocklist: bool = True
    check_personal_info: bool = True

    def check(
        self,
        password: str,
        *,
        mfa_verified: bool = False,
        personal: Iterable[str] = (),
        current: str | None = None,
    ) -> None:
        """Raise ``PolicyViolation`` for the first rule *password* breaks."""
        check_characters(password)
        typed = typed_length(password)
        minimum = self.min_length_with_mfa if mfa_verified else self.min_length
        if typed < minimum:
            raise PolicyViolation("too_short", min=minimum)
        if typed > self.max_length:
            raise PolicyViolation("too_long", max=self.max_length)
        if current is not None and _surrogate_free(current):
            same = hmac.compare_digest(
                unicodedata.normalize("NFC", current).encode(), unicodedata.normalize("NFC", password).encode()
            )
            if same:
                raise PolicyViolation("same_as_current")
        if self.blocklist and is_common(password):
            raise PolicyViolation("common_password")
        if self.check_personal_info and contains_personal_info(password, personal):
            raise PolicyViolation("contains_personal_info")


def typed_length(password: str) -> int:
    """The length the user typed: Unicode code points after NFC (never NFKC)."""
    return len(unicodedata.normalize("NFC", password))


def _surrogate_free(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_characters(password: str) -> None:
    """Raise ``PolicyViolation('invalid_characters')`` for text that cannot travel as typed.

    Refused: lone surrogates (no UTF-8 form, so no exact bytes exist), NUL and every other
    control character (Unicode category ``Cc``: C0, DEL, C1), which a sign-in screen cannot
    take. Everything else — spaces, NBSP, emoji, any script — is accepted unchanged.
    """
    if not _surrogate_free(password) or any(unicodedata.category(c) == "Cc" for c in password):
        raise PolicyViolation("invalid_characters")


class PolicyViolation(Exception):
    """A candidate password broke a rule; ``reason`` is the code, ``str()`` the English text."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(message(reason, "en", **values))
        self.reason = reason
        self.values = values

    def text(self, lang: str = "en") -> str:
        return message(self.reason, lang, **self.values)


_LEET = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "$": "s", "@": "a", "!": "i"})
_TOKEN_SPLIT = re.compile(r"[\s._\-+@,'\"()]+")


def _fold(text: str) -> str:
    # Applied to both sides; i/l/1/! collapse into one letter so "Mar1eke" matches "Marieke".
    return unicodedata.normalize("NFKC", text).casefold().translate(_LEET).replace("i", "l")


def contains_personal_info(password: str, personal: Iterable[str]) -> bool:
    """True when the folded password contains a folded personal token of ≥ 4 characters."""
    folded = _fold(password)
    squeezed = re.sub(r"\s+", "", folded)
    for value in personal:
        if not value:
            continue
        value = value.split("@", 1)[0] if "@" in value else value
        tokens = {_fold(t) for t in _TOKEN_SPLIT.split(value)} | {_fold(value)}
        for token in tokens:
            if len(token) >= 4 and (token in folded or token in squeezed):
                return True
    return False


_blocklist: frozenset[str] | None = None
_blocklist_lock = threading.Lock()


def blocklist() -> frozenset[str]:
    """The shipped common-password list, loaded once on first use (case-folded entries)."""
    global _blocklist  # a lazily built, process-wide immutable cache
    if _blocklist is None:
        with _blocklist_lock:
            if _blocklist is None:
                with gzip.open(BLOCKLIST_PATH, "rt", encoding="utf-8") as fh:
                    _blocklist = frozenset(line.rstrip("\n") for line in fh if line.strip())
    return _blocklist


def is_common(password: str) -> bool:
    """Case-insensitive, constant-time-per-lookup (hash set) blocklist membership."""
    return unicodedata.normalize("NFKC", password).casefold().strip() in blocklist()
