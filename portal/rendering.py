"""Rendering pages: ``render(request, "x.html", {...})`` adds what every page needs.

Added to the context: ``user`` (the Principal or None), ``lang``, ``langs``,
``csrf_token`` (for forms), ``path``, ``here`` (path and query string, for the language
switch) and ``public_base_url``; ``_`` is Jinja's i18n ``gettext`` in the request's language.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import threading
import zoneinfo
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from portal import i18n

TEMPLATES_DIR = Path(__file__).parent / "templates"


def make_templates(time_zone: str = "UTC") -> Jinja2Templates:
    """The portal's Jinja2 templates; *time_zone* (an IANA name, ``Settings.time_zone``) is
    the clock of the ``local`` filter."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship with the code: no stat() of every template per page
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["local"] = functools.partial(local_text, zone=zoneinfo.ZoneInfo(time_zone))
    env.filters["bound"] = bound_text
    env.filters["stored_text"] = stored_text
    env.filters["as_text"] = as_text
    env.filters["agent_text"] = agent_text
    env.filters["translated"] = translated
    env.filters["chain_problem"] = chain_problem
    env.globals["agent_note"] = agent_note
    env.globals["agent_message"] = agent_message
    env.filters["reason_text"] = reason_text
    env.filters["step_status"] = step_status
    env.globals["stored_note"] = stored_note
    env.globals["_"] = _gettext  # same result as the extension's ``_``, without two context.call hops
    from runner.formonce import new_token

    env.globals["form_token"] = new_token  # a fresh one-time token per rendered run form (runner.formonce)
    return Jinja2Templates(env=env)


def as_text(value: object) -> str:
    """A stored value (a ticket's parameters, a step's inputs and outputs) as JSON text for a
    page, characters as they are (``<id@host>``, ``é``): a plain ``str``, so autoescape is the
    only escaping. Jinja's ``tojson`` is for ``<script>`` blocks: it writes ``<`` as ``\\u003c``,
    which a reader then saw on the page."""
    return json.dumps(value, ensure_ascii=False, default=str)


def stored_text(text: str | None) -> str | None:
    """A stored (English) ticket or step message in the request's language when a
    translation is known (``runner.texts.localize``), else as stored."""
    from runner.texts import localize

    return localize(text, i18n.current_lang.get())


def stored_note(note: str | None, note_i18n: str | None = None) -> str | None:
    """A ticket's resolution note in the request's language: the runbook's own translation
    when the ticket carries it, else ``localize`` of the English note (``runner.texts.note_in``)."""
    from runner.texts import note_in

    return note_in(note, note_i18n, i18n.current_lang.get())


def chain_problem(text: str) -> str:
    """The audit chain's verification problem in the request's language (``runner.texts.chain_problem``)."""
    from runner.texts import chain_problem as in_lang

    return in_lang(text, i18n.current_lang.get())


def translated(text: str) -> str:
    """A fixed English message made in ``runner`` (its msgid is extracted from there, not from
    the template) in the request's language."""
    return i18n.gettext(text)


def agent_text(text: str | None) -> str | None:
    """A stored ticket or step message as the service desk reads it, in the request's
    language (``runner.texts.for_agent``): a text meant for the employee ("the service desk
    can help") becomes what the desk does or what second level needs."""
    from runner.texts import for_agent

    return for_agent(text, i18n.current_lang.get())


def agent_note(note: str | None, note_i18n: str | None = None) -> str | None:
    """A resolution note for the service desk (``runner.texts.agent_note_in``)."""
    from runner.texts import agent_note_in

    return agent_note_in(note, note_i18n, i18n.current_lang.get())


def agent_message(message: str | None, note: str | None = None, note_i18n: str | None = None) -> str | None:
    """A ticket's message for the service desk (``runner.texts.agent_message_in``): a resolved
    ticket's message is its resolution note, shown as ``agent_note`` shows the note."""
    from runner.texts import agent_message_in

    return agent_message_in(message, note, note_i18n, i18n.current_lang.get())


def reason_text(code: str | None) -> str | None:
    """A ticket's or step's reason code in plain words in the request's language
    (``runner.texts.reason_text``); None for a code without words (shown as it is)."""
    from runner.texts import reason_text as words

    return words(code, i18n.current_lang.get())


def step_status(status: str) -> str:
    """A step's status in plain words in the request's language (``runner.mytickets.step_words``,
    the words of the employee's ticket page)."""
    from runner.mytickets import step_words

    return step_words(status, i18n.current_lang.get())


def local_text(stamp: object, seconds: bool = True, *, zone: zoneinfo.ZoneInfo) -> str:
    """A stored ISO 8601 UTC time as people read it on their clock (``FIRSTLINE_TIME_ZONE``):
    ``2026-11-30 08:34:12 CET`` (``seconds=False``: ``2026-11-30 08:34 CET``), the zone's
    abbreviation as the time zone database has it for that moment (CET / CEST, UTC); empty
    for None; a value that is not such a time unchanged."""
    if not isinstance(stamp, str) or len(stamp) < 19 or stamp[10] != "T":
        return "" if stamp is None else str(stamp)
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if when.tzinfo is None:  # stored without an offset: UTC, as the ledger writes
        when = when.replace(tzinfo=UTC)
    here = when.astimezone(zone)
    return f"{here.strftime('%Y-%m-%d %H:%M:%S' if seconds else '%Y-%m-%d %H:%M')} {here.tzname()}"


