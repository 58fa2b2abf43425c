"""Who may be named, and how stored text is shown.

``principal()`` is the rule for every person id the runner records (requester, acting
person, ``--as``): the account-name rule of ``runner.runbook.ACCOUNT_PATTERN`` — ASCII
letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit, at most 64
characters — the same rule as account parameters (``runner.params``) and the directory
connector's ``validate_account_name``; optionally qualified the way ``runner.routing``
reads sign-in names: ``name@dns.domain`` or ``NETBIOS\name`` (whether the domain is one
this service desk serves is ``runner.routing``'s check). ``free_text()`` is the rule for short labels a
person types (``runbooks vet --by``): printable text, no control, format or bidi
characters.

``shown()`` neutralises text read back from the ledger before it reaches a terminal or
a CSV cell: control characters (C0, DEL, C1 — so ``\\n``, ``\\r``, ``\\t`` and ANSI
escapes), line/paragraph separators, bidi embeddings/overrides/isolates
(U+202A–U+202E, U+2066–U+2069) and other invisible format characters (zero-width
joiner...) become ``\\uXXXX`` escapes, so one stored value prints as one visible line.
Rich markup is not interpreted by ``shown()``; callers print with ``markup=False``.
"""

from __future__ import annotations

import re
import unicodedata

from runner.errors import ParameterError
from runner.runbook import ACCOUNT_PATTERN

__all__ = ["free_text", "principal", "shown"]

_NAME = ACCOUNT_PATTERN.removeprefix("^").removesuffix("$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PRINCIPAL = re.compile(
    rf"(?:[A-Za-z0-9][A-Za-z0-9-]{{0,14}}\\)?{_NAME}|{_NAME}@{_LABEL}(?:\.{_LABEL})*",
    re.ASCII,
)
MAX_PRINCIPAL = 128  # ticket.requester / audit_event.actor columns
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


# Characters that draw nothing though Unicode counts them as letters or symbols: the Hangul
# fillers, the braille blank. A text of only these (and combining marks) shows nothing.
_BLANK_LOOKALIKES = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _hidden(ch: str) -> bool:
    return unicodedata.category(ch) in _HIDDEN_CATEGORIES


def _shows_something(text: str) -> bool:
    """Whether *text* has a character that is drawn: not white space, not a mark on nothing
    (Mn/Me alone), not a blank look-alike."""
    return any(
        not ch.isspace() and unicodedata.category(ch) not in ("Mn", "Me") and ch not in _BLANK_LOOKALIKES for ch in text
    )


def principal(value: object, *, what: str = "requester") -> str:
    """Return *value* if it is a valid person id; raise ``ParameterError`` (naming *what*,
    never echoing the value) otherwise."""
    if not isinstance(value, str) or not value:
        raise ParameterError("%(what)s must name an account (letters, digits, '.', '_' and '-')", what=what)
    if len(value) > MAX_PRINCIPAL or not _PRINCIPAL.fullmatch(value):
        raise ParameterError(
            "%(what)s is not a valid account name (letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 64; optionally name@domain or DOMAIN\\name)",
            what=what,
        )
    return value


def free_text(value: object, *, what: str, limit: int = 128) -> str:
    """Return *value* stripped if it is printable text of 1..*limit* characters."""
    if not isinstance(value, str) or not value.strip():
        raise ParameterError("%(what)s must not be empty", what=what)
    value = value.strip()
    if len(value) > limit:
        raise ParameterError("%(what)s is too long (at most %(max)s characters)", what=what, max=limit)
    if any(_hidden(ch) for ch in value):
        raise ParameterError("%(what)s contains control, invisible or text-direction characters", what=what)
    if not _shows_something(value):  # "\u2800" or "\u115f": accepted, and shows nothing
        raise ParameterError("%(what)s must not be empty", what=what)
    return value


def shown(value: object, limit: int | None = None) -> str:
    """*value* as one visible line: hidden characters escaped as ``\\uXXXX``; optionally cut."""
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return "".join(f"\\u{ord(ch):04x}" if _hidden(ch) else ch for ch in text)
