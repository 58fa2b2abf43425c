"""The agent desk: look an account up, prepare a one-click fix, read the escalated queue.

Used by the portal's agent pages and ``/api/v1`` agent routes (docs/portal.md "Agents");
the portal only parses input, calls these and shapes the answer. Rules:

* **Scope** (``scope``): an agent acts on the directories listed for the directory they
  signed in from in ``Settings.agent_scopes`` (``{"corp": ["corp", "ad"]}``); when their
  directory is not listed, on their own directory only. Another directory → ``PolicyDenied``
  naming the ones allowed. Only declared directories (``runner.routing``) count.
* **Look-up** (``lookup``): one ``account_status`` call of the ``ldap`` connector on the
  directory's target (never raw LDAP), audited as ``agent.account_lookup`` (who looked,
  at what, from where). The answer is an ``AccountView``: locked (and why), disabled,
  expired, password expired / must change / expiry date, and ``protected`` for
  privileged accounts (administrators, the service account): those get no one-click fix.
* **Fixes** (``prepare_fix``): only the runbooks in ``FIXES``; a REQUIRED reason
  (``work_note``: printable text, 1..``MAX_REASON`` characters, no control, invisible or
  text-direction characters) that the runner keeps on the ticket (``ticket.work_note``)
  and in the ``ticket.opened`` audit event. Account fixes name the account and the
  directory (in scope, account not protected — checked by a look-up before any change);
  ``password-reset`` never takes a password from the agent: the runbook generates a
  temporary one that must be changed at the next sign-in, returned once in
  ``RunOutcome.secrets`` and never stored. A reset is refused (``PolicyDenied``, audited
  ``agent.fix_refused`` with reason ``portal_role`` or ``roles_unknown``) for an account
  that holds the agent or auditor role, or whose groups cannot all be read: the agent
  would see that person's new password and could sign in as them (``ROLE_FIXES``,
  ``_portal_role``). Host fixes take a key of the inventory's ``choices`` (never a typed
  host name).
* **Escalated queue** (``escalated``) and tickets (``ticket_detail``): an agent sees tickets
  about a directory in their scope or about no directory (host fixes). The queue: state
  ``escalated``, newest first, keyset pages, each with its parameters (secrets already
  redacted), reason, work note, directory, requester and opener, and every step's stored
  (redacted) inputs and outputs.

Errors: ``ParameterError`` (422: the field, never the value), ``PolicyDenied`` (403: the
reason), ``NotFoundError`` (404: unknown fix), ``LookupFailed`` (503: the directory did
not answer) — all ``FirstlineError`` with texts safe to show.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from connectors.base import ConnectorError
from runner import cursors
from runner.auth import roles_for, same_dn
from runner.engine import Read
from runner.errors import FirstlineError, NotFoundError, ParameterError, PolicyDenied, Text
from runner.ledger.audit import Actor, Held
from runner.ledger.store import reading, transaction
from runner.ledger.tables import step_result, ticket
from runner.oplog import get_logger
from runner.params import account_of_upn
from runner.queries import DEFAULT_LIMIT, TicketFilter, _limit, _ticket_row, page_tickets
from runner.routing import Directory, same_account_name
from runner.runbook import ACCOUNT_PATTERN, Runbook
from runner.safetext import free_text, principal

if TYPE_CHECKING:
    from runner.auth import Principal
    from runner.service import Firstline

MAX_REASON = 500
# runbook -> what it acts on: "account" (user + directory) or the inventory choices source.
FIXES: dict[str, str] = {
    "account-unlock": "account",
    "password-reset": "account",
    "printer-queue-clear": "printers",
    "service-restart": "services",
    "disk-cleanup": "cleanup",
}
DESK_ONLY_MESSAGE = "This fix is for the service desk: run it from the agent desk, with a reason for the ticket."


def desk_only(runbook: Runbook) -> bool:
    """A one-click fix only agents may run (``audience`` without ``self_service``): it is run
    from the agent desk, with a reason (``guard_run``), never as a plain portal run."""
    return runbook.name in FIXES and "self_service" not in runbook.model.audience


# the runbook parameter that holds the choice key, per choices source
CHOICE_PARAM = {"printers": "printer", "services": "service", "cleanup": "location"}
_ACCOUNT = re.compile(ACCOUNT_PATTERN, re.ASCII)
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
PROTECTED = (
    "This account is protected (an administrator or a service account): it is not available "
    "for one-click fixes. Hand it to the second-level team."
)
# A reset shows the agent the new password: for an account that holds a portal role, the agent
# could then sign in as a fellow agent (acting under their name) or as an auditor.
PORTAL_ROLE = (
    "This account holds a role in Firstline (agent or auditor), so its password is not reset from "
    "the agent desk, where you would see the new password. The person can reset it with a code sent "
    "to their address (Forgot your password?), or the second-level team can."
)
DISABLED_WITHHELD = (
    "The account is disabled (or not yet valid), and Firstline does not enable accounts, so it offers "
    "no unlock or reset here. Hand it to second level (identity management) with the account name and "
    "who confirmed that it should be enabled."
)
RESET_NOT_ENFORCED_WITHHELD = (
    "This directory would not make the person change a temporary password on this account (for "
    "example its password is set never to expire, or the password policy does not ask for a change), "
    "so Firstline offers no reset here: the temporary password would stay valid for good. Hand it to "
    "second level (identity management), who can reset it deliberately."
)
EXPIRED_WITHHELD = (
    "The account has expired (its end date has passed), and Firstline does not extend accounts, so it offers "
    "no unlock or reset here. Hand it to second level (identity management) with the account name "
    "and the new end date, approved by the employee's manager."
)
ROLES_UNKNOWN = (
    "Firstline could not read all the groups of this account, so it cannot tell whether the account "
    "holds a role in Firstline, and its password is not reset from the agent desk. The person can reset "
    "it with a code sent to their address (Forgot your password?), or the second-level team can."
)
ROLE_FIXES = frozenset({"password-reset"})  # the fixes that hand the agent a credential


class LookupFailed(FirstlineError):
    """The directory could not be asked about the account (down, refused, misconfigured)."""

    def __init__(self) -> None:
        super().__init__("The directory did not answer the look-up. Try again in a moment.")


def work_note(value: object) -> str:
    """The agent's reason, stripped: 1..``MAX_REASON`` printable characters (``ParameterError``)."""
    return free_text(value, what=Text("The reason"), limit=MAX_REASON)


