"""Rules every ``/api/v1`` request meets before its route looks at it (``create_app`` adds
them to each API router): nothing the client sent is silently dropped or chosen between.

* ``json_keys_once``: a JSON body that gives a key twice in one object
  (``{"user": "bob", "user": "alice"}``) is refused with 422. A JSON parser keeps the last
  one, so the request would run for ``alice`` and answer as if done as asked.
"""

from __future__ import annotations

import json
from email.message import Message
from typing import Any

from fastapi import Request

from portal import i18n
from portal.errors import PortalError, declared_names


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Repeated(key)
        seen.add(key)
    return dict(pairs)


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this content type as JSON (no content type: it may)."""
    if not content_type:
        return True
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def json_keys_once(request: Request) -> None:
    """422 (``invalid_input``) when the JSON body repeats a key within one object, naming it
    when it is a name the API declares (else ``?``: a key the client chose may be a secret)."""
    if not _is_json(request.headers.get("content-type")):
        return
    body = await request.body()  # read once per request: the route's own parsing reuses it
    if not body:
        return
    try:
        json.loads(body, object_pairs_hook=_pairs_once)
    except _Repeated as exc:
        shown = exc.key if exc.key in declared_names(request.app) else "?"
        text = i18n.gettext("is given more than once; give each field once")
        raise PortalError(422, "invalid_input", f"{shown}: {text}") from None
    except ValueError:  # not JSON (or not UTF-8): the route's own validation answers that
        return