def bound_text(stamp: object) -> str:
    """A range bound in stored form (``2026-11-30T07:34:12.123456+00:00``) as exactly as it
    is, without the zeros that say nothing: ``2026-11-30 07:34:12.123456``, ``2026-11-30
    07:34:12``, ``2026-11-30 07:34``. Cutting it to minutes showed a range that was not the
    one counted (seconds and fractions are part of the bound); the caller says "UTC"."""
    if not isinstance(stamp, str) or len(stamp) < 19 or stamp[10] != "T":
        return "" if stamp is None else str(stamp)
    clock = stamp[11:].split("+", 1)[0].removesuffix("Z")
    if clock.endswith(".000000"):
        clock = clock.removesuffix(".000000")
    if len(clock) == 8 and clock.endswith(":00"):
        clock = clock[:5]
    return f"{stamp[:10]} {clock}"


def _gettext(__message: str, **variables: Any) -> Markup:
    """``_("...", name=value)`` in templates: the translation in the request's language, as
    Jinja's new-style gettext gives it under autoescape (the translation is trusted markup,
    the *variables* are escaped as they are put in). About 30% of a page's render time went
    to the extension's two ``context.call`` hops per message (measured 2026-11-30)."""
    return Markup(i18n.gettext(__message)) % variables  # noqa: S704 - our own catalogue, variables escaped


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    from portal.deps import context_of

    ctx = context_of(request)
    state = request.state._state
    base: dict[str, Any] = {
        "user": state.get("principal"),
        "lang": state.get("lang", i18n.DEFAULT_LANG),
        "langs": i18n.LANG_NAMES,
        "csrf_token": state.get("csrf_token", ""),
        "path": request.url.path,
        "here": _here(request),
        "public_base_url": ctx.settings.public_base_url,
    }
    base.update(context or {})
    response: HTMLResponse = ctx.templates.TemplateResponse(
        request, template, base, status_code=status_code, headers=dict(headers or {})
    )
    return response


_MAX_HERE = 512  # what the language switch's ``next`` accepts (portal.routes.auth.MAX_NEXT)


def _here(request: Request) -> str:
    """This page's path and query string, for a form that comes back to it (the language
    switch); the path alone when both together would be longer than ``_MAX_HERE``."""
    path = request.url.path
    query = request.url.query
    here = f"{path}?{query}" if query else path
    return here if len(here) <= _MAX_HERE else path


# -- fragments that are the same for everyone with the same roles and language ----------
# Markers stand in for the per-request values while a fragment is rendered once; they are
# random per process, so no runbook text or user input can contain (and forge) one.
_CSRF_MARK = "fl" + secrets.token_hex(12) + "csrf"
_FORM_MARK = "fl" + secrets.token_hex(12) + "form"
_FORM_MARK_RE = re.compile(re.escape(_FORM_MARK))
FRAGMENT_CACHE_SIZE = 128
_fragments: OrderedDict[tuple[Hashable, ...], tuple[Any, str]] = OrderedDict()
_fragments_lock = threading.Lock()


def fragment(request: Request, template: str, key: tuple[Hashable, ...], context: Mapping[str, Any], keep: Any) -> Any:
    """*template* rendered with *context* in the request's language, as Markup, rendered
    once per (*template*, language, *key*) and then reused.

    For parts of a page that depend only on what *key* captures (e.g. the catalogue of
    fixes for a set of roles): the request's CSRF token and a fresh one-time form token
    per form (``form_token()``, runner.formonce) are put in on every use, never cached.
    *keep* is held with the cached text (pass the objects whose ``id`` is in *key*, so an
    id cannot be reused while its entry lives). At most ``FRAGMENT_CACHE_SIZE`` entries,
    least recently used dropped first.
    """
    from portal.deps import context_of
    from runner.formonce import new_token

    lang = request.state._state.get("lang", i18n.DEFAULT_LANG)
    full_key = (template, lang, *key)
    with _fragments_lock:
        hit = _fragments.get(full_key)
        if hit is not None:
            _fragments.move_to_end(full_key)
    if hit is None:
        env = context_of(request).templates.env
        values = {**context, "csrf_token": _CSRF_MARK, "form_token": lambda: _FORM_MARK, "lang": lang}
        hit = (keep, env.get_template(template).render(values))
        with _fragments_lock:
            _fragments[full_key] = hit
            while len(_fragments) > FRAGMENT_CACHE_SIZE:
                _fragments.popitem(last=False)
    text = hit[1].replace(_CSRF_MARK, str(Markup.escape(request.state._state.get("csrf_token", ""))))
    return Markup(_FORM_MARK_RE.sub(lambda _m: new_token(), text))  # noqa: S704 - autoescaped template output