def account_name(value: object) -> str:
    """A bare account name (letters, digits, ``.``, ``_``, ``-``; at most 64), else ``ParameterError``."""
    if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
        raise ParameterError(
            "The account name may hold letters, digits, '.', '_' and '-' only, "
            "start with a letter or digit and be at most 64 characters long"
        )
    return value


def scope(app: Firstline, who: Principal) -> list[Directory]:
    """The directories *who* may act on (see the module docstring), in the configured order."""
    dirs = app.inventory.directories
    keys = app.settings.agent_scopes.get(who.directory, [who.directory])
    return [dirs.entries[k] for k in keys if k in dirs.entries]


NO_SUCH_ACCOUNT = "There is no account with that name in %(directory)s"


def directory_in_scope(app: Firstline, who: Principal, key: object) -> Directory:
    """The declared directory *key*, if *who* is an agent who may act on it."""
    if "agent" not in who.roles:
        raise PolicyDenied("This needs the agent role, which your account does not have.")
    dirs = app.inventory.directories
    allowed = scope(app, who)
    yours = ", ".join(d.key for d in allowed) or dirs.names()  # a hint names what this agent may use
    if key is None or key == "":
        raise ParameterError("Say which directory the account is in (directory: one of %(names)s).", names=yours)
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ParameterError("The directory is not one of the directories this service desk serves")
    if key not in dirs.entries:
        # the configuration's name in another case (CORP for corp) is that directory
        same = [k for k in dirs.entries if k.casefold() == key.casefold()]
        if len(same) != 1:
            raise ParameterError(
                "The directory is not one of the directories this service desk serves (%(names)s)", names=yours
            )
        key = same[0]
    if all(d.key != key for d in allowed):
        if not allowed:
            raise PolicyDenied("You may act on accounts in no directory.")
        names = ", ".join(d.key for d in allowed)
        raise PolicyDenied("You may act on accounts in these directories only: %(names)s.", names=names)
    return dirs.entries[key]


