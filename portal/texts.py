"""Texts from outside ``portal/`` that pages show translated (so ``pybabel extract`` finds
them): runner messages mapped by ``portal.errors`` and role names. ``N_`` marks only."""

from __future__ import annotations

from runner.auth import SIGNIN_FAILED


def N_(message: str) -> str:  # gettext's name for "mark, do not translate yet"
    return message


TEXTS = (
    N_(SIGNIN_FAILED),
    N_("The user name or password is not correct."),
    N_("Signing in is not possible right now: the directory does not answer. Try again later."),
    N_("employee"),
    N_("agent"),
    N_("auditor"),
    N_("Something went wrong on our side. It has been logged; please try again later."),
    N_("There is no page at this address."),
    N_("This address does not accept that kind of request."),
    N_("The request is too large."),
    N_("The request could not be read."),
    N_("The request could not be handled."),
    N_("The ticket store is not available right now. Try again later."),
    N_("This fix is not approved in its current form; the service desk has been told."),
    N_("You have no active token with that number."),
    # runner.agent (agent desk)
    N_("The directory did not answer the look-up. Try again in a moment."),
    N_("Acting on another person's account is done from the agent desk, as a one-click fix with a reason."),
    N_(
        "This account is protected (an administrator or a service account): it is not available "
        "for one-click fixes. Hand it to the second-level team."
    ),
    N_("There is no ticket with that number."),
    N_("The reason must not be empty"),
    N_("The reason is too long (at most 500 characters)"),
    N_("The reason contains control, invisible or text-direction characters"),
    N_(
        "The account name may hold letters, digits, '.', '_' and '-' only, "
        "start with a letter or digit and be at most 64 characters long"
    ),
    N_("This needs the agent role, which your account does not have."),
    N_("The directory is not one of the directories this service desk serves"),
)
