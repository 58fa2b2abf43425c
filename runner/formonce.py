"""One-time form tokens: a form submitted twice starts one run (review of issue 8, item 4).

Each state-changing portal form that starts a run carries a fresh random ``form_token``
(``new_token``; rendered into the form, stored nowhere until submitted). On submit the
portal calls ``FormOnce.claim(session_key, token)``:

* the first submit of a token in a session inserts a row (``form_submission``, keyed by
  the SHA-256 of session key and token — the token is bound to the session: another
  session's same token is another key) and gets ``None``: go on and run through a
  ``FirstSubmit`` (``FormOnce.first_submit``): its ``opened`` records the ticket number the
  moment the ticket is written (``portal.runs``' ``opened=``, before the run is handed
  over), and its ``failed`` — for a request that ends in an error — gives the token back
  only when no ticket was opened (a refusal: the corrected form may be sent again with the
  same token). Once a ticket exists the token stays spent whatever fails after it (the
  hand-over to the dispatcher, the wait for the outcome, reading it): a resend answers with
  that ticket, never opens a second one;
* a later submit of the same token gets the first ticket's number (waiting up to
  ``WAIT_SECONDS`` while the first is still being handled): answer with that ticket, start
  nothing. Still unknown by then: ``FormInFlight``. A claim left without a ticket for
  ``ABANDONED_SECONDS`` (its request died) is taken over by the next submit.

A form sent without a token works as before (API clients); a malformed token is a
``ParameterError``. Rows older than ``KEEP_SECONDS`` are pruned on claim.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from runner.errors import FirstlineError, LedgerError, ParameterError
from runner.ledger.store import reading, transaction
from runner.ledger.tables import form_submission
from runner.oplog import get_logger

TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}", re.ASCII)
WAIT_SECONDS = 10.0
KEEP_SECONDS = 24 * 3600
# A claim still without a ticket after this long was abandoned: its request ended without
# ``done`` or ``release`` (the process died, or the database failed as it gave the token
# back). The next submit may take the token over. Longer than a request can wait for its
# run (portal.runs.WAIT_SECONDS, 300 s), so a first submit still at work is never taken over.
ABANDONED_SECONDS = 360.0


class FormInFlight(FirstlineError):
    """The same form is still being handled (a second submit arrived first)."""

    def __init__(self) -> None:
        super().__init__("This form is already being sent; wait a moment and look at your tickets.")


def ticket_id_of(number: str) -> int:
    """The ticket id of a ticket number ``FL-000123`` (as ``runner.ledger.tickets`` writes them)."""
    return int(number.removeprefix("FL-"))


def new_token() -> str:
    """A fresh form token: 32 URL-safe characters from the OS CSPRNG."""
    return secrets.token_urlsafe(24)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FormOnce:
    """The one-time form token rule over the ledger's ``form_submission`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def _key(session_key: str, token: str) -> str:
        return hashlib.sha256(f"{session_key}\x00{token}".encode()).hexdigest()

    def claim(self, session_key: str, token: object) -> str | None:
        """None: first submit (go on). A ticket number: this form already started that run."""
        if not isinstance(token, str) or not TOKEN.fullmatch(token):
            raise ParameterError("The form token is not valid; reload the page and send the form again")
        key = self._key(session_key, token)
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(form_submission).where(
                        form_submission.c.created_at < _ts(now - timedelta(seconds=KEEP_SECONDS))
                    )
                )
                conn.execute(insert(form_submission).values(key_hash=key, ticket_number=None, created_at=_ts(now)))
            return None
        except IntegrityError:
            pass  # this token was sent before in this session
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger write failed: {exc.__class__.__name__}") from exc
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            with reading(self.engine) as conn:
                row = conn.execute(
                    select(form_submission.c.ticket_number, form_submission.c.created_at).where(
                        form_submission.c.key_hash == key
                    )
                ).first()
            if row is None:  # the first submit was refused and released: this one goes on
                return self.claim(session_key, token)
            if row.ticket_number:
                return str(row.ticket_number)
            if row.created_at < _ts(datetime.now(UTC) - timedelta(seconds=ABANDONED_SECONDS)):
                self._take_over(key, row.created_at)
                return self.claim(session_key, token)
            if time.monotonic() > deadline:
                raise FormInFlight()
            time.sleep(0.05)

    def _take_over(self, key: str, created_at: str) -> None:
        """Delete an abandoned claim (still without a ticket, still the one seen)."""
        with transaction(self.engine) as conn:
            conn.execute(
                delete(form_submission).where(
                    form_submission.c.key_hash == key,
                    form_submission.c.ticket_number.is_(None),
                    form_submission.c.created_at == created_at,
                )
            )

    def done(self, session_key: str, token: str, ticket_number: str) -> None:
        """Record the ticket the first submit of *token* started."""
        with transaction(self.engine) as conn:
            conn.execute(
                update(form_submission)
                .where(form_submission.c.key_hash == self._key(session_key, token))
                .values(ticket_number=ticket_number)
            )

    def first_submit(self, session_key: str, token: str) -> FirstSubmit:
        """The first submit of *token* (``claim`` gave None): ``opened`` / ``failed``."""
        return FirstSubmit(self, session_key, token)

    def release(self, session_key: str, token: str) -> None:
        """Forget *token* (its submit was refused before any ticket): it may be sent again.
        Only through ``FirstSubmit.failed``, which knows whether a ticket was opened."""
        with transaction(self.engine) as conn:
            conn.execute(delete(form_submission).where(form_submission.c.key_hash == self._key(session_key, token)))


class FirstSubmit:
    """The request handling the first submit of a token: the one place that decides whether
    the token may be given back.

    ``opened(number)`` as soon as the ticket is written (``portal.runs.submit`` / ``run``
    call it from ``RunService.submit``'s ``ticket.opened``, before the hand-over) and again
    with the outcome (no second write); ``failed()`` when the request ends in an error.
    A token whose request opened a ticket is never given back, so a retry or a double
    click after a later failure (the hand-over, the wait for the outcome, the outcome read)
    answers with that ticket instead of opening a second one. Neither method raises for a
    ledger failure of its own (it is logged): ``opened`` runs inside the submit, between the
    ticket and its hand-over, and ``failed`` while another error is on its way. A ticket
    whose number could not be recorded leaves the claim without one: after
    ``ABANDONED_SECONDS`` the token may be taken over (nothing better is known then).
    """

    def __init__(self, once: FormOnce, session_key: str, token: str) -> None:
        self.once, self.session_key, self.token = once, session_key, token
        self.ticket: str | None = None  # the ticket this submit opened, once known
        self.recorded = False  # whether ``form_submission`` has it

    def opened(self, ticket_number: str) -> None:
        """This submit's ticket *ticket_number* exists: the token is spent from now on."""
        if self.ticket is None:
            self.ticket = ticket_number
        if not self.recorded:
            self._record()

    def failed(self) -> None:
        """The request ended in an error: give the token back only if no ticket was opened."""
        if self.ticket is None:
            try:
                self.once.release(self.session_key, self.token)
            except LedgerError:  # the claim stays; taken over after ABANDONED_SECONDS
                get_logger().exception("form_once.release_failed")
        elif not self.recorded:
            self._record()  # a second try at what ``opened`` could not write

    def _record(self) -> None:
        assert self.ticket is not None
        try:
            self.once.done(self.session_key, self.token, self.ticket)
        except LedgerError:
            get_logger().exception("form_once.ticket_not_recorded", ticket=self.ticket)
        else:
            self.recorded = True
