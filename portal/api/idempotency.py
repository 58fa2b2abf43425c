"""``Idempotency-Key`` for the JSON routes that start a run (``POST /api/v1/runs``,
``POST /api/v1/fixes/{runbook}``), on the rules of ``runner.formonce``.

``once = Idempotent(request, user, engine, body)``; ``once.first()`` is the ticket number the
same key already started in this session (answer with that ticket as it stands now —
never its once-only secrets — and start nothing), else None; then run inside
``with once.running() as done:``, passing ``opened=done`` to ``portal.runs`` and calling
``done(ticket_number)`` with the outcome. A request refused before any ticket gives the
key back, so the corrected request may use it; once its ticket is written the key stays
spent whatever fails later (the hand-over, the wait, the outcome read): a resend is
answered with that ticket (``runner.formonce.FirstSubmit``). Without the header every
method does nothing.

The key answers only for the request it was first sent with (the route and the JSON body,
``fingerprint``): sent again with another account, fix, parameter or reason it is refused
(422), never answered with the first request's ticket as if the new request had been done.
A second ``form_submission`` row, keyed by session + fingerprint, records the pairing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import Engine

from portal import i18n
from portal.errors import PortalError
from portal.routes.fixes import session_key
from runner.auth import Principal
from runner.errors import FirstlineError
from runner.formonce import TOKEN, FormOnce, ticket_id_of
from runner.oplog import get_logger


class Idempotent:
    def __init__(self, request: Request, user: Principal, engine: Engine, body: BaseModel) -> None:
        keys = request.headers.getlist("idempotency-key")
        if len(keys) > 1:  # which one would a retry repeat? (a proxy may keep either)
            raise PortalError(
                422, "invalid_input", i18n.gettext("The Idempotency-Key header is given more than once; give it once.")
            )
        self.key = keys[0] if keys else None
        # Without the header nothing below is used: the fingerprint (the body dumped and
        # hashed, the URL built) is worked out only for a request that names a key.
        self.owner = session_key(user) if self.key is not None else ""
        self.request_owner = f"{self.owner}\x00{fingerprint(request, body)}" if self.key is not None else ""
        self.once = FormOnce(engine)

    def first(self) -> int | None:
        """The ticket id this key already started for this same request; 422 when it started
        another request (``ParameterError`` for a malformed key)."""
        if self.key is None:
            return None
        if not TOKEN.fullmatch(self.key):  # runner.formonce's own words name a form token
            raise PortalError(
                422,
                "invalid_input",
                i18n.gettext("The Idempotency-Key header is not valid: 16 to 64 letters, digits, - or _"),
            )
        number = self.once.claim(self.owner, self.key)
        if number is None:
            return None
        if self.once.claim(self.request_owner, self.key) is None:  # the key's first request was another one
            self.once.release(self.request_owner, self.key)
            raise PortalError(
                422,
                "invalid_input",
                i18n.gettext(
                    "This Idempotency-Key was already used for another request (%(ticket)s); "
                    "send a new key with a new request"
                )
                % {"ticket": number},
            )
        return ticket_id_of(number)

    @contextmanager
    def running(self) -> Iterator[Callable[[str], None]]:
        """``done(ticket_number)``: pass it to ``portal.runs`` as ``opened=`` (called as soon as
        the ticket is written) and call it again with the outcome. A request that fails gives
        the key back only when no ticket was opened (``runner.formonce.FirstSubmit``)."""
        attempt = self.once.first_submit(self.owner, self.key) if self.key is not None else None
        paired: list[str] = []

        def done(ticket_number: str) -> None:
            if attempt is None:
                return
            if not paired:  # the pairing first: a resend that sees the ticket finds it
                try:  # never raises into the submit (between the ticket and its hand-over)
                    self.once.claim(self.request_owner, self.key)  # the row exists (a released try's: updated)
                    self.once.done(self.request_owner, str(self.key), ticket_number)
                    paired.append(ticket_number)
                except FirstlineError:
                    get_logger().exception("idempotency.pairing_not_recorded", ticket=ticket_number)
            attempt.opened(ticket_number)

        try:
            yield done
        except BaseException:
            if attempt is not None:
                if attempt.ticket is not None and not paired:
                    done(attempt.ticket)  # the ticket exists: its pairing, for the resend to be answered with it
                attempt.failed()
            raise


def fingerprint(request: Request, body: BaseModel) -> str:
    """What makes two requests the same one: the method, the path and the JSON body's values."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(f"{request.method} {request.url.path}\x00{canonical}".encode()).hexdigest()
