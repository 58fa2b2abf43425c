"""``Idempotency-Key`` for the JSON routes that start a run (``POST /api/v1/runs``,
``POST /api/v1/fixes/{runbook}``), on the rules of ``runner.formonce``.

``once = Idempotent(request, user, engine)``; ``once.first()`` is the ticket number the
same key already started in this session (answer with that ticket as it stands now —
never its once-only secrets — and start nothing), else None; then run inside
``with once.running() as done:`` and call ``done(ticket_number)``. A request refused
before any ticket gives the key back, so the corrected request may use it. Without the
header every method does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import Request
from sqlalchemy import Engine

from portal.routes.fixes import session_key
from runner.auth import Principal
from runner.formonce import FormOnce, ticket_id_of


class Idempotent:
    def __init__(self, request: Request, user: Principal, engine: Engine) -> None:
        self.key = request.headers.get("idempotency-key")
        self.owner = session_key(user)
        self.once = FormOnce(engine)

    def first(self) -> int | None:
        """The ticket id this key already started (``ParameterError`` for a malformed key)."""
        if self.key is None:
            return None
        number = self.once.claim(self.owner, self.key)
        return ticket_id_of(number) if number is not None else None

    @contextmanager
    def running(self) -> Iterator[Callable[[str], None]]:
        def done(ticket_number: str) -> None:
            if self.key is not None:
                self.once.done(self.owner, self.key, ticket_number)

        try:
            yield done
        except BaseException:
            if self.key is not None:
                self.once.release(self.owner, self.key)
            raise
