"""An employee's own tickets, in plain words (portal "My tickets", ``/api/v1/tickets/mine``).

* ``mine(app, account)``: the tickets whose requester is *account*, newest first.
* ``one(app, account, number)``: one of them with its steps; ``NotFoundError`` for a
  ticket that does not exist *or* is someone else's (the same answer, so numbers cannot
  be probed).
* ``follow(app, account, number, after)``: the step rows written after the position
  *after* (``runner.ledger.progress.events_after``: rows appear when a step starts and
  again when it finishes), for server-sent events and polling.
* ``outcome(state, resolution_code, lang)``: the state in plain words and what to do
  next, in English or Dutch. Stored messages and notes are shown in the reader's language
  (``runner.texts``).

Only what the requester may see leaves here: the ticket's state, message, resolution
note and each step's title, status and message (step inputs and outputs are not shown
to employees; they are already redacted in the ledger).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from runner.errors import FirstlineError, NotFoundError
from runner.leases import changes_state
from runner.ledger.store import reading
from runner.ledger.tables import MAX_ROW_ID, step_result, ticket
from runner.ledger.tickets import FINAL_STATES, number_of
from runner.target_locks import WAIT_STEP
from runner.texts import for_requester, localize, note_in, requester_message_in
from runner.ticketnumber import ticket_id

if TYPE_CHECKING:
    from runner.service import Firstline

_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    # state -> lang -> (what happened, what to do next)
    "resolved": {
        "en": ("Fixed", "Nothing more to do. If the problem comes back, start a new request."),
        "nl": ("Opgelost", "U hoeft niets meer te doen. Komt het probleem terug, doe dan een nieuwe aanvraag."),
    },
    "escalated": {
        "en": (
            "Passed to the service desk",
            "The automatic fix could not finish. The service desk has the ticket with everything gathered "
            "and will contact you; mention the ticket number if you call.",
        ),
        "nl": (
            "Doorgegeven aan de servicedesk",
            "De automatische oplossing kon niet afronden. De servicedesk heeft het ticket met alle gegevens "
            "en neemt contact met u op; noem het ticketnummer als u belt.",
        ),
    },
    "closed": {
        "en": (
            "You need to act",
            "You can fix this yourself: correct what the message says and try again. "
            "The service desk will not act on this ticket.",
        ),
        "nl": (
            "Actie van u nodig",
            "Dit kunt u zelf oplossen: pas aan wat de melding zegt en probeer het opnieuw. "
            "De servicedesk onderneemt niets met dit ticket.",
        ),
    },
    "queued": {
        "en": ("Waiting to start", "Nothing to do: the fix starts in a moment. This page follows it."),
        "nl": ("Wacht op start", "U hoeft niets te doen: de oplossing start zo. Deze pagina volgt hem."),
    },
    "running": {
        "en": ("Working on it", "Nothing to do: this page shows each step as it happens."),
        "nl": ("Bezig", "U hoeft niets te doen: deze pagina toont elke stap zodra die gebeurt."),
    },
    "awaiting_approval": {
        "en": ("Waiting for approval", "Nothing to do: the service desk approves this fix first."),
        "nl": ("Wacht op goedkeuring", "U hoeft niets te doen: de servicedesk keurt deze oplossing eerst goed."),
    },
}
_WORDS["in_progress"] = _WORDS["running"]
# resolved, and no step changed anything: an account that was not locked, a queue already
# empty ("unchanged"), or a runbook that only reads ("checked"). "Fixed" said something was put
# right that was never wrong (a tester's find).
_EFFECT_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "unchanged": {
        "en": (
            "Done: nothing needed changing",
            "Nothing was changed because nothing this fix handles was wrong. If the problem continues, "
            "contact the service desk.",
        ),
        "nl": (
            "Klaar: er hoefde niets te veranderen",
            "Er is niets gewijzigd, omdat niets wat deze oplossing afhandelt mis was. Blijft het probleem, "
            "neem dan contact op met de servicedesk.",
        ),
    },
    "checked": {
        "en": ("Done", "Nothing more to do: the result is below. If something is wrong, start the fix for it."),
        "nl": (
            "Klaar",
            "U hoeft niets meer te doen: de uitkomst staat hieronder. Is er iets mis, start dan de oplossing daarvoor.",
        ),
    },
}
_STEP_WORDS = {
    "running": {"en": "working", "nl": "bezig"},
    "ok": {"en": "done", "nl": "klaar"},
    "skipped": {"en": "not needed", "nl": "niet nodig"},
    "failed": {"en": "failed", "nl": "mislukt"},
}


def step_words(status: str, lang: str = "en") -> str:
    """A step's status (``running``, ``ok``, ``skipped``, ``failed``) in plain words in *lang*;
    another status as it is."""
    words = _STEP_WORDS.get(status)
    return words.get(lang, words["en"]) if words else status


def outcome(
    state: str, resolution_code: str | None = None, lang: str = "en", *, effect: str | None = None
) -> dict[str, str]:
    """``{"code", "label", "next"}``: the ticket's outcome code (``resolved``, ``escalated``,
    ``requester_action_needed``, or the open state) in plain words, in *lang*. *effect* of a
    resolved run (``effect_of``): ``changed`` says "Fixed"; ``unchanged`` "Done: nothing needed
    changing"; ``checked`` (it only read) "Done". The code stays ``resolved``."""
    words = _WORDS.get(state) or _WORDS["running"]
    if state == "resolved" and effect in _EFFECT_WORDS:
        words = _EFFECT_WORDS[effect]
    label, nxt = words.get(lang) or words["en"]
    code = "requester_action_needed" if state == "closed" else state
    if state == "in_progress":
        code = "running"
    return {"code": code, "label": label, "next": nxt}