@dataclass(frozen=True)
class AccountView:
    """What an agent sees of one account. ``protected``: privileged, no one-click fixes."""

    directory: str
    directory_label: str
    user: str
    exists: bool
    locked: bool = False
    lock_reason: str = ""  # "failures" | "admin" | ""
    disabled: bool = False
    expired: bool = False
    must_change: bool = False
    must_change_unknown: bool = False  # marked, but whether the directory enforces it is not known
    password_expired: bool = False
    password_expires: str = ""
    protected: bool = False
    own: bool = False  # the agent's own account: no one-click fixes (``runner.runs`` refuses them)
    name: str = ""
    fixes: tuple[str, ...] = field(default_factory=tuple)
    # fixes not offered for this account, and why: (fix, reason code, English message) — a
    # reset for an account holding a portal role (``ROLE_FIXES``), refused on submit too
    withheld: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "directory_label": self.directory_label,
            "user": self.user,
            "exists": self.exists,
            "locked": self.locked,
            "lock_reason": self.lock_reason or None,
            "disabled": self.disabled,
            "expired": self.expired,
            "must_change": self.must_change,
            "must_change_unknown": self.must_change_unknown,
            "password_expired": self.password_expired,
            "password_expires": self.password_expires or None,
            "protected": self.protected,
            "own_account": self.own,
            "name": self.name or None,
            "fixes": list(self.fixes),
            "withheld": [{"fix": f, "reason": r, "message": m} for f, r, m in self.withheld],
        }


def _actor(who: Principal, client_ip: str | None, user_agent: str | None, on_behalf_of: str | None = None) -> Actor:
    return Actor(
        who.account, tuple(sorted(who.roles)), on_behalf_of=on_behalf_of, client_ip=client_ip, user_agent=user_agent
    )


def lookup(
    app: Firstline, who: Principal, directory: object, user: object, *, client_ip: str | None, user_agent: str | None
) -> AccountView:
    """Read *user* in *directory* for the agent *who* (scope checked first; audited). A fix
    that would hand the agent a credential (``ROLE_FIXES``) is not offered for an account
    holding a portal role, or whose groups cannot all be read: it is listed in ``withheld``
    with the reason, as submitting it would be refused (``_prepare_fix``). That costs this
    page one more directory request (the account's groups); a fix's own look-up does not."""
    view, _read = _lookup(app, who, directory, user, client_ip=client_ip, user_agent=user_agent)
    offered = [f for f in view.fixes if f in ROLE_FIXES]
    if not offered:
        return view
    try:
        refusal = _portal_role(app, app.inventory.directories.entries[view.directory], view.user)
    except LookupFailed:
        refusal = ("roles_unknown", ROLES_UNKNOWN)
    if refusal is None:
        return view
    return replace(
        view,
        fixes=tuple(f for f in view.fixes if f not in ROLE_FIXES),
        withheld=view.withheld + tuple((f, refusal[0], refusal[1]) for f in offered),
    )


def _lookup(
    app: Firstline,
    who: Principal,
    directory: object,
    user: object,
    *,
    client_ip: str | None,
    user_agent: str | None,
    held: Held | None = None,
) -> tuple[AccountView, Read]:
    """``lookup``, and the read itself (``runner.engine.Read``) for a fix that follows.
    *held*: the successful look-up's audit event goes there instead of its own transaction."""
    d = directory_in_scope(app, who, directory)
    name = account_name(user)
    try:
        with app.pool.using("ldap", d.target) as ldap:
            status = ldap.run("account_status", {"user": name}, timeout=app.settings.default_step_timeout)
    except ConnectorError as exc:
        _audit(app, who, "agent.account_lookup", "failure", f"{d.key}:{name}", client_ip, user_agent, reason=exc.reason)
        raise LookupFailed() from exc
    # From here on the account is named as the directory names it (its own name, ASCII in
    # lower case as sign-in records a person): typed in another case or by a second uid it
    # kept after a rename, it is still one account in the view, the ticket, its lock and the audit.
    own = _own_name(status)
    name = own if own is not None else name
    target = f"{d.key}:{name}"
    read = Read("ldap", d.target, "account_status", {"user": name}, dict(status), time.monotonic())
    mine = d.key == who.directory and (
        same_account_name(name, who.username) or same_dn(str(status.get("dn") or ""), who.dn)
    )
    view = _view(d, name, status, own=mine)
    detail = {"directory": d.key, "exists": view.exists, "protected": view.protected}
    if held is not None:
        held.add(
            _actor(who, client_ip, user_agent), "agent.account_lookup", outcome="success", target=target, detail=detail
        )
    else:
        _audit(app, who, "agent.account_lookup", "success", target, client_ip, user_agent, detail=detail)
    return view, read


