"""Ticket numbers as people type them: one rule for every surface.

A ticket's number is ``FL-`` and its id, zero-padded to six digits (``FL-000123``; ids of
seven digits and more are written out whole), as ``runner.ledger.tickets.number_of`` makes
it. Read back (``firstline tickets show``, the JSON API, the portal's pages and the
auditor's ``ticket`` filter, and through that filter the agent desk), a number may be typed

* with or without the prefix, in any case: ``FL-000123``, ``fl-000123``, ``000123``, ``123``;
* with or without the leading zeros: ``FL-123`` is ``FL-000123``;
* with spaces around it;

as one to nine ASCII digits that are not all zero. Anything else (``FL123``, ``FL-``,
``FL-12a``, ``#123``, full-width digits, ten digits) is refused with one sentence,
``NOT_A_TICKET_NUMBER``, everywhere: ``NotATicketNumber`` (a ``ParameterError``: exit 2 in
the CLI, 422 ``invalid_input`` in the portal).
"""

from __future__ import annotations

import re

from runner.errors import ParameterError
from runner.safetext import shown

PREFIX = "FL-"
MAX_DIGITS = 9
NOT_A_TICKET_NUMBER = "'%(number)s' is not a ticket number (they look like FL-000123)"
_TYPED = re.compile(r"(?:FL-)?([0-9]{1,9})", re.ASCII | re.IGNORECASE)


class NotATicketNumber(ParameterError):
    """*typed* is not a ticket number in any spelling the rule above accepts."""

    def __init__(self, typed: object) -> None:
        super().__init__(NOT_A_TICKET_NUMBER, number=shown(typed, 24))


def ticket_id(typed: object) -> int:
    """The ticket id that *typed* (a number as a person gives it) names; ``NotATicketNumber``."""
    found = _TYPED.fullmatch(typed.strip()) if isinstance(typed, str) else None
    if found is None or int(found.group(1)) == 0:
        raise NotATicketNumber(typed)
    return int(found.group(1))


def number_of(ticket_id: int) -> str:
    """The canonical number of *ticket_id*: ``FL-000123``."""
    return f"{PREFIX}{ticket_id:06d}"


def canonical(typed: object) -> str:
    """*typed* as the canonical number (``fl-123`` → ``FL-000123``); ``NotATicketNumber``."""
    return number_of(ticket_id(typed))
