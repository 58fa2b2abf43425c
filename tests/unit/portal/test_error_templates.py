"""Runner messages that the portal shows and that carry a value are templates, never
f-strings, and each template is in the Dutch catalogue (``runner.errors.Text``): an f-string
is filled in before the portal can translate it, so its sentence stayed English in Dutch."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.portal.dutch_catalogue import REPO, untranslated

# the runner's errors that portal.errors / the pages show to people, and the Text marker
SHOWN = {
    "ParameterError",
    "PolicyDenied",
    "NotFoundError",
    "QueueFull",
    "TimeParseError",
    "LookupFailed",
    "CodeInvalid",
    "PasswordRefused",
    "ProofOfWorkRequired",
    "Text",
}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _calls() -> list[tuple[Path, ast.Call]]:
    found = []
    for path in sorted((REPO / "runner").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _name(node.func) in SHOWN and node.args:
                found.append((path, node))
    return found


def _constants() -> dict[str, str]:
    out = {}
    for path in sorted((REPO / "runner").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        out[target.id] = node.value.value
    return out


def test_no_shown_error_is_built_before_translation() -> None:
    built = [
        f"{path.relative_to(REPO)}:{call.lineno}: {ast.unparse(call.args[0])[:80]}"
        for path, call in _calls()
        if isinstance(call.args[0], ast.JoinedStr | ast.BinOp)
        or (isinstance(call.args[0], ast.Call) and _name(call.args[0].func) == "format")
    ]
    assert built == [], "use a template with %(name)s placeholders and keyword values:\n" + "\n".join(built)


def test_every_template_with_a_value_is_translated_to_dutch() -> None:
    constants = _constants()
    templates: set[str] = set()
    for _path, call in _calls():
        first = call.args[0]
        text = first.value if isinstance(first, ast.Constant) else constants.get(_name(first) or "")
        if isinstance(text, str) and "%(" in text:
            templates.add(text)
    assert len(templates) > 40
    missing, broken = untranslated(templates)
    assert missing == [], "not in the Dutch catalogue (portal/texts.py, tools/portal_catalogues.py):\n" + "\n".join(
        missing
    )
    assert broken == [], "the Dutch placeholders differ:\n" + "\n".join(broken)
