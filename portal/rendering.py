"""Rendering pages: ``render(request, "x.html", {...})`` adds what every page needs.

Added to the context: ``user`` (the Principal or None), ``lang``, ``langs``,
``csrf_token`` (for forms), ``path`` and ``public_base_url``; ``_`` is Jinja's i18n
``gettext`` in the request's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from portal import i18n

TEMPLATES_DIR = Path(__file__).parent / "templates"


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    from runner.formonce import new_token

    env.globals["form_token"] = new_token  # a fresh one-time token per rendered run form (runner.formonce)
    return Jinja2Templates(env=env)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    from portal.deps import portal_context

    ctx = portal_context(request)
    state = request.state._state
    base: dict[str, Any] = {
        "user": state.get("principal"),
        "lang": state.get("lang", i18n.DEFAULT_LANG),
        "langs": i18n.LANG_NAMES,
        "csrf_token": state.get("csrf_token", ""),
        "path": request.url.path,
        "public_base_url": ctx.settings.public_base_url,
    }
    base.update(context or {})
    response: HTMLResponse = ctx.templates.TemplateResponse(
        request, template, base, status_code=status_code, headers=dict(headers or {})
    )
    return response