def _own_name(status: Mapping[str, Any]) -> str | None:
    """The account's own name from a look-up (``account``: the connector's one spelling per
    entry), ASCII folded to lower case; None when there is no such account or the name is
    not one an account name can be."""
    own = str(status.get("account") or "")
    if not status.get("exists") or not own:
        return None
    try:
        own = account_name(own)
    except ParameterError:
        return None
    return own.lower() if own.isascii() else own


def _portal_role(app: Firstline, d: Directory, user: str) -> tuple[str, str] | None:
    """(audit reason, message) when *user* of *d* holds the agent or auditor role, or when
    that cannot be told (its groups could not all be read: ``roles_unknown``); None when it
    holds neither. Its groups are read as sign-in reads them (``account_groups``: nested
    groups included) and mapped by ``runner.auth.roles_for``, so a person is protected here
    exactly when sign-in would give them the role. ``LookupFailed`` when the directory does
    not answer. Only for ``ROLE_FIXES``: the unlock path asks nothing more."""
    try:
        with app.pool.using("ldap", d.target) as ldap:
            found = ldap.run("account_groups", {"user": user}, timeout=app.settings.default_step_timeout)
    except ConnectorError as exc:
        raise LookupFailed() from exc
    groups = [str(g) for g in found.get("groups") or []]
    roles = roles_for(d.key, groups, app.settings.agent_groups, app.settings.auditor_groups)
    if roles & {"agent", "auditor"}:
        return "portal_role", PORTAL_ROLE
    if found.get("groups_complete") is not True:
        return "roles_unknown", ROLES_UNKNOWN
    return None


def _view(d: Directory, user: str, status: Mapping[str, Any], *, own: bool = False) -> AccountView:
    exists = bool(status.get("exists"))
    protected = bool(status.get("privileged"))
    fixes: tuple[str, ...] = ()
    withheld: tuple[tuple[str, str, str], ...] = ()
    if exists and not protected and not own:
        fixes = ("account-unlock", "password-reset") if status.get("locked") else ("password-reset", "account-unlock")
        # the connector refuses both for a disabled or expired account (escalated): offered, they
        # only ever opened a ticket that went to second level
        if status.get("disabled"):
            withheld = tuple((f, "disabled", DISABLED_WITHHELD) for f in fixes)
        elif status.get("expired"):
            withheld = tuple((f, "expired", EXPIRED_WITHHELD) for f in fixes)
        elif status.get("reset_blocked"):
            # the connector would refuse the desk's must-change reset (must_change_not_enforced /
            # _unknown / _impossible): offered, it only ever opened a ticket for second level
            withheld = (("password-reset", str(status["reset_blocked"]), RESET_NOT_ENFORCED_WITHHELD),)
        fixes = tuple(f for f in fixes if f not in {w[0] for w in withheld})
    name = " ".join(str(status.get(k) or "") for k in ("given_name", "surname")).strip()
    return AccountView(
        directory=d.key,
        directory_label=d.label,
        user=user,
        exists=exists,
        locked=bool(status.get("locked")),
        lock_reason=str(status.get("lock_reason") or ""),
        disabled=bool(status.get("disabled")),
        expired=bool(status.get("expired")),
        must_change=bool(status.get("must_change")),
        must_change_unknown=bool(status.get("must_change_unknown")),
        password_expired=bool(status.get("password_expired")),
        password_expires=str(status.get("password_expires") or ""),
        protected=protected,
        own=own and exists,
        name=name,
        fixes=fixes,
        withheld=withheld,
    )


