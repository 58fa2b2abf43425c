"""Languages of the portal: English and Dutch, from gettext catalogues (Babel).

Catalogues: ``portal/locale/<lang>/LC_MESSAGES/messages.po``. They are compiled with
Babel's API when the app starts (``load_catalogues``; no ``.mo`` file needs to exist,
``scripts/setup.sh`` also compiles them with ``pybabel compile`` for tools that want
them). The language of a request: the ``fl_lang`` cookie (set by the language form),
else the best match of ``Accept-Language``, else English.

Templates call ``_("text")``; Python code calls ``gettext(request_or_lang, "text")``.
"""

from __future__ import annotations

import contextvars
import gettext as gettext_mod
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from runner.errors import FirstlineError

LANGS = ("en", "nl")
DEFAULT_LANG = "en"
LANG_COOKIE = "fl_lang"
LOCALE_DIR = Path(__file__).parent / "locale"
LANG_NAMES = {"en": "English", "nl": "Nederlands"}

_catalogues: dict[str, gettext_mod.NullTranslations] = {}
current_lang: contextvars.ContextVar[str] = contextvars.ContextVar("firstline_lang", default=DEFAULT_LANG)


def load_catalogues(locale_dir: Path = LOCALE_DIR) -> dict[str, gettext_mod.NullTranslations]:
    """Compile every ``messages.po`` in memory (Babel) and keep the translations."""
    for lang in LANGS:
        po = locale_dir / lang / "LC_MESSAGES" / "messages.po"
        if not po.exists():
            _catalogues[lang] = gettext_mod.NullTranslations()
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        _catalogues[lang] = gettext_mod.GNUTranslations(buf)
    return _catalogues


def translations(lang: str) -> gettext_mod.NullTranslations:
    if not _catalogues:
        load_catalogues()
    return _catalogues.get(lang) or _catalogues.get(DEFAULT_LANG) or gettext_mod.NullTranslations()


def translate(lang: str, message: str) -> str:
    return translations(lang).gettext(message)


def gettext(message: str) -> str:
    """*message* in the language of the request being handled (a context variable)."""
    return translate(current_lang.get(), message)


def error_text(exc: BaseException) -> str:
    """An error's message in the request's language: a runner error's template is translated
    before its values are filled in (``runner.errors.Text``), so "… %(name)s …" stays Dutch."""
    if isinstance(exc, FirstlineError):
        return exc.translated(gettext)
    return gettext(str(exc))


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_lang.get()).ngettext(singular, plural, n)


def negotiate(accept_language: str | None) -> str:
    """The best of ``LANGS`` for an ``Accept-Language`` header (q-values honoured)."""
    if not accept_language:
        return DEFAULT_LANG
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):
        fields = part.strip().split(";")
        tag = fields[0].strip().lower()
        quality = 1.0
        for f in fields[1:]:
            name, _, value = f.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.split("-")[0]
        if primary in LANGS and quality > 0:
            choices.append((-quality, index, primary))
    return sorted(choices)[0][2] if choices else DEFAULT_LANG


def pick(cookie: str | None, accept_language: str | None) -> str:
    """The request's language: a valid cookie wins over the browser's preference."""
    if cookie in LANGS:
        return str(cookie)
    return negotiate(accept_language)
