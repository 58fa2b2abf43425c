"""Forgotten password and locked account, for employees who cannot sign in.

The flow (docs/portal.md "Forgotten password and locked account"; ../shared/security.md
items 1-17 and 33-43):

1. ``request_code(login, purpose)`` — the only work done in the request: the login is
   routed to its directory *by configuration only* (``runner.routing``, no directory
   look-up), the throttles are checked and counted (per account, reset and unlock codes
   together, ≤ ``reset_per_account_hour`` / hour and ≤ ``reset_per_account_day`` / 24 h,
   per client address, and a global daily budget), and a job is queued on a small
   background pool.
   It returns ``None`` in every case — unknown, known, disabled, privileged, locked, no
   mail address, throttled — so callers answer identically (items 1-4). A throttled
   request is audited (``selfservice.throttled``) and logged as an alert; nothing is sent.
2. The background job reads the account (``ldap.account_status``), and only for an
   existing, enabled, unexpired, unprivileged account with a mail address: draws a code
   from ``secrets`` (``CODE_DIGITS`` digits), stores its HMAC-SHA-256 with a snapshot
   (HMAC) of ``pwdChangedTime`` / ``pwdLastSet``, supersedes earlier live codes of that
   account and purpose, and mails it (``mail.send_code``) to the address just read from
   the directory, with a link built from ``Settings.public_base_url`` only (items 6, 8,
   9, 14). Every outcome is audited (``selfservice.code_sent`` / ``selfservice.code_not_sent``
   with the reason) — never the code; a name that is no account, or whose look-up failed,
   only by its keyed pseudonym (``unproven``), never as typed.
3. ``redeem(login, code, purpose, new_password=...)`` — reads what was typed as digits
   (``normalize_code``: NFKC, any script's decimal digits, spaces and dashes dropped) and
   refuses what is then not ``CODE_DIGITS`` ASCII digits (``CodeMalformed``, no try spent:
   it cannot be the code); then checks the newest live code of that account and purpose:
   expired (``reset_code_minutes``, ≤ 10) → invalid; wrong →
   the server-side try counter goes up and at ``reset_max_tries`` (≤ 5) the code is
   burned; right → the account is read again and the password snapshot must be
   unchanged (any password change by any path invalidates the code, item 12); for a
   reset the new password is checked by the connector's ``check_password`` (nothing
   written; a refusal keeps the code usable); then the code is consumed atomically (a
   second redemption fails, item 10) and every other live code of the account is
   superseded. Returns a ``Proof``; the caller runs the runbook (``password-reset`` /
   ``account-unlock``) on the employee's behalf (``redeem_and_start``: a run refused before
   its ticket, or one in which the directory refused the new password as it was written and
   nothing changed, gives the code back; the directory's refusal spends one of the code's
   tries, so a code cannot be used to ask the directory without end which passwords it
   refuses, such as those in the account's history). No session is created (item 17).
4. ``outcome(ticket_id, purpose, lang)`` — what the outcome page shows: the ticket's state,
   message and resolution note in the reader's language, whether the reset / unlock changed
   anything and whether the confirmation mail was sent (never a fixed success text).

Errors: ``CodeMalformed`` (not a code's form; nothing looked up or counted),
``CodeInvalid`` (one message for unknown account, no code, wrong, expired,
used, burned, invalidated), ``PasswordRefused`` (the connector's plain reason the
requester can fix), ``DirectoryUnavailable`` from ``runner.auth`` when the directory
cannot be asked at redemption.

The HMAC key is derived from the audit key (``Settings.audit_secret``), which is never in
the database, so a copy of the database alone cannot test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import and_, delete, func, insert, select, text, update

from connectors.base import ConnectorError, Timeout, Unreachable
from connectors.password_policy import PASSWORD_CHOICE_REASONS
from connectors.password_policy import message as policy_message
from runner.auth import DirectoryUnavailable, Principal
from runner.dispatch import QueueFull
from runner.errors import FirstlineError, NotFoundError, ParameterError, PolicyDenied, RunbookError
from runner.fixes import password_rules
from runner.leases import changes_state
from runner.ledger.audit import Actor
from runner.ledger.selfservice_tables import selfservice_code, selfservice_request
from runner.ledger.store import reading, transaction
from runner.ledger.tables import step_result, ticket
from runner.ledger.tickets import NO_TICKET, number_of
from runner.oplog import get_logger, remember_secret
from runner.params import secret_has_controls
from runner.pow import Challenge, ProofOfWork
from runner.pseudonym import typed_name
from runner.runbook import ACCOUNT_PATTERN
from runner.runs import RunOutcome
from runner.texts import note_in, requester_message_in

if TYPE_CHECKING:
    from runner.service import Firstline

_T = TypeVar("_T")
# What RunService.submit raises before a ticket is written (runner.dispatch.QueueFull: busy)
REFUSED_BEFORE_A_TICKET: tuple[type[FirstlineError], ...] = (
    QueueFull,
    RunbookError,  # NotVetted too
    ParameterError,
    PolicyDenied,
    NotFoundError,
)

PURPOSES = {"reset": "password-reset", "unlock": "account-unlock"}
# The directory's refusals of a new password that the person fixes by choosing another one
# (connectors.password_policy.PASSWORD_CHOICE_REASONS): such a run changed nothing, so the
# code is given back.
CODE_DIGITS = 8
CODE_PAGES = {"reset": "/reset/code", "unlock": "/unlock/code"}
CODE_INVALID = "This code is not valid (wrong, used or expired). Check it, or ask for a new one."
POW_REQUIRED = "Many requests came from your network. Your browser has to finish a short check before we send a code."
_ACCOUNT = re.compile(ACCOUNT_PATTERN)
_QUEUE_LIMIT = 200  # background jobs waiting at most; more are dropped with an alert


class CodeInvalid(FirstlineError):
    """Unknown account, no live code, wrong, expired, used, burned or invalidated: one message."""

    def __init__(self) -> None:
        super().__init__(CODE_INVALID)


CODE_MALFORMED = (
    "A code is %(digits)s digits; what you typed is not. This did not count as a try: "
    "check the code in the e-mail and type it again."
)


class CodeMalformed(FirstlineError):
    """What was typed cannot be a code (not digits, or not ``CODE_DIGITS`` of them); refused
    before the account or its code is looked at, so it uses up no try (it cannot be the code)."""

    def __init__(self) -> None:
        super().__init__(CODE_MALFORMED, digits=CODE_DIGITS)


class ProofOfWorkRequired(FirstlineError):
    """Too many requests from this client address: solve ``challenge`` and send it again.

    Depends on the address only (never on the login), so known and unknown accounts get
    the same answer (security.md items 1 and 5).
    """

    def __init__(self, challenge: Challenge) -> None:
        super().__init__(POW_REQUIRED)
        self.challenge = challenge


CONTROL_CHARACTER_MESSAGE = (
    "The new password contains a control character (such as a tab or a line break), "
    "which cannot be part of a password. Type it without."
)
UNLOCK_SETS_NOTHING_MESSAGE = (
    "An unlock code only unlocks the account: it does not set a password. To choose a new "
    "password, ask for a password reset code."
)


class PasswordRefused(FirstlineError):
    """The new password breaks the directory's rules; the text says which (the code stays usable)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Proof:
    """A redeemed code: the account it proves, in the shape the runner needs."""

    directory: str
    username: str
    account: str  # the requester id: name@domain when the directory serves a domain
    purpose: str
    code_id: int = 0  # the redeemed code's row (``give_back``)

    @property
    def runbook(self) -> str:
        return PURPOSES[self.purpose]

    def principal(self) -> Principal:
        """The employee as the run's actor: role ``employee`` only, via ``selfservice``."""
        return Principal(
            account=self.account,
            directory=self.directory,
            username=self.username,
            dn="",
            display_name=self.username,
            roles=frozenset({"employee"}),
            via="selfservice",
        )


