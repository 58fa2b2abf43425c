"""A message given to ``_()`` in a template is trusted markup (Jinja's i18n with autoescape
returns ``Markup``), so a literal ``<token>`` in one was sent as an HTML tag: the tokens page
read "Send it as: Authorization: Bearer ." in both languages (a tester's find). Values passed
as ``%(name)s`` arguments are escaped; the message texts themselves must hold no markup
characters, in English and in every translation."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

PORTAL = Path(__file__).resolve().parents[3] / "portal"
LITERAL = re.compile(r"""_\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")


def test_no_template_message_holds_markup_characters() -> None:
    found = []
    for template in sorted((PORTAL / "templates").rglob("*.html")):
        for match in LITERAL.finditer(template.read_text(encoding="utf-8")):
            text = match.group(1)[1:-1]
            if re.search(r"[<>]", text):
                found.append(f"{template.relative_to(PORTAL)}: {text[:80]}")
    assert found == []


def test_no_translation_holds_markup_characters_its_english_lacks() -> None:
    for po in sorted((PORTAL / "locale").rglob("messages.po")):
        with po.open("rb") as f:
            catalog = read_po(f)
        for message in catalog:
            if not message.id or not isinstance(message.id, str) or not isinstance(message.string, str):
                continue
            for char in "<>":
                assert message.string.count(char) <= message.id.count(char), (po, message.id)


def test_the_tokens_page_shows_the_header_to_send() -> None:
    text = (PORTAL / "templates" / "tokens.html").read_text(encoding="utf-8")
    assert 'header="Authorization: Bearer <token>"' in text  # an argument: escaped when rendered
