"""The check both template tests share: is every English template in the Dutch catalogue
(``portal/locale/nl/LC_MESSAGES/messages.po``), finished and with the same placeholders?"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parents[3]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def untranslated(templates: Iterable[str]) -> tuple[list[str], list[str]]:
    """(missing, broken): templates with no finished Dutch translation (absent, empty or
    fuzzy), and templates whose Dutch form (every plural form) names other placeholders."""
    with (REPO / "portal" / "locale" / "nl" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="nl")
    missing, broken = [], []
    for template in sorted(set(templates)):
        message = catalog.get(template)
        if message is None or not message.string or message.fuzzy:
            missing.append(template)
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if any(set(PLACEHOLDER.findall(str(f))) != set(PLACEHOLDER.findall(template)) for f in forms):
            broken.append(template)
    return missing, broken