@dataclass(frozen=True)
class Outcome:
    """What ``/reset/done`` and ``/unlock/done`` show of a redeemed code's ticket, as stored."""

    ticket: str
    state: str
    message: str | None  # the ticket's message, in the reader's language
    note: str | None  # the resolution note (the runbook's own words), in the reader's language
    changed: bool  # the password was set / the account was unlocked (that step changed it)
    notified: bool  # the owner's confirmation mail went out (the notify step sent it)


# The step that does what a purpose's code was redeemed for (its runbook's write)
_PURPOSE_ACTIONS = {"reset": "reset_password", "unlock": "unlock_account"}


@dataclass(frozen=True)
class _Job:
    directory: str
    username: str
    account: str
    purpose: str
    client_ip: str | None
    user_agent: str | None


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


_CODE_SEPARATORS = frozenset(" -\t\u2010\u2011\u2012\u2013\u2212")  # after NFKC: also U+3000, U+FF0D


def normalize_code(code: str) -> str:
    """What the user typed, as the digits it means: NFKC first (full-width ``１２３`` is
    ``123``, a full-width space a space), then every decimal digit by its value (Arabic-Indic
    ``٣`` and Devanagari ``३`` are ``3``; NFKC leaves those), spaces and dashes dropped
    (``1234 5678`` = ``12345678``). Anything else stays as typed, for ``is_code`` to refuse."""
    text = unicodedata.normalize("NFKC", code[:256])
    digits = (str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text if ch not in _CODE_SEPARATORS)
    return "".join(digits)[:64]


def is_code(typed: str) -> bool:
    """*typed* (``normalize_code``) has the form of a code: ``CODE_DIGITS`` ASCII digits."""
    return len(typed) == CODE_DIGITS and typed.isascii() and typed.isdigit()


