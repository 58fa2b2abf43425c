"""A request validation error (pydantic) as a sentence in the request's language.

pydantic's own ``msg`` is English ("Field required", "String should have at most 64
characters") and at times names internals ("a valid dictionary or instance of RunRequest"),
so it is never shown. Each error ``type`` maps to a template here that is translated first
and filled in afterwards (``%(field)s``, ``%(limit)s``: the field's location and the limit
from the error's ``ctx``). A type not listed here, a custom validator's text
(``value_error``, ``assertion_error``) and anything else get "is not valid". No template
shows a value that was sent; the choices of a literal or enum are shown (they are the
schema's). ``portal.errors._validation_message`` joins the sentences.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from portal import i18n


def N_(message: str) -> str:  # marks a template for extraction; translated where it is used
    return message


NOT_VALID = N_("%(field)s: is not valid")

# type -> template with %(field)s and, where the rule has one, %(limit)s or %(values)s
_RULES: dict[str, str] = {
    "missing": N_("%(field)s: is required"),
    "string_type": N_("%(field)s: must be text"),
    "string_sub_type": N_("%(field)s: must be text"),
    "string_unicode": N_("%(field)s: must be text (UTF-8)"),
    "string_pattern_mismatch": N_("%(field)s: does not have the expected format"),
    "int_type": N_("%(field)s: must be a whole number"),
    "int_parsing": N_("%(field)s: must be a whole number"),
    "int_from_float": N_("%(field)s: must be a whole number"),
    "int_parsing_size": N_("%(field)s: the number is too large"),
    "float_type": N_("%(field)s: must be a number"),
    "float_parsing": N_("%(field)s: must be a number"),
    "decimal_type": N_("%(field)s: must be a number"),
    "decimal_parsing": N_("%(field)s: must be a number"),
    "finite_number": N_("%(field)s: must be a finite number"),
    "bool_type": N_("%(field)s: must be true or false"),
    "bool_parsing": N_("%(field)s: must be true or false"),
    "dict_type": N_("%(field)s: must be a JSON object"),
    "model_type": N_("%(field)s: must be a JSON object"),
    "model_attributes_type": N_("%(field)s: must be a JSON object"),
    "dataclass_type": N_("%(field)s: must be a JSON object"),
    "list_type": N_("%(field)s: must be a list"),
    "tuple_type": N_("%(field)s: must be a list"),
    "set_type": N_("%(field)s: must be a list"),
    "none_required": N_("%(field)s: must be null"),
    "uuid_type": N_("%(field)s: must be a UUID"),
    "uuid_parsing": N_("%(field)s: must be a UUID"),
    "date_type": N_("%(field)s: must be a date"),
    "date_parsing": N_("%(field)s: must be a date"),
    "date_from_datetime_parsing": N_("%(field)s: must be a date"),
    "datetime_type": N_("%(field)s: must be a date and time"),
    "datetime_parsing": N_("%(field)s: must be a date and time"),
    "datetime_from_date_parsing": N_("%(field)s: must be a date and time"),
    "greater_than_equal": N_("%(field)s: must be at least %(limit)s"),
    "greater_than": N_("%(field)s: must be more than %(limit)s"),
    "less_than_equal": N_("%(field)s: must be at most %(limit)s"),
    "less_than": N_("%(field)s: must be less than %(limit)s"),
    "multiple_of": N_("%(field)s: must be a multiple of %(limit)s"),
    "literal_error": N_("%(field)s: must be one of: %(values)s"),
    "enum": N_("%(field)s: must be one of: %(values)s"),
    "extra_forbidden": N_("%(field)s: is not a field of this request"),
}
# the ctx key that holds each rule's limit
_LIMIT = {
    "greater_than_equal": "ge",
    "greater_than": "gt",
    "less_than_equal": "le",
    "less_than": "lt",
    "multiple_of": "multiple_of",
    "string_too_short": "min_length",
    "string_too_long": "max_length",
    "too_short": "min_length",
    "too_long": "max_length",
}
# one member of a union that did not match, as a noun: "must be text, a whole number or ..."
_KINDS: dict[str, str] = {
    "string_type": N_("text"),
    "int_type": N_("a whole number"),
    "int_parsing": N_("a whole number"),
    "int_from_float": N_("a whole number"),
    "float_type": N_("a number"),
    "float_parsing": N_("a number"),
    "bool_type": N_("a yes/no value (true or false)"),
    "bool_parsing": N_("a yes/no value (true or false)"),
    "dict_type": N_("a JSON object"),
    "list_type": N_("a list"),
    "none_required": N_("null"),
}
# the last part of a location that names a union's member, not a field ("params.key.int")
UNION_TAGS = frozenset({"str", "int", "bool", "float", "none", "list", "dict", "constrained-str", "constrained-int"})
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def root() -> str:
    """The location shown for the request as a whole (its body, not a field)."""
    return i18n.gettext("request")


def rule_text(kind: str, ctx: Mapping[str, Any] | None, field: str | None) -> str:
    """The sentence for one error of type *kind* at *field* (a location already fit to show;
    None: the request as a whole)."""
    ctx = ctx or {}
    limit = ctx.get(_LIMIT.get(kind, ""))
    values: dict[str, Any] = {"field": field or root(), "limit": limit}
    if kind in ("string_too_short", "too_short") and limit == 1:
        return i18n.gettext("%(field)s: must not be empty") % values
    if kind == "string_too_short" and isinstance(limit, int):
        return (
            i18n.ngettext(
                "%(field)s: is too short (at least %(limit)s character)",
                "%(field)s: is too short (at least %(limit)s characters)",
                limit,
            )
            % values
        )
    if kind == "string_too_long" and isinstance(limit, int):
        return (
            i18n.ngettext(
                "%(field)s: is too long (at most %(limit)s character)",
                "%(field)s: is too long (at most %(limit)s characters)",
                limit,
            )
            % values
        )
    if kind == "too_short" and isinstance(limit, int):
        return i18n.gettext("%(field)s: has too few entries (at least %(limit)s)") % values
    if kind == "too_long" and isinstance(limit, int):
        return i18n.gettext("%(field)s: has too many entries (at most %(limit)s)") % values
    if kind == "missing" and field is None:
        return i18n.gettext("%(field)s: the body is missing") % values
    if kind == "json_invalid":  # its location is a character position, not a field
        return i18n.gettext("%(field)s: the body is not valid JSON") % {"field": root()}
    template = _RULES.get(kind)
    if template is None or (kind in _LIMIT and limit is None):
        return i18n.gettext(NOT_VALID) % values
    if kind in ("literal_error", "enum"):
        choices = expected_values(str(ctx.get("expected", "")))
        if not choices:
            return i18n.gettext(NOT_VALID) % values
        values["values"] = ", ".join(choices)
    return i18n.gettext(template) % values


def union_text(kinds: Sequence[str], field: str | None) -> str | None:
    """One sentence for a value that matched no member of a union (one error per member), or
    None when a member failed on something other than its type (each is then shown alone)."""
    if not kinds or any(k not in _KINDS for k in kinds):
        return None
    nouns = list(dict.fromkeys(i18n.gettext(_KINDS[k]) for k in kinds))
    if len(nouns) == 1:
        listed = nouns[0]
    else:
        listed = i18n.gettext("%(rest)s or %(last)s") % {"rest": ", ".join(nouns[:-1]), "last": nouns[-1]}
    return i18n.gettext("%(field)s: must be %(kinds)s") % {"field": field or root(), "kinds": listed}


def expected_values(expected: str) -> list[str]:
    """The choices in pydantic's ``ctx["expected"]`` ("'reset' or 'unlock'", "1, 2 or 3")."""
    quoted = _QUOTED.findall(expected)
    if quoted and not re.sub(r"(, | or )", "", _QUOTED.sub("", expected)).strip():
        return quoted
    return [part for part in re.split(r", | or ", expected) if part][:20]