def effect_of(app: Firstline, steps: Iterable[Any]) -> str:
    """What a resolved run's *steps* (step rows or ``StepRecord``s: ``connector``, ``action``,
    ``status``, ``outputs``) did: ``changed`` when a finished state-changing step changed its
    target (one that did not say is taken to have: ``runner.engine``), ``unchanged`` when its
    state-changing steps were skipped or found nothing to change, ``checked`` when it has none
    (a runbook that only reads)."""
    planned = False
    for s in steps:
        get = s.get if isinstance(s, Mapping) else lambda k, s=s: getattr(s, k, None)
        if not changes_state(app.connectors, str(get("connector")), str(get("action"))):
            continue
        planned = True
        if get("status") != "ok":
            continue
        outputs = get("outputs")
        if isinstance(outputs, str):
            try:
                outputs = json.loads(outputs)
            except ValueError:
                outputs = {}
        if not isinstance(outputs, Mapping) or outputs.get("changed") is not False:
            return "changed"
    return "unchanged" if planned else "checked"


def _effects(app: Firstline, ticket_ids: list[int]) -> dict[int, str]:
    """``effect_of`` each of *ticket_ids* (one read of their step rows)."""
    if not ticket_ids:
        return {}
    with reading(app.engine) as conn:
        rows = conn.execute(
            select(step_result.c.ticket_id, step_result.c.connector, step_result.c.action, step_result.c.status,
                   step_result.c.outputs)
            .where(step_result.c.ticket_id.in_(ticket_ids))
        ).mappings().all()  # fmt: skip
    by_ticket: dict[int, list[Any]] = {i: [] for i in ticket_ids}
    for r in rows:
        by_ticket[int(r["ticket_id"])].append(dict(r))
    return {i: effect_of(app, steps) for i, steps in by_ticket.items()}


@dataclass
class Followed:
    """Steps after a position, the ticket's outcome now, and the next position."""

    number: str
    state: str
    outcome: dict[str, str]
    message: str | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0
    done: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "outcome": self.outcome,
            "message": self.message,
            "steps": self.steps,
            "last_seq": self.last_seq,
            "done": self.done,
        }


def _ticket_id(number: str) -> int:
    return ticket_id(number)  # runner.ticketnumber: the spellings every surface accepts


def _titles(app: Firstline, runbook: str, lang: str) -> tuple[str, dict[str, str]]:
    """The runbook's title and its steps' titles in *lang* (names when the runbook is gone)."""
    try:
        rb = app.runbook(runbook)
    except FirstlineError:
        return runbook, {}
    steps = {s.id: (s.title.get(lang) if s.title else s.id) for s in rb.model.steps}
    steps["verify"] = "Resultaat controleren" if lang == "nl" else "Check the result"
    steps[WAIT_STEP] = "Wachten op een ander verzoek" if lang == "nl" else "Wait for another request"
    return rb.model.title.get(lang), steps


def _row(app: Firstline, r: Any, lang: str, effect: str | None = None) -> dict[str, Any]:
    title, _ = _titles(app, r.runbook, lang)
    return {
        "number": number_of(int(r.id)),
        "runbook": r.runbook,
        "title": title,
        "state": r.state,
        "outcome": outcome(r.state, r.resolution_code, lang, effect=effect),
        "message": requester_message_in(r.state, r.message, r.reason, r.resolution_note, r.resolution_note_i18n, lang),
        "resolution_note": note_in(r.resolution_note, r.resolution_note_i18n, lang),
        "opened_at": r.opened_at,
        "resolved_at": r.resolved_at,  # resolved tickets only
        "closed_at": r.closed_at,  # when it ended, whatever the final state (revision 0015)
    }


