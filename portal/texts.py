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
    N_("This fix is for the service desk: run it from the agent desk, with a reason for the ticket."),
    N_(
        "This account is protected (an administrator or a service account): it is not available "
        "for one-click fixes. Hand it to the second-level team."
    ),
    N_(
        "The account is disabled (or not yet valid), and Firstline does not enable accounts, so it offers "
        "no unlock or reset here. Hand it to second level (identity management) with the account name and "
        "who confirmed that it should be enabled."
    ),
    N_(  # runner.agent.RESET_NOT_ENFORCED_WITHHELD
        "This directory would not make the person change a temporary password on this account (for "
        "example its password is set never to expire, or the password policy does not ask for a change), "
        "so Firstline offers no reset here: the temporary password would stay valid for good. Hand it to "
        "second level (identity management), who can reset it deliberately."
    ),
    N_(
        "The account has expired (its end date has passed), and Firstline does not extend accounts, so it offers "
        "no unlock or reset here. Hand it to second level (identity management) with the account name "
        "and the new end date, approved by the employee's manager."
    ),
    N_(
        "This account holds a role in Firstline (agent or auditor), so its password is not reset from "
        "the agent desk, where you would see the new password. The person can reset it with a code sent "
        "to their address (Forgot your password?), or the second-level team can."
    ),
    N_(
        "Firstline could not read all the groups of this account, so it cannot tell whether the account "
        "holds a role in Firstline, and its password is not reset from the agent desk. The person can reset "
        "it with a code sent to their address (Forgot your password?), or the second-level team can."
    ),
    N_("There is no ticket with that number."),
    N_(
        "The account name may hold letters, digits, '.', '_' and '-' only, "
        "start with a letter or digit and be at most 64 characters long"
    ),
    N_("This needs the agent role, which your account does not have."),
    N_("The directory is not one of the directories this service desk serves"),
    # runner messages with values: templates (runner.errors.Text), translated before they are filled in
    N_("parameter '%(name)s'"),
    N_("%(label)s must be true or false"),
    N_("%(label)s must be a whole number"),
    N_("%(label)s must be at least %(min)s"),
    N_("%(label)s must be at most %(max)s"),
    N_("%(label)s must be text"),
    N_("%(label)s is too long (at most %(max)s characters)"),
    N_("%(label)s contains a NUL character"),
    N_("%(label)s contains control characters"),
    N_("%(label)s contains control or invisible formatting characters"),
    N_(
        "%(label)s is not a valid account name (letters, digits, '.', '_' and '-', "
        "starting with a letter or digit, at most 64)"
    ),
    N_("%(label)s must be one of: %(values)s"),
    N_("%(label)s: no inventory is configured"),
    N_("%(label)s: no %(source)s are configured"),
    N_("%(label)s must be one of the choices offered: %(offered)s"),
    N_("%(label)s does not have the expected format"),
    N_("unknown parameter(s): %(unknown)s; this runbook takes none"),
    N_("unknown parameter(s): %(unknown)s; this runbook takes: %(known)s"),
    N_("%(label)s can only be set by the service desk"),
    N_("%(label)s is required"),
    N_("%(label)s: employees can only act on their own account"),
    N_("%(label)s must be one of the directories: %(names)s"),
    N_("%(label)s must be a name, name@domain or DOMAIN\\name (one '@' or one '\\', not both or twice)"),
    N_("%(label)s has a domain but no account name"),
    N_(
        "%(label)s: more than one account answers to that sign-in name (one has it as its userPrincipalName, "
        "another as its account name); give the account name as DOMAIN\\name"
    ),
    N_(
        "%(label)s: the directory could not be asked which account has that sign-in name; try again, or give "
        "the account name as DOMAIN\\name"
    ),
    N_("%(label)s: no account has that sign-in name; give the account name as DOMAIN\\name"),
    N_("%(label)s: the domain is not one this service desk serves; known: %(known)s"),
    N_("%(label)s: the domain is not one this service desk serves"),
    N_("%(label)s: employees can only act in their own directory"),
    N_("%(label)s and the account's domain point to different directories"),
    N_("%(label)s is required: choose one of the directories: %(names)s"),
    N_("the requester"),
    N_("%(label)s is required: name the account to act on (it never defaults to you)"),
    # runner.routing.Directories.principal / runner.queries person filters
    N_("%(label)s is empty"),
    N_(
        "%(label)s: a bare name could be in any of the directories (%(names)s); "
        "give name@domain or DOMAIN\\name (known: %(domains)s)"
    ),
    N_("%(name)s needs at least one name"),
    N_("The reason"),
    N_("Say which directory the account is in (directory: one of %(names)s)."),
    N_("The directory is not one of the directories this service desk serves (%(names)s)"),
    N_("You may act on accounts in no directory."),
    N_("You may act on accounts in these directories only: %(names)s."),
    N_("There is no one-click fix with that name. The fixes are: %(fixes)s."),
    N_("There is no account with that name in %(directory)s"),
    N_("There are no options to choose from: none are configured."),
    N_("Choose one of the offered options (%(options)s)"),
    N_("%(what)s must name an account (letters, digits, '.', '_' and '-')"),
    N_(
        "%(what)s is not a valid account name (letters, digits, '.', '_' and '-', "
        "starting with a letter or digit, at most 64; optionally name@domain or DOMAIN\\name)"
    ),
    N_("%(what)s must not be empty"),
    N_("%(what)s is too long (at most %(max)s characters)"),
    N_("%(what)s contains control, invisible or text-direction characters"),
    N_("the token's name"),
    N_("%(what)s must be text"),
    N_("%(what)s contains control or invisible characters"),
    N_("%(what)s '%(value)s' is not a valid value (lower-case letters, digits, '_', '.', '-')"),
    N_(
        "%(what)s '%(value)s' is not a category (lower-case letters, digits, '_' and '-', "
        "parts separated by '/', e.g. identity/password)"
    ),
    N_("%(what)s has no time zone; give an offset (naive times are not instants)"),
    N_("%(what)s must be a date or time"),
    N_("limit must be a whole number from 1 to %(max)s"),
    N_("the range is too long: at most %(days)s days"),
    N_("%(problem)s; name the person approving in plain text"),
    N_("--by (the person approving)"),
    N_("the requester (--as)"),
    N_(  # runner.selfservice.CONTROL_CHARACTER_MESSAGE
        "The new password contains a control character (such as a tab or a line break), "
        "which cannot be part of a password. Type it without."
    ),
    N_(  # runner.selfservice.UNLOCK_SETS_NOTHING_MESSAGE
        "An unlock code only unlocks the account: it does not set a password. To choose a new "
        "password, ask for a password reset code."
    ),
    N_("the acting person"),
    N_("%(what)s must carry a timezone (use UTC)"),
    N_("'%(key)s' is not one of the %(source)s in the inventory"),
    N_("'%(name)s' is not a runbook name"),
    N_("'%(name)s' is not a target in the inventory %(file)s"),
    N_("'%(number)s' is not a ticket number (they look like FL-000123)"),  # runner.ticketnumber
    N_("Firstline is busy (%(capacity)s runs in progress or waiting); nothing was started. Try again in a minute."),
    N_("choice '%(value)s' of %(source)s is no longer in the inventory"),
    N_("no runbook named '%(name)s'; available: %(known)s"),
    N_("runbook '%(name)s' is not available for self-service; ask the service desk"),
    N_("runbook '%(name)s' is not available to agents"),
    N_("ticket %(number)s does not exist"),
    N_("unknown channel '%(channel)s'"),
    N_("unknown proof '%(proof)s'"),
    # runner errors a page or the API shows (tests/unit/portal/test_runner_messages_in_dutch.py
    # finds every one raised in runner/)
    N_("the page link is not valid (it may belong to another search); start from the first page"),
    N_("the page link is not valid (it may belong to another search); start the search again"),
    N_("Firstline is shutting down and takes no new runs; try again in a moment."),
    N_("The form token is not valid; reload the page and send the form again"),
    N_("until must be later than since (since is inclusive, until exclusive)"),
    N_("since must be in the past (the range ends now when until is empty)"),
    N_("since and until must carry a time zone"),
    N_("There is no ticket of yours with that number."),
    N_("kind must be tickets or events"),
    N_("format must be csv or jsonl"),
    N_("your sign-in name does not say which directory holds your account; ask the service desk"),
    N_("the accounts given belong to different directories; one run acts on one directory"),
    N_(  # runner.runs.RESET_NEEDS_PROOF
        "A password is reset only after proving who you are with a one-time code "
        "(the sign-in page's 'Forgot your password?'). Signed in, change it with your current "
        "password ('Change my password')."
    ),
    N_(  # runner.auth.TEMPORARY_SIGNIN_MESSAGE
        "Your password is temporary: change it first ('Change my password'). "
        "Until then, this sign-in can do nothing else."
    ),
    N_(  # runner.runs.OWN_ACCOUNT_DENIED
        "Agents cannot reset or unlock their own account from the service desk: use "
        "'Change my password' with your current password, or the sign-in page's "
        "'Forgot your password?', or ask a colleague."
    ),
    N_(  # runner.runs.TOO_MANY_WRONG_PASSWORDS
        "The current password of this account was typed wrong %(tries)s times in the last %(hours)s hours, so "
        "Firstline changes it no more for now. Use 'Forgot your password?' on the sign-in page (a code by "
        "e-mail), or ask the service desk."
    ),
)
