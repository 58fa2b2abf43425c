"""Keeping secrets out of every store: a per-run scrubber of known secret values.

A secret can reach a store in another spelling than the one Firstline holds: a library
may quote it (``repr``: ``'p\\xe4ss'``), JSON-escape it, URL-encode it or echo only
one line of a multi-line credential (a private key). ``Scrubber`` finds each value in
all of those spellings (see ``spellings``). What it does with a find depends on the store:
a free-text message for the ledger (step message, resolution note, a text output) is
replaced as a whole by ``WITHHELD`` (``Scrubber.message`` / ``value``) — masking in place
would leave the words around the secret, an oracle ("too [REDACTED]: use at least 15");
a value that is itself a secret, or sits under a secret-looking key, becomes ``[REDACTED]``;
the operator log (``runner.oplog``, operator-only) and operator-facing ``inventory check``
lines mask in place (``Scrubber.text``), keeping the rest of the line for diagnosis.

``safe_validation_errors`` renders a pydantic ``ValidationError`` without the input
values it carries (``input_value=...`` in ``str(exc)``): every place that turns a
pydantic error into a message (inventory, runbooks, settings, the log writer) uses it.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

REDACTED = "[REDACTED]"
# A free-text message (step message, resolution note, output text) that contained a secret
# is replaced as a whole: masking the secret inside it would show what surrounds it, and the
# surroundings give the secret away ("The new password is too [REDACTED]" -> "short").
WITHHELD = {
    "en": "(message withheld: it contained a secret value)",
    "nl": "(melding niet getoond: er stond een geheime waarde in)",
}
SECRET_KEY_HINTS = ("password", "passwd", "secret", "token", "credential", "private_key", "api_key")
HIDDEN = "(value not shown)"
MIN_MASKED = 4  # shorter input values are not masked in validation messages (no secret is that short)
_MIN_LINE = 8  # lines of a multi-line secret shorter than this are not masked on their own


def spellings(value: str) -> set[str]:
    """*value* and the forms a library may print it in: Unicode-normalised (NFC, NFD,
    NFKC), JSON-escaped, ``repr`` of the text and of its UTF-8 bytes, URL-encoded, and
    each line (8+ characters) of a multi-line value."""
    out = {value}
    for form in ("NFC", "NFD", "NFKC"):  # SASLprep and other libraries normalise before they echo
        out.add(unicodedata.normalize(form, value))
    out.add(json.dumps(value)[1:-1])
    out.add(json.dumps(value, ensure_ascii=False)[1:-1])
    out.add(repr(value)[1:-1])
    out.add(value.encode("unicode_escape").decode("ascii"))
    out.add(repr(value.encode("utf-8"))[2:-1])
    out.add(urllib.parse.quote(value, safe=""))
    out.add(urllib.parse.quote_plus(value, safe=""))
    if "\n" in value:
        for line in value.splitlines():
            line = line.strip()
            if len(line) >= _MIN_LINE:
                out.add(line)
    return {s for s in out if s}


_FOLLOWED: tuple[frozenset[str], frozenset[str]] | None = None


def _followed_spellings(raw: frozenset[str]) -> frozenset[str]:
    """Every spelling of the values the followed sources give (connector credentials,
    which the process holds anyway): worked out again only when that set changes, not
    for each run's new ``Scrubber`` (about 0.1 ms a run). Only the last set is kept."""
    global _FOLLOWED
    last = _FOLLOWED
    if last is not None and last[0] == raw:
        return last[1]
    forms = frozenset(form for v in raw for form in spellings(v))
    _FOLLOWED = (raw, forms)
    return forms