class SelfService:
    """Codes, throttles and the background sender over one ``Firstline`` service."""

    def __init__(
        self,
        app: Firstline,
        *,
        now: Callable[[], datetime] | None = None,
        workers: int = 2,
    ) -> None:
        self.app = app
        self.settings = app.settings
        self.engine = app.engine
        self._now = now or (lambda: datetime.now(UTC))
        self._key = hmac.new(app.settings.audit_secret(), b"firstline-selfservice-v1", hashlib.sha256).digest()
        self.pow = ProofOfWork(self._key, bits=app.settings.reset_pow_bits, minutes=app.settings.reset_code_minutes)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="selfservice")
        self._slots = threading.BoundedSemaphore(_QUEUE_LIMIT)
        self._pending: set[Future[None]] = set()
        self._pending_lock = threading.Lock()
        self._requests = 0
        self.log = get_logger()

    # -- digests -----------------------------------------------------------------------
    def digest(self, purpose: str, value: str) -> str:
        """HMAC-SHA-256 (hex) of *value* for *purpose* under the derived key."""
        return hmac.new(self._key, f"{purpose}\0{value}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def unproven(self, directory: str, username: str) -> str:
        """The audit target for a typed name not shown to be an account: ``<directory>:?`` and
        16 hex digits of a keyed HMAC of it. Someone who types their password into the login
        field must not find it in the audit chain, which cannot be edited (security.md items
        37, 48: a record names the target's DN or GUID, and holds no secret); the same name
        gives the same value, so repeated tries on one name still line up. Shape:
        ``corp:?3f9a0c1d2e4b5a69``."""
        return typed_name(self.settings.audit_secret(), directory, username)

    # -- routing (configuration only, never the directory) -------------------------------
    def _route(self, login: str) -> tuple[str, str] | None:
        """``(directory key, lower-case name)`` for a login as typed, or None when it is not one."""
        login = login.strip() if isinstance(login, str) else ""
        if not login or len(login) > 320:
            return None
        try:
            # a UPN typed for an AD directory stays whole: its name part need not be the account name
            key, name = self.app.inventory.directories.of_requester(login, keep_upn=True)
        except ParameterError:
            return None
        if key is None or not _ACCOUNT.fullmatch(name.split("@")[0]):
            return None
        return key, name.lower()

    def _canonical(self, route: tuple[str, str]) -> tuple[str, str]:
        """A UPN route as the account the directory finds for it (its account name), as the code
        was keyed when it was sent (``_deliver``); unchanged when there is no such account (no
        code can then match). ``DirectoryUnavailable`` when the directory cannot be asked."""
        directory = self.app.inventory.directories.get(route[0])
        try:
            with self.app.pool.using("ldap", directory.target) as ldap:
                status = ldap.run("account_status", {"user": route[1]}, timeout=self.settings.default_step_timeout)
        except ConnectorError as exc:
            if exc.reason in ("ambiguous", "not_found", "invalid_account"):
                return route
            raise DirectoryUnavailable() from exc
        canonical = str(status.get("account") or "").lower()
        if status.get("exists") and _ACCOUNT.fullmatch(canonical):
            return route[0], canonical
        return route

    def _account_id(self, key: str, name: str) -> str:
        if "@" in name:  # a UPN as typed (routing keeps it only for AD directories)
            return name
        directory = self.app.inventory.directories.get(key)
        return f"{name}@{directory.domains[0]}" if directory.domains else name

    # -- 1. request --------------------------------------------------------------------
    def request_code(
        self,
        login: str,
        purpose: str,
        *,
        client_ip: str | None,
        user_agent: str | None,
        pow_challenge: str | None = None,
        pow_nonce: str | None = None,
    ) -> None:
        """Queue a code for *login* (see the module docstring). Always returns None.

        Raises ``ProofOfWorkRequired`` (with a fresh challenge) when this client address
        made ``reset_pow_after`` requests within the hour and *pow_challenge* / *pow_nonce*
        are not a solution of a challenge issued to it that was not used before
        (``runner.pow``). Nothing is counted or queued then.
        """
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {sorted(PURPOSES)}")
        route = self._route(login)
        raw = login.strip().lower()[:320] if isinstance(login, str) else ""
        # a UPN counts against its name part: implicit UPNs (name@domain) share the account's
        # budget, and a UPN never adds a budget of its own (at worst two accounts share one)
        account_key = f"{route[0]}:{route[1].split('@')[0]}" if route else f"?:{raw}"
        pow_id = self.pow.verify(pow_challenge, pow_nonce, client_ip, self._now().timestamp())
        scope = self._throttle(account_key, purpose, client_ip, pow_id)
        actor = Actor("unidentified", (), client_ip=client_ip or None, user_agent=_clip(user_agent))
        if scope is not None:
            self.log.warning("selfservice.alert", alert="throttled", scope=scope, purpose=purpose)
            with transaction(self.engine) as conn:
                self.app.audit.append(
                    conn,
                    actor,
                    "selfservice.throttled",
                    outcome="refused",
                    reason=scope,
                    target=account_key if route else None,
                    detail={"purpose": purpose},
                )
            return
        if route is None:
            job = None
        else:
            job = _Job(route[0], route[1], self._account_id(*route), purpose, client_ip, _clip(user_agent))
        self._submit(job, actor, purpose)

    def _address_key(self, client_ip: str | None) -> str:
        return f"addr:{self.digest('throttle-address', client_ip or 'unknown')}"

    def challenge_for(self, client_ip: str | None) -> Challenge | None:
        """A challenge to put in the request form when this address needs one now, else None."""
        since = _ts(self._now() - timedelta(hours=1))
        req = selfservice_request
        with reading(self.engine) as conn:
            made = conn.execute(
                select(func.count()).where(req.c.key == self._address_key(client_ip), req.c.at > since)
            ).scalar_one()
        if int(made) < self.settings.reset_pow_after:
            return None
        return self.pow.issue(client_ip, self._now().timestamp())

    def _lock(self, conn: Any, keys: list[str]) -> None:
        """Serialise check-and-count per key on PostgreSQL (transaction-scoped advisory locks,
        taken in one order so two requests cannot deadlock). SQLite needs none: every write
        transaction there is ``BEGIN IMMEDIATE`` (runner.ledger.store)."""
        if self.engine.dialect.name != "postgresql":
            return
        for key in sorted(set(keys)):
            number = int.from_bytes(hashlib.sha256(f"selfservice\0{key}".encode()).digest()[:8], "big", signed=True)
            conn.execute(text("SELECT pg_advisory_xact_lock(:n)"), {"n": number})

    def _throttle(self, account_key: str, purpose: str, client_ip: str | None, pow_id: str | None) -> str | None:
        """Check and count one request atomically; the scope that is over its limit, or None (counted).

        Raises ``ProofOfWorkRequired`` before counting when the address needs a puzzle and
        *pow_id* is missing or was used before (its ``pow:`` row is the replay record).
        """
        s = self.settings
        now = self._now()
        hour, day = _ts(now - timedelta(hours=1)), _ts(now - timedelta(days=1))
        # one budget per account for every code mail, reset and unlock alike (security.md
        # item 4: ≤ 3 an hour, ≤ 5 a day reach one person, not that many per purpose)
        acct = f"acct:{self.digest('throttle-account', account_key)}"
        addr = self._address_key(client_ip)
        used = f"pow:{pow_id}" if pow_id else None
        req = selfservice_request

        def count(conn: Any, key: str, since: str) -> int:
            return int(conn.execute(select(func.count()).where(req.c.key == key, req.c.at > since)).scalar_one())

        with transaction(self.engine) as conn:
            self._lock(conn, [acct, addr, "global", *([used] if used else [])])
            if count(conn, addr, hour) >= s.reset_pow_after:
                if used is None or count(conn, used, day) > 0:
                    self.log.warning("selfservice.alert", alert="proof_of_work_required", purpose=purpose)
                    raise ProofOfWorkRequired(self.pow.issue(client_ip, now.timestamp()))
                conn.execute(insert(req).values(key=used, at=_ts(now)))
            checks = (
                ("account_hour", acct, hour, s.reset_per_account_hour),
                ("account_day", acct, day, s.reset_per_account_day),
                ("address_hour", addr, hour, s.reset_per_address_hour),
                ("global_day", "global", day, s.reset_global_day),
            )
            for scope, key, since, limit in checks:
                if count(conn, key, since) >= limit:
                    return scope
            stamp = _ts(now)
            conn.execute(insert(req), [{"key": k, "at": stamp} for k in (acct, addr, "global")])
        return None

    def _account_budget(self, directory: str, dn: str) -> bool:
        """Count one code mail for the account at *dn* (its entry, whatever name was typed) and
        say whether it is within ``reset_per_account_hour`` / ``_day``; False (not counted) when
        not. The typed name's budget (``_throttle``) holds before any look-up; this one holds
        for every name of one account (security.md item 4)."""
        s, now = self.settings, self._now()
        key = f"dn:{self.digest('throttle-dn', f'{directory}:{dn.lower()}')}"
        req = selfservice_request
        with transaction(self.engine) as conn:
            self._lock(conn, [key])
            for since, limit in (
                (_ts(now - timedelta(hours=1)), s.reset_per_account_hour),
                (_ts(now - timedelta(days=1)), s.reset_per_account_day),
            ):
                used = conn.execute(select(func.count()).where(req.c.key == key, req.c.at > since)).scalar_one()
                if int(used) >= limit:
                    self.log.warning("selfservice.alert", alert="throttled_account")
                    return False
            conn.execute(insert(req).values(key=key, at=_ts(now)))
        return True

    def _submit(self, job: _Job | None, actor: Actor, purpose: str) -> None:
        if not self._slots.acquire(blocking=False):
            self.log.warning("selfservice.alert", alert="queue_full", purpose=purpose)
            return
        future = self._pool.submit(self._deliver_guarded, job, actor, purpose)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        self._slots.release()
        with self._pending_lock:
            self._pending.discard(future)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until queued jobs finished (tests, shutdown)."""
        with self._pending_lock:
            waiting = list(self._pending)
        for future in waiting:
            future.exception(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- 2. background delivery -----------------------------------------------------------
    def _deliver_guarded(self, job: _Job | None, actor: Actor, purpose: str) -> None:
        try:
            self._deliver(job, actor, purpose)
        except Exception as exc:  # noqa: BLE001 - a background job reports, never raises
            self.log.error("selfservice.delivery_failed", purpose=purpose, error_type=type(exc).__name__)
        self._requests += 1
        if self._requests % 50 == 0:
            self._prune()

    def _deliver(self, job: _Job | None, actor: Actor, purpose: str) -> None:
        if job is None:
            self._audit_request(actor, None, purpose, "not_sent", "not_an_account")
            return
        actor = Actor("unidentified", (), on_behalf_of=job.account, client_ip=job.client_ip, user_agent=job.user_agent)
        target = f"{job.directory}:{job.username}"
        directory = self.app.inventory.directories.get(job.directory)
        timeout = self.settings.default_step_timeout
        try:
            with self.app.pool.using("ldap", directory.target) as ldap:
                status = ldap.run("account_status", {"user": job.username}, timeout=timeout)
        except ConnectorError as exc:  # whether the name is an account is not known: not recorded as typed
            unproven = Actor("unidentified", (), client_ip=job.client_ip, user_agent=job.user_agent)
            where = self.unproven(job.directory, job.username)
            self._audit_request(unproven, where, purpose, "not_sent", f"directory_error:{exc.reason or 'unknown'}")
            return
        reason = None
        if status.get("exists") and "@" in job.username:
            # requested with a UPN: the code belongs to the account found, keyed by its account
            # name, so that any spelling of that account redeems it (never the UPN's name part)
            canonical = str(status.get("account") or "").lower()
            if _ACCOUNT.fullmatch(canonical):
                target = f"{job.directory}:{canonical}"
                actor = Actor(
                    "unidentified",
                    (),
                    on_behalf_of=self._account_id(job.directory, canonical),
                    client_ip=job.client_ip,
                    user_agent=job.user_agent,
                )
            else:
                status = {"exists": False}
        if not status.get("exists"):
            reason = "unknown_account"
            actor = Actor("unidentified", (), client_ip=job.client_ip, user_agent=job.user_agent)
            target = self.unproven(job.directory, job.username)
        elif status.get("privileged"):
            reason = "privileged"
        elif status.get("disabled"):
            reason = "disabled"
        elif status.get("expired"):
            reason = "expired"
        elif not status.get("mail"):
            reason = "no_address"
        if reason is None and not self._account_budget(job.directory, str(status.get("dn") or target)):
            # the name's budget held before the look-up; another name of the same account (a
            # second uid value, a UPN) has its own, so the account itself is counted too
            reason = "throttled_account"
        if reason is not None:
            self._audit_request(actor, target, purpose, "not_sent", reason)
            return
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        remember_secret(code)
        now = self._now()
        account_key = self.digest("account", target)
        with transaction(self.engine) as conn:
            conn.execute(
                update(selfservice_code)
                .where(
                    selfservice_code.c.account_key == account_key,
                    selfservice_code.c.purpose == purpose,
                    selfservice_code.c.state == "live",
                )
                .values(state="superseded", closed_at=_ts(now))
            )
            conn.execute(
                insert(selfservice_code).values(
                    account_key=account_key,
                    purpose=purpose,
                    code_hmac=self.digest("code", code),
                    snapshot_hmac=self.digest("snapshot", str(status.get("password_set") or "")),
                    state="live",
                    tries=0,
                    created_at=_ts(now),
                    expires_at=_ts(now + timedelta(minutes=self.settings.reset_code_minutes)),
                )
            )
        mail_target = self.app.pool.default_target("mail")
        link = self.settings.public_base_url.rstrip("/") + CODE_PAGES[purpose]
        try:
            with self.app.pool.using("mail", mail_target) as mail:
                mail.run(
                    "send_code",
                    {
                        "to": str(status["mail"]),
                        "account": job.account,
                        "code": code,
                        "purpose": purpose,
                        "minutes": self.settings.reset_code_minutes,
                        "link": link,
                    },
                    timeout=timeout,
                )
        except ConnectorError as exc:
            self._audit_request(actor, target, purpose, "not_sent", f"mail_error:{exc.reason or 'unknown'}")
            return
        self._audit_request(actor, target, purpose, "sent", None)

    def _audit_request(self, actor: Actor, target: str | None, purpose: str, outcome: str, reason: str | None) -> None:
        with transaction(self.engine) as conn:
            self.app.audit.append(
                conn,
                actor,
                "selfservice.code_sent" if outcome == "sent" else "selfservice.code_not_sent",
                outcome="success" if outcome == "sent" else "no_change",
                target=target,
                reason=reason,
                detail={"purpose": purpose},
            )

    def _prune(self) -> None:
        """Forget throttle rows older than a day and closed codes older than a day."""
        cutoff = _ts(self._now() - timedelta(days=1, hours=1))
        with transaction(self.engine) as conn:
            conn.execute(delete(selfservice_request).where(selfservice_request.c.at < cutoff))
            conn.execute(
                delete(selfservice_code).where(
                    selfservice_code.c.state != "live", selfservice_code.c.created_at < cutoff
                )
            )

    # -- 3. redeem ---------------------------------------------------------------------
    def redeem(
        self,
        login: str,
        code: str,
        purpose: str,
        *,
        new_password: str | None = None,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> Proof:
        """Prove *code* for *login* and consume it; raises ``CodeInvalid`` / ``PasswordRefused``.

        For ``reset`` a *new_password* is required and is checked (not written) first.
        """
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {sorted(PURPOSES)}")
        # Nothing typed here is remembered for the operator log's masking before the code is
        # proven: anyone could otherwise blank any text (a login, an address, "e") from every
        # log line for REMEMBER_SECONDS with a form that needs no sign-in.
        if new_password is not None:
            if purpose == "unlock" and new_password:
                # dropped, the account would be unlocked with its old password and the
                # answer would look like success: refused before the code is looked at
                raise PasswordRefused(UNLOCK_SETS_NOTHING_MESSAGE, "not_for_unlock")
            if purpose == "reset" and secret_has_controls(new_password):
                # runner.params refuses it when the run starts, after the code would be used up
                raise PasswordRefused(CONTROL_CHARACTER_MESSAGE, "invalid_characters")
        raw = code if isinstance(code, str) else ""
        typed = normalize_code(raw)
        if not is_code(typed):  # a slip of the keyboard, not a guess: no try spent, nothing looked up
            raise CodeMalformed()
        route = self._route(login)
        actor = Actor("unidentified", (), client_ip=client_ip or None, user_agent=_clip(user_agent))
        if route is None:
            raise CodeInvalid()
        if "@" in route[1]:
            route = self._canonical(route)
        target = f"{route[0]}:{route[1]}"
        account = self._account_id(*route)
        actor = Actor(
            "unidentified", (), on_behalf_of=account, client_ip=client_ip or None, user_agent=_clip(user_agent)
        )
        account_key = self.digest("account", target)
        now = self._now()
        code_table = selfservice_code
        live = and_(
            code_table.c.account_key == account_key, code_table.c.purpose == purpose, code_table.c.state == "live"
        )
        verdict: str | None = None
        with transaction(self.engine) as conn:
            row = conn.execute(select(code_table).where(live).order_by(code_table.c.id.desc()).limit(1)).first()
            if row is None:
                verdict = "no_live_code"
                ever = select(code_table.c.id).where(code_table.c.account_key == account_key).limit(1)
                if conn.execute(ever).first() is None:  # no code was ever sent to it: maybe no account at all
                    actor = Actor("unidentified", (), client_ip=client_ip or None, user_agent=_clip(user_agent))
                    target = self.unproven(*route)
            elif row.expires_at <= _ts(now):
                conn.execute(
                    update(code_table).where(code_table.c.id == row.id).values(state="expired", closed_at=_ts(now))
                )
                verdict = "expired"
            elif not hmac.compare_digest(self.digest("code", typed), row.code_hmac):
                tries = int(row.tries) + 1
                burned = tries >= self.settings.reset_max_tries
                conn.execute(
                    update(code_table)
                    .where(code_table.c.id == row.id)
                    .values(tries=tries, **({"state": "burned", "closed_at": _ts(now)} if burned else {}))
                )
                verdict = "burned" if burned else "wrong_code"
            if verdict is not None:
                self.app.audit.append(
                    conn,
                    actor,
                    "selfservice.code_refused",
                    outcome="refused",
                    target=target,
                    reason=verdict,
                    detail={"purpose": purpose},
                )
        if verdict is not None or row is None:
            raise CodeInvalid()
        remember_secret(typed)  # the code proven: masked in the operator log (another process issued it)
        if raw.strip() != typed:  # as typed (full-width, with spaces) too
            remember_secret(raw.strip()[:256])
        if new_password:
            remember_secret(new_password)  # before the directory checks it (an echo is masked)
        directory = self.app.inventory.directories.get(route[0])
        timeout = self.settings.default_step_timeout
        try:
            with self.app.pool.using("ldap", directory.target) as ldap:
                status = ldap.run("account_status", {"user": route[1]}, timeout=timeout)
        except ConnectorError as exc:
            raise DirectoryUnavailable() from exc
        if not status.get("exists") or not hmac.compare_digest(
            self.digest("snapshot", str(status.get("password_set") or "")), row.snapshot_hmac
        ):
            self._close(row.id, "invalidated", actor, target, purpose, "password_changed_since_issue")
            raise CodeInvalid()
        if purpose == "reset":
            if not new_password:
                raise PasswordRefused("Choose a new password.", "missing")
            try:
                ldap.run("check_password", {"user": route[1], "new_password": new_password}, timeout=timeout)
            except ConnectorError as exc:
                if exc.requester_action:
                    raise PasswordRefused(str(exc), exc.reason) from None
                if isinstance(exc, Unreachable | Timeout):
                    raise DirectoryUnavailable() from None
                # any other refusal (e.g. the account became protected or disabled since the
                # code was sent): the proof holds, the runbook refuses and escalates with its reason

        with transaction(self.engine) as conn:
            used = conn.execute(
                update(code_table)
                .where(code_table.c.id == row.id, code_table.c.state == "live")
                .values(state="used", closed_at=_ts(now))
            )
            if not used.rowcount:
                verdict = "already_used"
            else:
                conn.execute(
                    update(code_table)
                    .where(code_table.c.account_key == account_key, code_table.c.state == "live")
                    .values(state="superseded", closed_at=_ts(now))
                )
            self.app.audit.append(
                conn,
                actor,
                "selfservice.code_redeemed" if verdict is None else "selfservice.code_refused",
                outcome="success" if verdict is None else "refused",
                target=target,
                reason=verdict,
                detail={"purpose": purpose},
            )
        if verdict is not None:
            raise CodeInvalid()
        return Proof(directory=route[0], username=route[1], account=account, purpose=purpose, code_id=int(row.id))

    def redeem_and_start(
        self,
        login: str,
        code: str,
        purpose: str,
        start: Callable[[Proof], _T],
        *,
        new_password: str | None = None,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> _T:
        """``redeem``, then ``start(proof)`` (the run the code proves); what ``start`` returns.

        When ``start`` raises one of ``REFUSED_BEFORE_A_TICKET`` (the run was refused before
        its ticket was written: every worker busy, the runbook changed since it was vetted
        or does not load, its parameters or policy refused), the code is given back
        (``give_back``) before the error goes on: the person is told to try again, and the
        code they hold must still work then. Any other error keeps it used (a ticket may exist).

        When the run ended with the directory refusing the new password for a reason the
        person fixes by choosing another one (``password_choice_refusal``: the current
        password, one in its history, too short for the directory ...), nothing was changed:
        the code is given back the same way, spending one of its tries (at
        ``reset_max_tries`` it stays used: the person asks for a new code), and
        ``PasswordRefused`` is raised with the directory's reason (the ticket stays, closed
        for the requester to act)."""
        proof = self.redeem(login, code, purpose, new_password=new_password, client_ip=client_ip, user_agent=user_agent)
        try:
            result = start(proof)
        except REFUSED_BEFORE_A_TICKET as exc:
            reason = str(getattr(exc, "reason_code", "") or type(exc).__name__)
            self.give_back(proof, reason, client_ip=client_ip, user_agent=user_agent)
            raise
        refused = self.password_choice_refusal(result) if isinstance(result, RunOutcome) else None
        if refused is not None and self.give_back(
            proof, refused.reason or "password_refused", client_ip=client_ip, user_agent=user_agent, spend_try=True
        ):
            raise refused
        return result

    def password_choice_refusal(self, result: RunOutcome) -> PasswordRefused | None:
        """The refusal in *result* when the run changed nothing because the directory refused the
        new password for a reason the person fixes by choosing another one; else None.

        Only a run closed for the requester (never resolved or escalated) whose one attempted
        state-changing step is the password write, failed with one of
        ``PASSWORD_CHOICE_REASONS``: a run that changed anything keeps the code used."""
        if result.state != "closed":
            return None
        changing = [
            s
            for s in result.steps
            if s.status != "skipped" and changes_state(self.app.connectors, s.connector, s.action)
        ]
        if len(changing) != 1:
            return None
        step = changing[0]
        if (
            step.status != "failed"
            or step.action != "reset_password"
            or step.reason not in PASSWORD_CHOICE_REASONS
            or step.attempt_outcome == "unknown"
        ):
            return None
        return PasswordRefused(step.message or policy_message("quality"), step.reason)

    def give_back(
        self,
        proof: Proof,
        reason: str,
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
        spend_try: bool = False,
    ) -> bool:
        """Make the code *proof* was redeemed with live again (its expiry as it was; its tries
        too, or one more with *spend_try*: the directory refused the password written with
        it), audited as ``selfservice.code_restored`` with *reason*; False when it is no
        longer the account's newest code, has expired meanwhile, or *spend_try* would reach
        ``reset_max_tries`` (it stays used)."""
        now = self._now()
        target = f"{proof.directory}:{proof.username}"
        account_key = self.digest("account", target)
        actor = Actor(
            "unidentified", (), on_behalf_of=proof.account, client_ip=client_ip or None, user_agent=_clip(user_agent)
        )
        with transaction(self.engine) as conn:
            newer = conn.execute(
                select(func.count())
                .select_from(selfservice_code)
                .where(selfservice_code.c.account_key == account_key, selfservice_code.c.id > proof.code_id)
            ).scalar_one()
            restored = 0
            if not newer:
                spent = int(spend_try)
                restored = conn.execute(
                    update(selfservice_code)
                    .where(
                        selfservice_code.c.id == proof.code_id,
                        selfservice_code.c.state == "used",
                        selfservice_code.c.expires_at > _ts(now),
                        selfservice_code.c.tries + spent < self.settings.reset_max_tries,
                    )
                    .values(state="live", closed_at=None, tries=selfservice_code.c.tries + spent)
                ).rowcount
            if restored:
                self.app.audit.append(
                    conn,
                    actor,
                    "selfservice.code_restored",
                    outcome="success",
                    target=target,
                    reason=_clip(reason, 64),
                    detail={"purpose": proof.purpose},
                )
        return bool(restored)

    def _close(self, code_id: int, state: str, actor: Actor, target: str, purpose: str, reason: str) -> None:
        with transaction(self.engine) as conn:
            conn.execute(
                update(selfservice_code)
                .where(selfservice_code.c.id == code_id, selfservice_code.c.state == "live")
                .values(state=state, closed_at=_ts(self._now()))
            )
            self.app.audit.append(
                conn,
                actor,
                "selfservice.code_refused",
                outcome="refused",
                target=target,
                reason=reason,
                detail={"purpose": purpose},
            )

    # -- the outcome page ----------------------------------------------------------------
    def outcome(self, ticket_id: int, purpose: str, lang: str = "en") -> Outcome:
        """The ticket a *purpose* code was redeemed for, as the ledger has it now: its state,
        message and resolution note in *lang*, whether its write step changed anything
        (an unlock of an account that was not locked changes nothing), and whether the
        confirmation mail was sent. ``NotFoundError`` when there is no such ticket of that
        purpose's runbook. Reading it changes nothing."""
        number = number_of(ticket_id)
        with reading(self.engine) as conn:
            row = conn.execute(
                select(
                    ticket.c.state,
                    ticket.c.message,
                    ticket.c.reason,
                    ticket.c.resolution_note,
                    ticket.c.resolution_note_i18n,
                    ticket.c.runbook,
                ).where(ticket.c.id == ticket_id)
            ).first()
            if row is None or row.runbook != PURPOSES.get(purpose):
                raise NotFoundError(NO_TICKET, number=number)
            steps = conn.execute(
                select(step_result.c.action, step_result.c.status, step_result.c.outputs).where(
                    step_result.c.ticket_id == ticket_id
                )
            ).all()

        def did(action: str, output: str) -> bool:
            for step in steps:
                if step.action == action and step.status == "ok":
                    try:
                        outputs = json.loads(step.outputs or "{}")
                    except ValueError:
                        outputs = {}
                    if not isinstance(outputs, dict) or outputs.get(output) is not False:
                        return True
            return False

        return Outcome(
            ticket=number,
            state=str(row.state),
            # the message without the note (shown apart): escalated, a technical sentence in plain words
            message=requester_message_in(str(row.state), row.message, row.reason, None, None, lang),
            note=note_in(row.resolution_note, row.resolution_note_i18n, lang),
            changed=did(_PURPOSE_ACTIONS[purpose], "changed"),
            notified=did("notify", "sent"),
        )

    # -- the policy shown while typing ---------------------------------------------------
    def policy(self) -> dict[str, Any]:
        """What the new-password form shows as the user types: ``runner.fixes.password_rules``."""
        return password_rules(self.app)


def params_for(proof: Proof, new_password: str | None) -> dict[str, Any]:
    """The runbook parameters of a redeemed code (the account itself comes from the requester)."""
    if proof.purpose == "reset":
        return {"new_password": new_password, "must_change": False}
    return {}


def _clip(text: str | None, limit: int = 256) -> str | None:
    if not text:
        return None
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]