def _audit(
    app: Firstline,
    who: Principal,
    action: str,
    outcome: str,
    target: str | None,
    client_ip: str | None,
    user_agent: str | None,
    *,
    reason: str | None = None,
    runbook: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    with transaction(app.engine) as conn:
        app.audit.append(
            conn,
            _actor(who, client_ip, user_agent),
            action,
            outcome=outcome,
            target=target,
            runbook=runbook,
            reason=reason,
            detail=dict(detail or {}),
        )


@dataclass(frozen=True)
class FixRequest:
    """A checked one-click fix, ready for ``portal.runs.run`` (or the run seam's submit)."""

    runbook: str
    params: dict[str, Any]
    requester: str  # on whose behalf: the account (qualified when its directory has a domain) or the agent
    work_note: str
    directory: str | None = None
    reads: tuple[Read, ...] = ()  # read-only calls made while checking the request (the look-up)
    # The look-up's audit event, written with the ticket (or the refusal) by the run seam's
    # submit, or by ``held.flush`` when nothing took it (``portal.runs.submit`` does).
    held: Held | None = None


def fix_kind(runbook: object) -> str:
    """``account`` or the choices source of a one-click fix; ``NotFoundError`` otherwise."""
    if not isinstance(runbook, str) or runbook not in FIXES:
        raise NotFoundError(
            "There is no one-click fix with that name. The fixes are: %(fixes)s.", fixes=", ".join(FIXES)
        )
    return FIXES[runbook]


def prepare_fix(
    app: Firstline,
    who: Principal,
    runbook: object,
    values: Mapping[str, Any],
    reason: object,
    *,
    client_ip: str | None,
    user_agent: str | None,
) -> FixRequest:
    """Check a one-click fix request (see the module docstring) before anything runs.

    *values*: ``user`` and ``directory`` for account fixes; ``choice`` (an inventory
    choices key) and optionally ``on_behalf_of`` (an account name) for host fixes. For an
    account fix the account is looked up first: a protected or unknown account is refused
    here (``PolicyDenied`` / ``ParameterError``) and nothing changes.

    The look-up's audit event is held (``FixRequest.held``) for the run seam to write with
    the ticket; the caller passes it to submit and calls ``flush_held`` when done (a
    refusal here writes it before raising).
    """
    held = Held()
    try:
        return _prepare_fix(app, who, runbook, values, reason, held, client_ip=client_ip, user_agent=user_agent)
    except BaseException:
        flush_held(app, held)  # refused: a look-up made is still recorded
        raise


def flush_held(app: Firstline, held: Held | None) -> None:
    """Write the audit events in *held* that no transaction took (``Held.flush``); a ledger
    failure is logged (``audit.held_not_recorded``), never raised over the caller's own."""
    if held is None:
        return
    try:
        held.flush(app.engine, app.audit)
    except FirstlineError:
        get_logger().exception("audit.held_not_recorded")


def _prepare_fix(
    app: Firstline,
    who: Principal,
    runbook: object,
    values: Mapping[str, Any],
    reason: object,
    held: Held,
    *,
    client_ip: str | None,
    user_agent: str | None,
) -> FixRequest:
    if "agent" not in who.roles:
        raise PolicyDenied("This needs the agent role, which your account does not have.")
    kind = fix_kind(runbook)
    assert isinstance(runbook, str)
    note = work_note(reason)
    if kind == "account":
        d = directory_in_scope(app, who, values.get("directory"))
        view, read = _lookup(
            app, who, d.key, account_name(values.get("user")), client_ip=client_ip, user_agent=user_agent, held=held
        )
        user = view.user  # the account's own name (``_lookup``)
        if not view.exists:
            held.flush(app.engine, app.audit)  # refused here: the look-up on its own, first
            raise ParameterError(NO_SUCH_ACCOUNT, directory=d.label)
        refusal = ("protected", PROTECTED) if view.protected else None
        if refusal is None and runbook in ROLE_FIXES and not view.own:  # own: the run seam says what instead
            refusal = _portal_role(app, d, user)
        if refusal is not None:
            held.flush(app.engine, app.audit)  # the look-up first, then the refusal
            _audit(
                app,
                who,
                "agent.fix_refused",
                "denied",
                f"{d.key}:{user}",
                client_ip,
                user_agent,
                reason=refusal[0],
                runbook=runbook,
            )
            raise PolicyDenied(refusal[1])
        params: dict[str, Any] = {"user": user, "directory": d.key}
        if runbook == "password-reset":
            params["must_change"] = True  # a temporary password, generated by the runbook
        requester = d.principal(user)  # as the portal records the person (runner.routing)
        # the look-up just made stands in for the runbook's identical read (runner.engine.Prefetched)
        return FixRequest(runbook, params, requester, note, d.key, (read,), held)
    choice = values.get("choice")
    offered = app.inventory.choices.get(kind, {})
    if not isinstance(choice, str) or not _KEY.fullmatch(choice) or choice not in offered:
        if not offered:
            raise ParameterError("There are no options to choose from: none are configured.")
        raise ParameterError("Choose one of the offered options (%(options)s)", options=", ".join(sorted(offered)))
    behalf = values.get("on_behalf_of")
    requester = who.account
    if behalf not in (None, ""):  # recorded as the portal records that person (runner.routing)
        raw = principal(behalf, what=Text("On behalf of"))
        dirs = app.inventory.directories
        requester = dirs.principal(raw, "On behalf of")
        if dirs.entries:
            # The ticket and the audit name this person as the one served: it must be a real
            # account in a directory this agent may act on (looked up and audited as any look-up).
            key, name = dirs.split(raw, "On behalf of", keep_upn=True)
            key = key if key is not None else dirs.default
            if "@" in name:
                # A sign-in name (UPN) typed for an Active Directory directory: the person is the
                # account it belongs to, whose account name may be anything (its name part may
                # even be another person's account name); two accounts answering is refused.
                d = directory_in_scope(app, who, key)
                name = account_of_upn(app.inventory, d, name, "On behalf of")
                requester = d.principal(name)
            view, _read = _lookup(
                app,
                who,
                key,
                name,
                client_ip=client_ip,
                user_agent=user_agent,
                held=held,
            )
            if not view.exists:
                held.flush(app.engine, app.audit)
                raise ParameterError(NO_SUCH_ACCOUNT, directory=view.directory_label)
            requester = dirs.get(view.directory).principal(view.user)  # its own name (``_lookup``)
    return FixRequest(runbook, {CHOICE_PARAM[kind]: choice}, requester, note, held=held)


def guard_run(app: Firstline, who: Principal, runbook: str, params: Mapping[str, Any], note: str | None) -> None:
    """The rule for EVERY portal run (``portal.runs.run`` calls it): an agent who names an
    account or a directory acts on someone else's account, which only the agent desk's
    one-click fixes do — with a reason (*note*), in scope, and with a bare account name
    (so a qualified name cannot route the run to another directory); a fix only agents may
    run (``desk_only``: service restart, disk cleanup) needs the reason whatever it names.
    ``PolicyDenied`` otherwise. Employees are not concerned (the runner pins their target to
    themself, and the audience rule keeps agent-only runbooks from them).
    """
    if "agent" not in who.roles:
        return
    try:
        rb = app.runbook(runbook)
    except FirstlineError:
        return  # the runner refuses an unknown or broken runbook itself
    if note is None and desk_only(rb):
        # a service restart or a disk cleanup acts for others too: never without a reason
        raise PolicyDenied(DESK_ONLY_MESSAGE)
    named = [
        p for p in rb.model.parameters if p.type in ("account", "directory") and params.get(p.name) not in (None, "")
    ]
    if not named:
        return
    if note is None:
        raise PolicyDenied(
            "Acting on another person's account is done from the agent desk, as a one-click fix with a reason."
        )
    for p in named:
        if p.type == "directory":
            directory_in_scope(app, who, params.get(p.name))
        else:
            account_name(params.get(p.name))


def choices(app: Firstline, runbook: str) -> list[tuple[str, str]]:
    """(key, label) of the inventory choices a host fix offers, sorted by label."""
    kind = fix_kind(runbook)
    if kind == "account":
        return []
    offered = app.inventory.choices.get(kind, {})
    return sorted(((k, str(v.get("label") or k)) for k, v in offered.items()), key=lambda kv: kv[1].lower())


def temporary_password(secrets: Mapping[str, str]) -> str | None:
    """The generated temporary password among a run's once-only secrets (``<step>.temporary_password``)."""
    return next((v for k, v in secrets.items() if k.rsplit(".", 1)[-1] == "temporary_password"), None)


def _loads(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


def _details(app: Firstline, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """*items* (ticket rows) with ``work_note`` and ``steps`` added."""
    ids = [int(item["id"]) for item in items]
    notes: dict[int, str | None] = {}
    steps: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        c = step_result.c
        with reading(app.engine) as conn:
            for row in conn.execute(select(ticket.c.id, ticket.c.work_note).where(ticket.c.id.in_(ids))):
                notes[row.id] = row.work_note
            rows = conn.execute(
                select(
                    c.ticket_id,
                    c.seq,
                    c.step_id,
                    c.connector,
                    c.action,
                    c.target,
                    c.status,
                    c.inputs,
                    c.outputs,
                    c.reason,
                    c.message,
                    c.attempts,
                    c.started_at,
                    c.finished_at,
                )
                .where(c.ticket_id.in_(ids))
                .order_by(c.ticket_id, c.seq)
            ).mappings()
            for r in rows:
                step = {k: r[k] for k in r.keys() if k != "ticket_id"}
                step["inputs"], step["outputs"] = _loads(r["inputs"]), _loads(r["outputs"])
                steps[int(r["ticket_id"])].append(step)
    return [{**item, "work_note": notes.get(int(item["id"])), "steps": steps[int(item["id"])]} for item in items]


def _scope_keys(app: Firstline, who: Principal) -> list[str]:
    return [d.key for d in scope(app, who)]


def _in_scope(keys: list[str]) -> Any:
    """Tickets about one of *keys*, or about no directory (printers, services, disks)."""
    return or_(ticket.c.directory.is_(None), ticket.c.directory.in_(keys))


def _cursor(keys: list[str], last_id: int) -> str:
    return cursors.encode("escalated", cursors.fingerprint(keys), last_id)


def _after(keys: list[str], cursor: str) -> int:
    bad = "the page link is not valid (it may belong to another search); start from the first page"
    return cursors.decode("escalated", cursors.fingerprint(keys), cursor, bad)


def escalated(
    app: Firstline, who: Principal, cursor: str | None = None, limit: object = DEFAULT_LIMIT
) -> dict[str, Any]:
    """One page of the escalated queue *who* may see: ``{"items", "next_cursor", "limit"}``.

    Tickets in state ``escalated`` about a directory in *who*'s scope or about no directory,
    newest first (keyset on the ticket id; the cursor is bound to the scope). Each item is a
    ticket row (``runner.queries`` shape) plus ``work_note`` and ``steps`` (seq, step_id,
    connector, action, target, status, inputs, outputs, reason, message, attempts,
    started_at, finished_at) as stored — secrets were redacted before storing.
    ``ParameterError`` for a bad cursor or limit.
    """
    n = _limit(limit)
    keys = _scope_keys(app, who)
    q = select(ticket).where(ticket.c.state == "escalated", _in_scope(keys))
    if cursor:
        q = q.where(ticket.c.id < _after(keys, cursor))
    with reading(app.engine) as conn:
        rows = [_ticket_row(r) for r in conn.execute(q.order_by(ticket.c.id.desc()).limit(n + 1)).mappings()]
    more = len(rows) > n
    rows = rows[:n]
    return {
        "items": _details(app, rows),
        "next_cursor": _cursor(keys, int(rows[-1]["id"])) if more else None,
        "limit": n,
    }


def ticket_detail(app: Firstline, who: Principal, number: object) -> dict[str, Any]:
    """One ticket (``FL-000123``, in any spelling ``runner.ticketnumber`` accepts) with its
    work note and steps, if it is about a directory in *who*'s scope or about none;
    ``NotFoundError`` otherwise; ``NotATicketNumber`` for what is not a ticket number (the
    same sentence as on every other surface)."""
    f = TicketFilter.from_params({"ticket": number})
    page = page_tickets(app.engine, f, None, 1)
    keys = _scope_keys(app, who)
    if not page.items or page.items[0]["directory"] not in (None, *keys):
        raise NotFoundError("There is no ticket with that number.")
    return _details(app, page.items)[0]