class Scrubber:
    """Replaces every known secret value (and values under secret-looking keys) with [REDACTED].

    ``follow(source)`` adds a live source of secrets (a callable returning the values
    known *now*, e.g. ``SecretStore.values``): credentials resolved after the scrubber
    was built are masked too. Thread-safe.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._version = 0  # bumped whenever _values grows
        self._sources: list[Callable[[], Iterable[str]]] = []
        self._lock = threading.Lock()
        # (version, raw values the sources gave) -> every spelling, longest first; only the
        # last key is kept, so a secret the sources no longer give is dropped with it
        self._cache: tuple[tuple[int, frozenset[str]] | None, list[str]] = (None, [])
        for v in values:
            self.add(v)

    def add(self, value: Any) -> None:
        if isinstance(value, str) and value:
            forms = spellings(value)
            with self._lock:
                if not forms <= self._values:
                    self._values |= forms
                    self._version += 1

    def follow(self, source: Callable[[], Iterable[str]]) -> None:
        """Also mask every value *source()* returns at the time of each scrub."""
        with self._lock:
            self._sources.append(source)

    def _ordered(self) -> list[str]:
        """Every spelling of every secret known now, longest first.

        The sources are asked on every call (a credential resolved a moment ago counts); the
        spellings are recomputed only when the raw values or the added ones changed.
        """
        with self._lock:
            version = self._version
            sources = list(self._sources)
        raw = frozenset(v for source in sources for v in source() if isinstance(v, str) and v)
        key = (version, raw)
        cached_key, cached_list = self._cache
        if cached_key == key:
            return cached_list
        with self._lock:
            known = set(self._values)
        known |= _followed_spellings(raw)
        ordered = sorted(known, key=len, reverse=True)
        self._cache = (key, ordered)
        return ordered

    def contains(self, value: str) -> bool:
        """Does *value* hold any spelling of a known secret (in NFC, NFD or as given)?"""
        if value.isascii():  # its own NFC and NFD: one form to search (most values)
            return any(secret in value for secret in self._ordered())
        forms = {value, unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)}
        return any(secret in form for secret in self._ordered() for form in forms)

    def text(self, value: str) -> str:
        """*value* with each secret spelling replaced in place by ``[REDACTED]``.

        For the operator log only (``runner.oplog``, operator-facing detail lines): in place
        masking keeps the rest of the line, which an operator needs, but the words around
        the mask may hint at the secret. Stores that requesters, agents or auditors read
        use ``message`` / ``value`` instead."""
        for secret in self._ordered():
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def message(self, value: str, lang: str = "en") -> str:
        """A free-text message for a store (ticket, step row, audit event): *value*
        unchanged, or — when it holds a secret in any spelling — the fixed ``WITHHELD``
        text in *lang* (``en``/``nl``) as a whole, never a partial mask (no oracle)."""
        return WITHHELD.get(lang, WITHHELD["en"]) if self.contains(value) else value

    def value(self, value: Any, key: str | None = None, *, in_place: bool = False) -> Any:
        """A structured value for a store: under a secret-looking *key* ``[REDACTED]``; a
        text that IS a secret ``[REDACTED]``; a text that holds one ``WITHHELD`` as a whole
        (``message``); containers scrubbed leaf by leaf. *in_place*: mask texts with
        ``text`` instead (the operator log only, ``runner.oplog``)."""
        if key is not None and any(h in key.lower() for h in SECRET_KEY_HINTS) and value not in (None, "", False, True):
            return REDACTED
        if isinstance(value, str):
            if in_place:
                return self.text(value)
            if not self.contains(value):
                return value
            return REDACTED if self.text(value).strip() == REDACTED else self.message(value)
        if isinstance(value, dict):
            return {k: self.value(v, str(k), in_place=in_place) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v, in_place=in_place) for v in value]
        return value


def _leaves(value: Any, every: bool = True) -> Iterable[str]:
    """Text leaves of *value*: all of them for a scalar or a list (the value in error);
    inside a mapping (a model-level error gets the whole mapping) only those under
    secret-looking keys, so that a validator's message may still name other values."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        if every:
            yield str(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, isinstance(k, str) and any(h in k.lower() for h in SECRET_KEY_HINTS))
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from _leaves(v, every)


def _figures(ctx: dict[str, Any]) -> set[str]:
    """A rule's own numbers as its message prints them ("greater than 0"): the schema's, not
    the input's, so a message keeps them even when the input was that number."""
    out = set()
    for v in ctx.values():
        if isinstance(v, int | float) and not isinstance(v, bool):
            out.add(str(v))
            if isinstance(v, float) and v.is_integer():
                out.add(str(int(v)))
    return out


def safe_validation_errors(exc: Any) -> list[tuple[tuple[Any, ...], str, str]]:
    """``(loc, msg, type)`` for each error of a pydantic ``ValidationError``, with no
    input value in them: the input is left out, and any of its text that a message
    quotes (``Input tag 'x'...``, a validator's ``ValueError`` text) is replaced by
    ``(value not shown)``. Location keys are kept (they name fields, not values)."""
    out = []
    for err in exc.errors(include_url=False, include_input=True, include_context=True):
        msg = str(err.get("msg", ""))
        found = set(_leaves(err.get("input")))
        found -= _figures(err.get("ctx") or {})
        if err.get("type") == "union_tag_invalid":  # "Input tag 'x' found ..." quotes the value
            found.add(str((err.get("ctx") or {}).get("tag", "")))
        # Values of 4 characters or more (no credential is shorter): masking every "/" of the
        # rule that refused the cleanup path "/" left "(no '..', '(value not shown)', ...)"
        leaves = sorted({s for s in found if len(s) >= MIN_MASKED}, key=len, reverse=True)
        for leaf in leaves:
            # Whole occurrences only: the input "str" must not eat the word "string".
            msg = re.sub(rf"(?<!\w){re.escape(leaf)}(?!\w)", HIDDEN, msg)
        out.append((tuple(err.get("loc", ())), msg, str(err.get("type", ""))))
    return out


def describe_validation_error(exc: Any, prefix: str = "") -> str:
    """One line per error, ``<prefix>.<loc>: <msg>``, with no input value."""
    parts = []
    for loc, msg, _type in safe_validation_errors(exc):
        where = ".".join(str(p) for p in loc)
        parts.append(f"{prefix}{'.' if prefix and where else ''}{where}: {msg}")
    return "; ".join(parts)


def describe_yaml_error(exc: Any) -> str:
    """``line L, column C: <problem>`` for a PyYAML error, without the source snippet
    that ``str(exc)`` quotes (the offending line may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "not valid YAML"
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{f'{context}: ' if context else ''}{problem}"


def is_secret_setting(key: str) -> bool:
    """True for a setting name that holds a secret: ``password``, ``bind_password``,
    ``private_key``, ``client_secret``... (ends with a hint; ``password_policy`` does not)."""
    k = key.lower()
    return any(k == h or k.endswith("_" + h) or k.endswith(h) for h in SECRET_KEY_HINTS)


def secret_field_message(loc: tuple[Any, ...], msg: str, err_type: str) -> str:
    """The message for a validation error at *loc*: a field whose name says it holds a
    secret and that was not given as a reference gets the reference rule instead."""
    if any(isinstance(p, str) and is_secret_setting(p) for p in loc) and err_type in (
        "dict_type",
        "model_type",
        "model_attributes_type",
        "string_type",
    ):
        return "a secret must be a reference {env: NAME} or {file: PATH}, never written inline (value not shown)"
    return msg
