"""Portal sign-in, sessions and API tokens (docs/portal.md "Sign-in, sessions, roles").

* ``sign_in(login, password, ...)``: throttles first (per account name and per client
  address, in the database so every portal process shares them), then routes the name
  to its directory (``runner.routing``), then binds as the user through the ``ldap``
  connector's ``authenticate`` action. Every refusal that concerns the account raises
  ``SignInFailed`` with one message, and takes at least ``signin_min_seconds``.
* Sessions: a random 256-bit id for the cookie; only its SHA-256 is stored
  (``portal_session``). Idle and absolute expiry; ``end_sessions_of`` removes every
  session of an account (called after its password changed).
* API tokens: ``fl_`` + 256 random bits, shown once; only the SHA-256 is stored
  (``portal_api_token``); revocable.
* CSRF tokens are derived from the session id (``csrf_token``), never stored.
* Roles are read again (``recheck``): a session or token whose roles were last read from
  the directory (``roles_read_at`` on its row) more than ``Settings.role_recheck_seconds``
  ago (default 300) is checked against the directory before it is believed. An account that is gone,
  disabled (an OpenLDAP administrator lock included) or expired loses every session and
  token at once (``end_sessions_of``, reason ``account_gone`` / ``account_disabled`` /
  ``account_expired``); a role whose group the account left is dropped from that session or
  token (audited ``portal.roles_changed``). A re-read never adds a role: one granted since
  comes with the next sign-in (or a new token). A directory that cannot be asked leaves the
  roles as they are and is asked again after ``ROLE_RETRY_SECONDS``.

Roles: ``employee`` for everyone who signs in; ``agent`` / ``auditor`` when one of the
account's groups (nested included) is listed for its directory in
``Settings.agent_groups`` / ``Settings.auditor_groups`` (DNs compared per RFC 4514).
Errors: ``SignInFailed``, ``SignInThrottled`` (``retry_after`` seconds) and
``DirectoryUnavailable`` — all ``FirstlineError`` subclasses whose text is safe to show.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, delete, insert, select, update

from connectors.base import ConnectorError, InvalidInput, Rejected
from connectors.ldap_protect import canonical_dn
from runner.errors import FirstlineError, ParameterError, PolicyDenied, Text
from runner.ledger.audit import Actor
from runner.ledger.portal_tables import portal_api_token, portal_session, portal_throttle
from runner.ledger.store import first_row, reading, transaction
from runner.ledger.tables import MAX_ROW_ID
from runner.pseudonym import typed_name
from runner.runbook import ACCOUNT_PATTERN
from runner.safetext import free_text

if TYPE_CHECKING:
    from runner.service import Firstline

ROLES = ("employee", "agent", "auditor")
_ACCOUNT = re.compile(ACCOUNT_PATTERN, re.ASCII)
SIGNIN_FAILED = "The user name or password is not correct."
TOKEN_PREFIX = "fl_"  # noqa: S105 - a public prefix, not a secret
_TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often per session
ROLE_RETRY_SECONDS = 30.0  # a role re-read the directory did not answer is tried again after this
_ROLE_MEMO_MAX = 4096  # (via, id) -> last re-read kept per process; older ones are dropped beyond it


class SignInFailed(FirstlineError):
    """The sign-in was refused; the message never says why."""

    def __init__(self) -> None:
        super().__init__(SIGNIN_FAILED)


class SignInThrottled(FirstlineError):
    """Too many failed sign-ins for this account name or client address; wait ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, (retry_after + 59) // 60)
        super().__init__(f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.")
        self.retry_after = retry_after


# A session signed in with a temporary password (the directory wants a new one: an agent's
# reset, pwdReset / pwdLastSet=0, or an expired one in its grace) may only change it. The
# agent who made the password saw it: with a full session they could act as the person, or
# make an API token that outlives the change.
TEMPORARY_SIGNIN_MESSAGE = (
    "Your password is temporary: change it first ('Change my password'). Until then, this sign-in can do nothing else."
)
TEMPORARY_RUNBOOKS = frozenset({"password-change"})  # what such a session may run


class PasswordChangeRequired(PolicyDenied):
    """The caller signed in with a password the directory wants changed (``TEMPORARY_SIGNIN_MESSAGE``)."""

    reason_code = "password_change_required"


def require_changed_password(who: Principal, runbook: str | None = None) -> None:
    """``PasswordChangeRequired`` when *who* signed in with a temporary password, unless
    *runbook* is one such a session may run (``TEMPORARY_RUNBOOKS``)."""
    if who.must_change and (runbook is None or runbook not in TEMPORARY_RUNBOOKS):
        raise PasswordChangeRequired(TEMPORARY_SIGNIN_MESSAGE)


class DirectoryUnavailable(FirstlineError):
    """The directory could not be asked (down, timing out, misconfigured)."""

    def __init__(self) -> None:
        super().__init__("Signing in is not possible right now: the directory does not answer. Try again later.")


@dataclass(frozen=True)
class Principal:
    """A signed-in person as every portal route sees them.

    ``account`` is the id passed to the runner as requester / actor: ``name@domain``
    when the directory serves a domain, else the bare name. ``via`` is ``session`` or
    ``token``; ``session_id`` is the row id of the session or token.
    """

    account: str
    directory: str
    username: str
    dn: str
    display_name: str
    roles: frozenset[str]
    via: str = "session"
    session_id: int = 0
    must_change: bool = False  # signed in with a temporary password: only changing it is allowed
    roles_read_at: str | None = None  # when the roles were last read from the directory (None: not known)

    def has(self, role: str) -> bool:
        return role in self.roles


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def csrf_token(secret: str, purpose: str = "session") -> str:
    """The CSRF token bound to a session id (or pre-session id): derived, never stored."""
    return hashlib.sha256(f"firstline-csrf\0{purpose}\0{secret}".encode()).hexdigest()


def csrf_ok(secret: str | None, given: str | None, purpose: str = "session") -> bool:
    if not secret or not given:
        return False
    # as bytes: compare_digest refuses str with non-ASCII characters (TypeError: a 500 for a
    # header or form field such as X-CSRF-Token: é)
    return hmac.compare_digest(csrf_token(secret, purpose).encode(), given.encode("utf-8", "surrogatepass"))


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def same_dn(a: str, b: str) -> bool:
    """Do the DNs *a* and *b* name one entry (RFC 4514 comparison; False for '' or a malformed one)?"""
    try:
        return canonical_dn(a) == canonical_dn(b)
    except (ValueError, UnicodeDecodeError):
        return False


def roles_for(
    directory: str, groups: Iterable[str], agent: Mapping[str, Sequence[str]], auditor: Mapping[str, Sequence[str]]
) -> frozenset[str]:
    """``employee`` plus every role whose configured groups (for *directory*) hold the account."""
    held = list(groups)
    roles = {"employee"}
    for role, mapping in (("agent", agent), ("auditor", auditor)):
        if any(same_dn(g, want) for want in mapping.get(directory, ()) for g in held):
            roles.add(role)
    return frozenset(roles)


class AuthService:
    """Sign-in, sessions and API tokens over the Firstline service's database and directories."""

    def __init__(self, app: Firstline) -> None:
        self.app = app
        self.settings = app.settings
        self.engine = app.engine
        self._roles_read: dict[tuple[str, int], float] = {}  # (via, row id) -> time.monotonic()

    # -- sign-in ------------------------------------------------------------------------
    def sign_in(
        self, login: str, password: str, *, client_ip: str | None, user_agent: str | None
    ) -> tuple[Principal, str]:
        """Check the password against the account's directory; return the principal and a
        new session id (for the cookie). Raises ``SignInThrottled`` before any directory
        look-up when a limit is reached, ``SignInFailed`` for anything about the account,
        ``DirectoryUnavailable`` when the directory cannot be asked."""
        started = time.monotonic()
        login = login.strip() if isinstance(login, str) else ""
        keys = [("account", self._throttled_name(login)), ("address", client_ip or "unknown")]
        try:
            self._check_throttle(keys)
        except SignInThrottled as exc:
            self._audit_blocked(keys, exc.retry_after, self._typed_target(login), client_ip, user_agent)
            raise
        try:
            principal, roles_complete = self._authenticate(login, password)
        except SignInFailed:
            self._record_failure(keys)
            self._audit_sign_in(None, "refused", client_ip, user_agent, target=self._typed_target(login))
            self._pad(started)
            raise
        except DirectoryUnavailable:
            self._pad(started)
            raise
        self._clear_account_throttle(keys[0])
        self.purge()
        token = secrets.token_urlsafe(32)
        now = _now()
        with transaction(self.engine) as conn:
            row = conn.execute(
                insert(portal_session).values(
                    token_sha256=sha256_hex(token),
                    account=principal.account,
                    directory=principal.directory,
                    username=principal.username,
                    dn=principal.dn,
                    display_name=principal.display_name[:256],
                    roles=" ".join(sorted(principal.roles)),
                    created_at=_ts(now),
                    last_seen_at=_ts(now),
                    expires_at=_ts(now + timedelta(hours=self.settings.session_max_hours)),
                    client_ip=(client_ip or "")[:64] or None,
                    user_agent=(user_agent or "")[:256] or None,
                    must_change=principal.must_change,
                    roles_read_at=_ts(now),
                )
            )
            session_id = int(row.inserted_primary_key[0]) if row.inserted_primary_key else 0
            self.app.audit.append(
                conn,
                self._actor(principal, client_ip, user_agent),
                "portal.sign_in",
                outcome="success",
                target=principal.directory,
                reason=None if roles_complete else "roles_unknown",
            )
        self._roles_read[("session", session_id)] = time.monotonic()  # just read from the directory
        return _with(principal, via="session", session_id=session_id, roles_read_at=_ts(now)), token

    def _route(self, login: str) -> tuple[str, str] | None:
        """(directory key, lower-case name) *login* routes to, from the configuration only
        (never the directory); None when it routes nowhere."""
        try:
            key, name = self.app.inventory.directories.of_requester(login) if len(login) <= 320 else (None, "")
        except ParameterError:
            key = None
        return (key, name.lower()) if key is not None and name else None

    def _throttled_name(self, login: str) -> str:
        """The per-account throttle's name for *login*: the account it routes to (directory key
        and lower-case name, ``_route``), so that ``alice``, ``alice@example.org`` and
        ``EXAMPLE-ORG\\alice`` share one budget; the name as typed (lower-case) when it routes nowhere."""
        route = self._route(login)
        return f"{route[0]}:{route[1]}" if route else login.lower()

    def _typed_target(self, login: str) -> str:
        """The audit target of a refused sign-in: the keyed pseudonym of the name *login*
        routes to (``runner.pseudonym.typed_name``: ``corp:?`` and 16 hex digits, the value the
        self-service flow gives that name; ``?:?…`` when it routes nowhere). Whether it is an
        account is not known (the directory answers both alike), and it may be a password
        typed into the name field, which the append-only chain must never hold; the same name
        always gives the same value, so tries on one account line up (``alice``,
        ``ALICE@example.org`` alike)."""
        route = self._route(login)
        directory, name = route if route else ("?", login.lower())
        return typed_name(self.settings.audit_secret(), directory, name)

    def _pad(self, started: float) -> None:
        left = self.settings.signin_min_seconds - (time.monotonic() - started)
        if left > 0:
            time.sleep(left + secrets.randbelow(50) / 1000)

    def _authenticate(self, login: str, password: str) -> tuple[Principal, bool]:
        """The principal of a proven password, and whether its roles are complete.

        Roles come only from groups the directory showed the account to be in. When the
        connector says its group walk was incomplete (``groups_complete`` false: nesting
        deeper than it follows, a failed group search) a role whose group was not reached may
        be missing: the person gets the roles proven so far (at least ``employee``), and the
        sign-in is logged and audited with reason ``roles_unknown`` — never as a plain one."""
        if not login or len(login) > 320 or not isinstance(password, str) or not password or len(password) > 1024:
            raise SignInFailed()
        inventory = self.app.inventory
        dirs = inventory.directories
        try:
            # a UPN typed for an AD directory stays whole: its name part need not be the account name
            key, name = dirs.of_requester(login, keep_upn=True)
        except ParameterError:
            raise SignInFailed() from None
        if key is None:
            raise SignInFailed()
        directory = dirs.get(key)
        try:
            with self.app.pool.using("ldap", directory.target) as connector:
                out = connector.run(
                    "authenticate", {"user": name, "password": password}, timeout=self.settings.default_step_timeout
                )
        except InvalidInput:
            raise SignInFailed() from None  # refused before the directory was asked (name too long, ...)
        except Rejected as exc:
            if exc.reason == "invalid_credentials":
                raise SignInFailed() from None
            raise DirectoryUnavailable() from None
        except ConnectorError:
            raise DirectoryUnavailable() from None
        groups = [str(g) for g in out.get("groups") or []]
        roles = roles_for(key, groups, self.settings.agent_groups, self.settings.auditor_groups)
        complete = out.get("groups_complete") is True  # absent or anything else: not proven complete
        # The person is the account the directory found, recorded by its own name
        # (``account``): a UPN's name part need not be the account name (as EXAMPLE\name
        # would be), and an OpenLDAP entry keeping a second uid (an old name after a rename)
        # signs in under either; one identity per entry, whatever was typed.
        own = str(out.get("account") or "")
        if "@" in name or _ACCOUNT.fullmatch(own):
            name = own
            if not _ACCOUNT.fullmatch(name):
                raise SignInFailed()
        name = name.lower()  # account names match without case in both flavours; one spelling per person
        account = directory.principal(name)  # the one canonical form every entry point records
        if not complete:
            self.app.log.warning("portal.roles_unknown", directory=key, account=account, roles=",".join(sorted(roles)))
        principal = Principal(
            account=account,
            directory=key,
            username=name,
            dn=str(out.get("dn") or ""),
            display_name=str(out.get("display_name") or name),
            roles=roles,
            must_change=bool(out.get("must_change")),
        )
        return principal, complete

    def _audit_sign_in(
        self, who: Principal | None, outcome: str, client_ip: str | None, ua: str | None, *, target: str | None = None
    ) -> None:
        actor = (
            self._actor(who, client_ip, ua)
            if who
            else Actor("unidentified", (), client_ip=(client_ip or None), user_agent=_clip(ua))
        )
        with transaction(self.engine) as conn:
            self.app.audit.append(
                conn, actor, "portal.sign_in", outcome=outcome, target=target, reason="invalid_credentials"
            )

    def _audit_blocked(
        self, keys: list[tuple[str, str]], wait: int, target: str, client_ip: str | None, ua: str | None
    ) -> None:
        """Audit a sign-in refused by the throttle (security.md item 37), before any directory
        look-up: ``portal.sign_in`` refused, reason ``throttled``, the limit that holds, and how
        many tries it has refused in this window. Not every refused try is written: the 1st,
        2nd, 4th, 8th ... per limit (a flood of tries cannot flood the append-only chain, and
        the count says how many there were); each is logged as an alert. *target*: the typed
        name's pseudonym (``_typed_target``), never the text."""
        counts = self._count_blocked(keys)
        self.app.log.warning("portal.alert", alert="sign_in_throttled", scopes=",".join(counts))
        due = {scope: n for scope, n in counts.items() if n & (n - 1) == 0}
        if not due:
            return
        actor = Actor("unidentified", (), client_ip=(client_ip or None), user_agent=_clip(ua))
        with transaction(self.engine) as conn:
            self.app.audit.append(
                conn,
                actor,
                "portal.sign_in",
                outcome="refused",
                target=target,
                reason="throttled",
                detail={"limits": sorted(due), "refused_in_window": max(due.values()), "retry_after_s": wait},
            )

    def _count_blocked(self, keys: list[tuple[str, str]]) -> dict[str, int]:
        """Count one refused try on every limit that holds now (a ``blocked:<scope>`` throttle
        row per key, same window); returns scope -> refused tries so far in the window."""
        held = self._held(keys)
        counted = self._record_failure([(f"blocked:{scope}", value) for scope, value in held])
        return {scope.removeprefix("blocked:"): n for scope, n in counted.items()}

    @staticmethod
    def _actor(who: Principal, client_ip: str | None, ua: str | None) -> Actor:
        return Actor(
            who.account, tuple(sorted(who.roles)), on_behalf_of=who.account, client_ip=client_ip, user_agent=_clip(ua)
        )

    def purge(self) -> int:
        """Delete sessions past their idle or absolute end and throttle windows that have
        passed (run at every successful sign-in, so the tables stay small); returns the count."""
        now = _now()
        idle_cut = _ts(now - timedelta(minutes=self.settings.session_idle_minutes))
        window_cut = _ts(now - timedelta(seconds=self.settings.signin_window_seconds))
        with transaction(self.engine) as conn:
            gone = conn.execute(
                delete(portal_session).where(
                    (portal_session.c.expires_at <= _ts(now)) | (portal_session.c.last_seen_at <= idle_cut)
                )
            ).rowcount
            gone += conn.execute(delete(portal_throttle).where(portal_throttle.c.window_start <= window_cut)).rowcount
        return int(gone or 0)

    # -- throttling ----------------------------------------------------------------------
    @staticmethod
    def _key(scope: str, value: str) -> str:
        return f"{scope}:{sha256_hex(value)}"

    def _limit(self, scope: str) -> int:
        return self.settings.signin_max_per_account if scope == "account" else self.settings.signin_max_per_address

    def _held(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The keys whose limit holds now, each with the seconds until its window ends."""
        now = _now()
        window = timedelta(seconds=self.settings.signin_window_seconds)
        held: dict[tuple[str, str], int] = {}
        with reading(self.engine) as conn:
            for scope, value in keys:
                row = conn.execute(
                    select(portal_throttle.c.window_start, portal_throttle.c.failures).where(
                        portal_throttle.c.key == self._key(scope, value)
                    )
                ).first()
                if row is None:
                    continue
                end = _parse(row.window_start) + window
                if end > now and row.failures >= self._limit(scope):
                    held[(scope, value)] = int((end - now).total_seconds()) + 1
        return held

    def _check_throttle(self, keys: list[tuple[str, str]]) -> None:
        held = self._held(keys)
        if held:
            raise SignInThrottled(max(held.values()))

    def _record_failure(self, keys: list[tuple[str, str]]) -> dict[str, int]:
        """Count one failure per key in one atomic upsert each (safe with several processes):
        a window that has passed starts again at 1. Returns scope -> the count now."""
        now = _now()
        cutoff = _ts(now - timedelta(seconds=self.settings.signin_window_seconds))
        from sqlalchemy.dialects import postgresql, sqlite

        upsert: Any = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        expired = portal_throttle.c.window_start <= cutoff
        counts: dict[str, int] = {}
        if not keys:
            return counts
        with transaction(self.engine) as conn:
            for scope, value in keys:
                stmt = upsert(portal_throttle).values(key=self._key(scope, value), window_start=_ts(now), failures=1)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[portal_throttle.c.key],
                    set_={
                        "failures": case((expired, 1), else_=portal_throttle.c.failures + 1),
                        "window_start": case((expired, _ts(now)), else_=portal_throttle.c.window_start),
                    },
                ).returning(portal_throttle.c.failures)
                counts[scope] = int(conn.execute(stmt).scalar_one())
        return counts

    def _clear_account_throttle(self, key: tuple[str, str]) -> None:
        with transaction(self.engine) as conn:
            conn.execute(delete(portal_throttle).where(portal_throttle.c.key == self._key(*key)))

    # -- sessions ------------------------------------------------------------------------
    def session(self, token: str | None) -> Principal | None:
        """The principal of a live session id, or None (unknown, idle too long, past its end).

        An expired session's row is deleted. ``last_seen_at`` is refreshed at most once a minute.
        """
        who, write = self.session_lookup(token)
        if write is not None:
            write()
        return who

    def session_lookup(self, token: str | None) -> tuple[Principal | None, Callable[[], None] | None]:
        """``session`` in two parts: the principal (one indexed read, never waiting for a
        writer) and the write it calls for, if any — delete the expired row, or refresh
        ``last_seen_at`` (at most once a minute) — for the caller to run where a write may
        wait: the portal runs it off its event loop, so a run holding the SQLite writer
        cannot stall every request of the process. ``LedgerError`` from either part."""
        if not token or len(token) > 128:
            return None, None
        digest = sha256_hex(token)
        now = _now()
        found = first_row(self.engine, _SESSION_BY_DIGEST, (digest,))
        if found is None:
            return None, None
        row = SimpleNamespace(**found)
        idle = timedelta(minutes=self.settings.session_idle_minutes)
        last = _parse(row.last_seen_at)
        if _parse(row.expires_at) <= now or last + idle <= now:

            def end() -> None:
                with transaction(self.engine) as conn:
                    conn.execute(delete(portal_session).where(portal_session.c.id == row.id))

            return None, end
        touch = None
        if now - last >= _TOUCH_EVERY:

            def touch() -> None:
                with transaction(self.engine) as conn:
                    conn.execute(
                        update(portal_session).where(portal_session.c.id == row.id).values(last_seen_at=_ts(now))
                    )

        return _principal_of(row, "session"), touch

    def sign_out(self, token: str | None, *, client_ip: str | None = None, user_agent: str | None = None) -> None:
        """Delete the session of *token* (if any) and audit it."""
        if not token:
            return
        who = self.session(token)
        with transaction(self.engine) as conn:
            conn.execute(delete(portal_session).where(portal_session.c.token_sha256 == sha256_hex(token)))
            if who is not None:
                self.app.audit.append(
                    conn, self._actor(who, client_ip, user_agent), "portal.sign_out", outcome="success"
                )

    def end_sessions_of(self, directory: str, username: str, *, reason: str = "password_changed") -> int:
        """Delete every session of one account and revoke its live API tokens (e.g. after its
        password changed: whoever knew the old password may have made a token, which would
        otherwise keep acting as the account, roles included); returns how many sessions ended.

        *username* is the bare account name in any case (sessions and tokens keep it lower-cased).
        """
        username = username.lower()
        now = _ts(_now())
        with transaction(self.engine) as conn:
            result = conn.execute(
                delete(portal_session).where(
                    portal_session.c.directory == directory, portal_session.c.username == username
                )
            )
            count = int(result.rowcount or 0)
            revoked = conn.execute(
                update(portal_api_token)
                .where(
                    portal_api_token.c.directory == directory,
                    portal_api_token.c.username == username,
                    portal_api_token.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            tokens = int(revoked.rowcount or 0)
            system = Actor("firstline", ("system",), on_behalf_of=username)
            if count:
                self.app.audit.append(
                    conn,
                    system,
                    "portal.sessions_ended",
                    outcome="success",
                    target=directory,
                    reason=reason,
                    detail={"sessions": count},
                )
            if tokens:
                self.app.audit.append(
                    conn,
                    system,
                    "portal.api_tokens_revoked",
                    outcome="success",
                    target=directory,
                    reason=reason,
                    detail={"tokens": tokens},
                )
        return count

    # -- roles read again ----------------------------------------------------------------
    def recheck_due(self, who: Principal) -> bool:
        """Whether *who*'s roles were read from the directory longer ago than
        ``Settings.role_recheck_seconds``: by the row's ``roles_read_at`` (any process; NULL:
        not known, due), unless this process read them (or tried to) within that time."""
        interval = self.settings.role_recheck_seconds
        tried = self._roles_read.get((who.via, who.session_id))
        if tried is not None and time.monotonic() - tried < interval:
            return False
        if who.roles_read_at is None:
            return True
        try:
            return _now() - _parse(who.roles_read_at) >= timedelta(seconds=interval)
        except ValueError:
            return True

    def recheck(
        self, who: Principal, *, client_ip: str | None = None, user_agent: str | None = None
    ) -> Principal | None:
        """*who* as the directory has it now (module docstring, "Roles are read again"): None
        when the account lost access (every session and token of it ended), else *who* with
        the roles it still holds. Reads the account (``account_status``) and, when it may keep
        more than ``employee``, its groups (``account_groups``). ``LedgerError`` if the ledger
        cannot be written; a directory that cannot be asked changes nothing."""
        key = (who.via, who.session_id)
        started = time.monotonic()
        self._roles_read[key] = started  # one re-read at a time per session, not one per request
        if len(self._roles_read) > _ROLE_MEMO_MAX:
            horizon = started - self.settings.role_recheck_seconds
            for old in [k for k, t in list(self._roles_read.items()) if t < horizon]:
                self._roles_read.pop(old, None)
        directory = self.app.inventory.directories.entries.get(who.directory)
        if directory is None:  # taken out of the inventory: no one signs in there any more
            self.end_sessions_of(who.directory, who.username, reason="directory_removed")
            return None
        timeout = self.settings.default_step_timeout
        try:
            with self.app.pool.using("ldap", directory.target) as ldap:
                status = ldap.run("account_status", {"user": who.username}, timeout=timeout)
                gone = _access_ended(status)
                found: Mapping[str, Any] = (
                    ldap.run("account_groups", {"user": who.username}, timeout=timeout)
                    if gone is None and who.roles - {"employee"}
                    else {"groups": [], "groups_complete": True}
                )
        except ConnectorError as exc:
            # roles stay as they were; asked again after ROLE_RETRY_SECONDS, not on every request
            self._roles_read[key] = started - max(0.0, self.settings.role_recheck_seconds - ROLE_RETRY_SECONDS)
            self.app.log.warning("portal.roles_not_read", account=who.account, via=who.via, reason=exc.reason)
            return who
        if gone is not None:
            self.end_sessions_of(who.directory, who.username, reason=gone)
            self._roles_read.pop(key, None)
            return None
        groups = [str(g) for g in found.get("groups") or []]
        held = roles_for(who.directory, groups, self.settings.agent_groups, self.settings.auditor_groups)
        roles = who.roles & held  # never more than it had: a new role comes with a new sign-in
        table = portal_session if who.via == "session" else portal_api_token
        read_at = _ts(_now())
        with transaction(self.engine) as conn:  # every process then knows when they were read
            changes: dict[str, str] = {"roles_read_at": read_at}
            if roles != who.roles:
                changes["roles"] = " ".join(sorted(roles))
                self.app.audit.append(
                    conn,
                    Actor(
                        "firstline",
                        ("system",),
                        on_behalf_of=who.account,
                        client_ip=client_ip,
                        user_agent=_clip(user_agent),
                    ),
                    "portal.roles_changed",
                    outcome="success",
                    target=who.account,
                    reason=None if found.get("groups_complete") is True else "roles_unknown",
                    detail={"via": who.via, "before": sorted(who.roles), "after": sorted(roles)},
                )
            conn.execute(update(table).where(table.c.id == who.session_id).values(**changes))
        if roles != who.roles:
            self.app.log.info("portal.roles_changed", account=who.account, via=who.via, roles=",".join(sorted(roles)))
        return replace(who, roles=roles, roles_read_at=read_at)

    # -- API tokens ----------------------------------------------------------------------
    def create_token(
        self, who: Principal, label: str, *, client_ip: str | None = None, user_agent: str | None = None
    ) -> tuple[int, str]:
        """A new API token for *who*: ``(id, token)``. The token is returned this once only and
        expires after ``Settings.api_token_days`` (default 90): it carries the roles *who* has
        now, so it must not outlive a change of them for ever."""
        require_changed_password(who)  # a token would outlive the temporary password
        label = free_text(label, what=Text("the token's name"), limit=64)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = _now()
        with transaction(self.engine) as conn:
            row = conn.execute(
                insert(portal_api_token).values(
                    token_sha256=sha256_hex(token),
                    prefix=token[:10],
                    label=label,
                    account=who.account,
                    directory=who.directory,
                    username=who.username,
                    dn=who.dn,
                    display_name=who.display_name[:256],
                    roles=" ".join(sorted(who.roles)),
                    created_at=_ts(now),
                    expires_at=_ts(now + timedelta(days=self.settings.api_token_days)),
                    # its maker's roles, read when theirs were (a caller's own principal: now)
                    roles_read_at=who.roles_read_at or _ts(now),
                )
            )
            token_id = int(row.inserted_primary_key[0]) if row.inserted_primary_key else 0
            self.app.audit.append(
                conn,
                self._actor(who, client_ip, user_agent),
                "portal.api_token_created",
                outcome="success",
                detail={"token_id": token_id, "label": label},
            )
        return token_id, token

    def list_tokens(self, who: Principal) -> list[dict[str, Any]]:
        """The caller's tokens (never the token itself): id, label, prefix, times (created,
        last used, expires), revoked."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(portal_api_token)
                .where(portal_api_token.c.directory == who.directory, portal_api_token.c.username == who.username)
                .order_by(portal_api_token.c.id)
            ).all()
        now = _now()
        return [
            {
                "id": r.id,
                "label": r.label,
                "prefix": r.prefix,
                "created_at": r.created_at,
                "last_used_at": r.last_used_at,
                "expires_at": r.expires_at,
                "expired": bool(r.expires_at) and _parse(r.expires_at) <= now,
                "revoked": r.revoked_at is not None,
            }
            for r in rows
        ]

    def revoke_token(
        self, who: Principal, token_id: int, *, client_ip: str | None = None, user_agent: str | None = None
    ) -> bool:
        """Revoke one of *who*'s own tokens; False when there is no such live token of theirs
        (an id outside 1..2**31-1, the INTEGER column's range, is no token: the database
        driver would overflow on it)."""
        if not 0 < token_id <= MAX_ROW_ID:
            return False
        with transaction(self.engine) as conn:
            result = conn.execute(
                update(portal_api_token)
                .where(
                    portal_api_token.c.id == token_id,
                    portal_api_token.c.directory == who.directory,
                    portal_api_token.c.username == who.username,
                    portal_api_token.c.revoked_at.is_(None),
                )
                .values(revoked_at=_ts(_now()))
            )
            done = bool(result.rowcount)
            if done:
                self.app.audit.append(
                    conn,
                    self._actor(who, client_ip, user_agent),
                    "portal.api_token_revoked",
                    outcome="success",
                    detail={"token_id": token_id},
                )
        return done

    def token_principal(self, token: str | None) -> Principal | None:
        """The principal of a live (not revoked, not expired) API token, or None."""
        who, write = self.token_lookup(token)
        if write is not None:
            write()
        return who

    def token_lookup(self, token: str | None) -> tuple[Principal | None, Callable[[], None] | None]:
        """``token_principal`` in two parts, as ``session_lookup``: the principal, and the
        refresh of ``last_used_at`` (at most once a minute) for the caller to run."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None, None
        now = _now()
        with reading(self.engine) as conn:
            row = conn.execute(
                select(portal_api_token).where(portal_api_token.c.token_sha256 == sha256_hex(token))
            ).first()
        if row is None or row.revoked_at is not None or (row.expires_at and _parse(row.expires_at) <= now):
            return None, None
        touch = None
        if row.last_used_at is None or now - _parse(row.last_used_at) >= _TOUCH_EVERY:

            def touch() -> None:
                with transaction(self.engine) as conn:
                    conn.execute(
                        update(portal_api_token).where(portal_api_token.c.id == row.id).values(last_used_at=_ts(now))
                    )

        return _principal_of(row, "token"), touch


def _access_ended(status: Mapping[str, Any]) -> str | None:
    """Why an account read by ``account_status`` may no longer use the portal, or None:
    ``account_gone``, ``account_disabled`` (an OpenLDAP administrator lock is reported as
    disabled), ``account_expired``. A lockout after failed sign-ins ends nothing."""
    if not status.get("exists"):
        return "account_gone"
    if status.get("disabled"):
        return "account_disabled"
    if status.get("expired"):
        return "account_expired"
    return None


def _clip(text: str | None, limit: int = 256) -> str | None:
    if not text:
        return None
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned[:limit]


_SESSION_BY_DIGEST = (
    "SELECT id, account, directory, username, dn, display_name, roles, last_seen_at, expires_at, must_change, "
    "roles_read_at FROM portal_session WHERE token_sha256 = ?"
)


def _principal_of(row: Any, via: str) -> Principal:
    return Principal(
        account=row.account,
        directory=row.directory,
        username=row.username,
        dn=row.dn,
        display_name=row.display_name,
        roles=frozenset(r for r in row.roles.split() if r in ROLES),
        via=via,
        session_id=int(row.id),
        must_change=bool(getattr(row, "must_change", False)),  # a token never carries it
        roles_read_at=getattr(row, "roles_read_at", None),
    )


def _with(p: Principal, *, via: str, session_id: int, roles_read_at: str | None = None) -> Principal:
    return replace(p, via=via, session_id=session_id, roles_read_at=roles_read_at)