def mine(app: Firstline, account: str, lang: str = "en", limit: int = 50) -> list[dict[str, Any]]:
    """*account*'s tickets (as requester), newest first, at most *limit* (1..200)."""
    limit = max(1, min(int(limit), 200))
    with reading(app.engine) as conn:
        rows = conn.execute(
            select(ticket).where(ticket.c.requester == account).order_by(ticket.c.id.desc()).limit(limit)
        ).all()
    effects = _effects(app, [int(r.id) for r in rows if r.state == "resolved"])
    return [_row(app, r, lang, effects.get(int(r.id))) for r in rows]


def one(app: Firstline, account: str, number: str, lang: str = "en") -> dict[str, Any]:
    """One ticket of *account* with its steps so far; ``NotFoundError`` otherwise."""
    ticket_id = _ticket_id(number)
    with reading(app.engine) as conn:
        r = conn.execute(select(ticket).where(ticket.c.id == ticket_id)).first()
    if r is None or r.requester != account:
        raise NotFoundError("There is no ticket of yours with that number.")
    out = _row(app, r, lang, _effects(app, [ticket_id]).get(ticket_id) if r.state == "resolved" else None)
    # The steps are read after the row: every step the shown state implies is among them.
    # "done" (which stops the page from following the run) comes from that same row, never
    # from a later read: a run ending in between would otherwise leave the page saying
    # "Working on it" with nothing left to follow (the later step rows arrive as events).
    followed = follow(app, account, out["number"], 0, lang)
    out["steps"] = followed.steps
    out["last_seq"] = followed.last_seq
    out["done"] = r.state in FINAL_STATES
    return out


_HEAD = (ticket.c.state, ticket.c.message, ticket.c.reason, ticket.c.resolution_note, ticket.c.resolution_note_i18n)


def _steps_after(app: Firstline, ticket_id: int, after: int) -> tuple[Any, list[dict[str, Any]]]:
    """The ticket's state, message and resolution note (read first), then its step rows
    after position *after*.

    Position: ``step_result.event_seq`` (revision 0006: ``2*seq-1`` when a step starts,
    ``2*seq`` when it finishes); rows written without it count as finished (``2*seq``).
    """
    position = func.coalesce(step_result.c.event_seq, 2 * step_result.c.seq)
    with reading(app.engine) as conn:
        head = conn.execute(select(*_HEAD).where(ticket.c.id == ticket_id)).first()
        if head is None:
            raise NotFoundError("There is no ticket of yours with that number.")
        rows = conn.execute(
            select(step_result, position.label("position"))
            .where(step_result.c.ticket_id == ticket_id, position > after)
            .order_by(position)
        ).mappings()
        return head, [dict(r) for r in rows]


def follow(app: Firstline, account: str, number: str, after: int = 0, lang: str = "en") -> Followed:
    """The steps of *account*'s ticket written after position *after*; ``NotFoundError`` otherwise."""
    ticket_id = _ticket_id(number)
    with reading(app.engine) as conn:
        r = conn.execute(select(ticket.c.requester, ticket.c.runbook).where(ticket.c.id == ticket_id)).first()
    if r is None or r.requester != account:
        raise NotFoundError("There is no ticket of yours with that number.")
    after = min(max(0, int(after)), MAX_ROW_ID)  # past the INTEGER column's range: nothing after it
    head, rows = _steps_after(app, ticket_id, after)
    state = head.state
    _, titles = _titles(app, r.runbook, lang)
    steps = [
        {
            "seq": s["seq"],
            "position": int(s["position"]),
            "step": s["step_id"],
            "title": titles.get(s["step_id"], s["step_id"]),
            "status": s["status"],
            "status_text": step_words(s["status"], lang),
            # a failed step's technical sentence in plain words (a closed ticket's own message
            # still says what to correct, below)
            "message": (
                for_requester(s.get("message"), s.get("reason"), lang)
                if s["status"] == "failed"
                else localize(s.get("message"), lang)
            ),
        }
        for s in rows
    ]
    return Followed(
        number=number_of(ticket_id),
        state=state,
        outcome=outcome(
            state, None, lang, effect=_effects(app, [ticket_id]).get(ticket_id) if state == "resolved" else None
        ),
        # the message as the page shows it: a resolved ticket's is its note, in the runbook's own translation
        message=requester_message_in(
            state, head.message, head.reason, head.resolution_note, head.resolution_note_i18n, lang
        ),
        steps=steps,
        last_seq=max((s["position"] for s in steps), default=after),
        done=state in FINAL_STATES,
    )
