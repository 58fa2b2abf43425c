"""The sentences for request validation errors (portal.validation): each pydantic error type
has a template of ours, translated before the field and the limit are filled in, with a
Dutch entry whose placeholders match; an unknown type or a custom validator's text is
"is not valid", never pydantic's message."""

from __future__ import annotations

import ast
from collections.abc import Iterator

import pytest
from fastapi.exceptions import RequestValidationError

from portal import i18n, validation
from portal.errors import _validation_message
from tests.unit.portal.dutch_catalogue import REPO, untranslated

SECRET = "Hunter2Secret"


@pytest.fixture
def dutch() -> Iterator[None]:
    token = i18n.current_lang.set("nl")
    yield
    i18n.current_lang.reset(token)


def _template_calls() -> list[ast.Call]:
    tree = ast.parse((REPO / "portal" / "validation.py").read_text())
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) == "N_" or getattr(node.func, "attr", None) in ("gettext", "ngettext"))
    ]


def test_every_template_is_a_constant_with_a_dutch_translation() -> None:
    calls = _template_calls()
    built = [
        ast.unparse(c)[:80]
        for c in calls
        if c.args
        and (
            isinstance(c.args[0], ast.JoinedStr | ast.BinOp)
            or (isinstance(c.args[0], ast.Call) and getattr(c.args[0].func, "attr", None) == "format")
        )
    ]
    assert built == [], "templates are constants filled in after translation, never f-strings:\n" + "\n".join(built)
    templates = {c.args[0].value for c in calls if c.args and isinstance(c.args[0], ast.Constant)}
    assert len(templates) > 30
    missing, broken = untranslated(templates)
    assert missing == [], "run tools/portal_catalogues.py (NL):\n" + "\n".join(missing)
    assert broken == []


@pytest.mark.parametrize(
    ("kind", "ctx", "english", "dutch_text"),
    [
        ("missing", None, "code: is required", "code: is verplicht"),
        (
            "string_too_long",
            {"max_length": 64},
            "code: is too long (at most 64 characters)",
            "code: is te lang (hoogstens 64 tekens)",
        ),
        (
            "string_too_long",
            {"max_length": 1},
            "code: is too long (at most 1 character)",
            "code: is te lang (hoogstens 1 teken)",
        ),
        (
            "string_too_short",
            {"min_length": 8},
            "code: is too short (at least 8 characters)",
            "code: is te kort (minstens 8 tekens)",
        ),
        ("greater_than_equal", {"ge": 1}, "code: must be at least 1", "code: moet minstens 1 zijn"),
        ("less_than_equal", {"le": 200}, "code: must be at most 200", "code: mag hoogstens 200 zijn"),
        ("int_parsing", None, "code: must be a whole number", "code: moet een geheel getal zijn"),
        ("bool_parsing", None, "code: must be true or false", "code: moet waar of onwaar zijn (true of false)"),
        (
            "literal_error",
            {"expected": "1, 2 or 3"},
            "code: must be one of: 1, 2, 3",
            "code: moet een van deze zijn: 1, 2, 3",
        ),
        (
            "enum",
            {"expected": "'csv' or 'jsonl'"},
            "code: must be one of: csv, jsonl",
            "code: moet een van deze zijn: csv, jsonl",
        ),
        ("extra_forbidden", None, "code: is not a field of this request", "code: is geen veld van dit verzoek"),
        ("json_invalid", None, "request: the body is not valid JSON", "verzoek: de inhoud is geen geldige JSON"),
        ("some_future_type", {"secret": SECRET}, "code: is not valid", "code: is niet geldig"),
        ("less_than_equal", None, "code: is not valid", "code: is niet geldig"),  # no limit to name
    ],
)
def test_each_type_reads_as_a_sentence_in_both_languages(
    kind: str, ctx: dict[str, object] | None, english: str, dutch_text: str
) -> None:
    assert validation.rule_text(kind, ctx, "code") == english
    token = i18n.current_lang.set("nl")
    try:
        assert validation.rule_text(kind, ctx, "code") == dutch_text
    finally:
        i18n.current_lang.reset(token)


def test_a_custom_validator_or_an_unknown_type_never_shows_pydantic_text(dutch: None) -> None:
    exc = RequestValidationError(
        [
            {"type": "value_error", "loc": ("body", "reason"), "msg": f"Value error, {SECRET} is wrong"},
            {"type": "is_instance_of", "loc": ("query", "limit"), "msg": "Input should be an instance of Secret"},
            {"type": "missing", "loc": ("body",), "msg": "Field required"},
        ]
    )
    text = _validation_message(exc, frozenset({"reason", "limit"}))
    assert text == "reason: is niet geldig; limit: is niet geldig; verzoek: de inhoud ontbreekt"
    assert _validation_message(RequestValidationError([]), frozenset()) == "Het verzoek is niet geldig."


def test_a_value_matching_no_member_of_a_union_is_one_sentence() -> None:
    errors = [
        {"type": t, "loc": ("body", "params", SECRET, tag), "msg": "Input should be a valid " + tag}
        for t, tag in (("string_type", "str"), ("int_type", "int"), ("bool_type", "bool"))
    ]
    text = _validation_message(RequestValidationError(errors), frozenset({"params"}))
    assert text == "params.?: must be text, a whole number or a yes/no value (true or false)"
