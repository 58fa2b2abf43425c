"""The run service: submit → ``queued`` ticket → dispatcher → ``execute(ticket_id)``.

Every surface (CLI, portal, API, later triage and a Celery worker) starts runs here::

    submit(runbook, params, requester=, roles=, channel=, actor_id=, ...)  -> Submitted
        policy + vetting + parameters (raises before any ticket: ParameterError, PolicyDenied,
        NotFoundError, RunbookError/NotVetted, QueueFull) → ticket ``queued`` with the actor,
        on-behalf-of, channel and the runbook's SHA-256 → commit → dispatcher gets the id.
    execute(ticket_id)                                                     -> RunOutcome | None
        claim ``queued → running`` atomically (None: someone else has it — a redelivery does
        nothing) → runbook hash still the ticket's? (no: escalated ``runbook_changed``) →
        secret parameters available? (no: escalated ``secrets_unavailable``) → steps
        (``runner.engine``): each step row written when it starts (``running``) and updated
        when it finishes → resolved | escalated | closed (``requester_action_needed``).
    follow(ticket_id, after_seq)  → runner.ledger.progress.Progress   (any process)
    wait(ticket_id, timeout)      → RunOutcome                          (once final)
    sweep()                       → escalates queued (``never_started``) and running
                                    (``run_lost``) tickets whose deadline passed.

States (docs/architecture.md "Ticket states"): ``queued → running → resolved | escalated |
closed``; ``awaiting_approval`` (before ``queued``) and reopen are reserved for later issues.

Secrets: secret parameter values never reach the database. ``submit`` keeps them in a
process-local map (ticket id → values) that ``execute`` removes when it claims the
ticket; a run executed where they are not (another process, a restart) escalates with
``secrets_unavailable``. docs/architecture.md "Secrets across the seam" describes how an
out-of-process worker will receive them (encrypted, key outside the database).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, bindparam, func, select
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import Connector
from runner import leases, sealed, target_locks
from runner import params as params_mod
from runner.catalogue import Catalogue, audience_allows
from runner.dispatch import Dispatcher, InlineDispatcher
from runner.engine import (
    CONFIG_MESSAGE,
    INTERRUPTED_MESSAGE,
    PREFETCH_MAX_AGE,
    Prefetched,
    Read,
    RunResult,
    StepRecord,
    reads_from_wire,
    reads_to_wire,
)
from runner.engine import execute as run_steps
from runner.errors import (
    ConfigError,
    FirstlineError,
    LedgerError,
    NotFoundError,
    ParameterError,
    PolicyDenied,
    RunbookError,
    Text,
)
from runner.finalwatch import MISSING, FinalWatch
from runner.inventory import Inventory, load_inventory
from runner.ledger import prepared, tickets
from runner.ledger import progress as progress_mod
from runner.ledger.audit import Actor, AuditLog, Held, now
from runner.ledger.store import reading, transaction, write_retrying
from runner.ledger.tables import step_result, ticket
from runner.oplog import get_logger, remember_secret
from runner.pool import Pool
from runner.recorder import LedgerRecorder, Progress, shielded
from runner.redaction import REDACTED, Scrubber
from runner.runbook import Runbook
from runner.safetext import principal
from runner.secrets import SecretStore
from runner.settings import Settings
from runner.templating import render_value, truthy
from runner.vetting import check_vetted, read_lock
from runner.watchdog import Watchdog

CHANNELS = ("portal", "api", "cli", "worker")
# What ``outcome_from_ledger`` reads: the ticket's outcome columns and its step rows, no more.
# The claim reads the whole ticket in its own transaction (runner.ledger.prepared).
_CLAIM_READ = select(ticket).where(ticket.c.id == bindparam("b_id"))
_OUTCOME_TICKET = select(
    ticket.c.state, ticket.c.reason, ticket.c.message, ticket.c.resolution_note, ticket.c.runbook
).where(ticket.c.id == bindparam("b_id"))
_OUTCOME_STEP_COLUMNS = (
    "step_id connector action target status inputs outputs reason message attempts started_at finished_at"
)
_OUTCOME_STEPS = (
    select(*(step_result.c[k] for k in _OUTCOME_STEP_COLUMNS.split()))
    .where(step_result.c.ticket_id == bindparam("b_id"))
    .order_by(step_result.c.seq)
)
# How a run's requester was proven, passed by the code path that proved it (never from request
# parameters): ``selfservice`` — a one-time code sent to the account's own address was redeemed
# (runner.selfservice); ``operator`` — the in-process entry points (CLI, ``Firstline.run``), used
# by someone who already holds the installation's database and keys. A signed-in session has none.
PROOF_SELFSERVICE = "selfservice"
PROOF_OPERATOR = "operator"
PROOFS = (PROOF_SELFSERVICE, PROOF_OPERATOR)
# Step actions that set a password without the current one, or lift a lock.
RESET_ACTIONS = frozenset({"reset_password"})
SELF_FORBIDDEN_ACTIONS = frozenset({"reset_password", "unlock_account"})
RESET_NEEDS_PROOF = (
    "A password is reset only after proving who you are with a one-time code "
    "(the sign-in page's 'Forgot your password?'). Signed in, change it with your current "
    "password ('Change my password')."
)
OWN_ACCOUNT_DENIED = (
    "Agents cannot reset or unlock their own account from the service desk: use "
    "'Change my password' with your current password, or the sign-in page's "
    "'Forgot your password?', or ask a colleague."
)
# Actions that check the account's current password, and the reason a wrong one gives.
CURRENT_PASSWORD_ACTIONS = frozenset({"change_password"})
# "locked": the guess that made the directory lock the account (its own count of failed binds
# survives an unlock on OpenLDAP, so the next wrong guess locks at once and is answered so)
WRONG_CURRENT_PASSWORD = ("wrong_password", "locked")
TOO_MANY_WRONG_PASSWORDS = (
    "The current password of this account was typed wrong %(tries)s times in the last %(hours)s hours, so "
    "Firstline changes it no more for now. Use 'Forgot your password?' on the sign-in page (a code by "
    "e-mail), or ask the service desk."
)
# Shown with a ticket closed as ``requester_action_needed`` (the message above it says what was wrong).
REQUESTER_GUIDANCE = {
    "en": "You can fix this yourself: correct what the message says and try again. "
    "This ticket is closed; the service desk will not act on it.",
    "nl": "Dit kunt u zelf oplossen: pas aan wat de melding zegt en probeer het opnieuw. "
    "Dit ticket is gesloten; de servicedesk onderneemt er niets mee.",
}
RUNBOOK_CHANGED_MESSAGE = (
    "The runbook was changed after this request was made, so it was not run; "
    "the service desk will check it. Nothing was changed."
)
SECRETS_UNAVAILABLE_MESSAGE = (
    "The secret values of this request were not available where it was to run "
    "(for example after a restart); nothing was changed. Please make the request again."
)
NEVER_STARTED_MESSAGE = "The request waited too long and was never started; nothing was changed. Please try again."
NOT_DISPATCHED_MESSAGE = (
    "The request could not be handed to a worker (the run queue is not reachable); it was not started and "
    "nothing was changed. Please try again in a few minutes."
)
INTERRUPTED_UNSTARTED_MESSAGE = "The run was interrupted before it started; nothing was changed. Please try again."
RUN_LOST_MESSAGE = "The run stopped before it finished (worker lost); second level must check the target's state."
LEDGER_UNAVAILABLE_MESSAGE = (
    "The run stopped because its steps could not be recorded (the database was unavailable); "
    "second level must check the target's state."
)
FINISHED_KEEP_S = 600.0  # how long an outcome nobody waited for stays in memory


def actor_for(
    requester: str,
    actor_id: str | None,
    roles: frozenset[str] | set[str],
    client_ip: str | None = None,
    user_agent: str | None = None,
) -> Actor:
    """Who acts (*actor_id*, or the requester acting for themself) on whose behalf (the
    requester). Both are validated as account names; ``ParameterError`` otherwise."""
    principal(requester, what=Text("the requester (--as)"))
    if actor_id is not None:
        principal(actor_id, what=Text("the acting person"))
    return Actor(
        actor_id or requester,
        tuple(sorted(roles)),
        on_behalf_of=requester,
        client_ip=client_ip,
        user_agent=user_agent,
    )


def refused_actor(
    requester: str,
    actor_id: str | None,
    roles: frozenset[str] | set[str],
    client_ip: str | None,
    user_agent: str | None,
) -> Actor:
    """The actor of a ``run.refused`` event: never an invalid id (those are what was refused)."""
    try:
        return actor_for(requester, actor_id, roles, client_ip, user_agent)
    except FirstlineError:
        try:
            who = principal(actor_id, what="the acting person") if actor_id is not None else "unidentified"
        except FirstlineError:
            who = "unidentified"
        return Actor(who, tuple(sorted(roles)), client_ip=client_ip, user_agent=user_agent)


@dataclass
class RunOutcome:
    """What a requester learns about a run. ``secrets`` are handed over once, never stored."""

    ticket_number: str
    state: str
    reason: str | None
    message: str
    resolution_note: str | None
    steps: list[StepRecord] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    runbook: str | None = None  # the ticket's runbook name, when the outcome came from its row

    @property
    def ok(self) -> bool:
        return self.state == "resolved"

    @property
    def requester_action_needed(self) -> bool:
        """Closed without a fix because the requester must act (try again, correct a value)."""
        return self.state == "closed"

    def guidance(self, lang: str = "en") -> str | None:
        """Plain next-step text (``en`` / ``nl``) for a ``requester_action_needed`` outcome."""
        return REQUESTER_GUIDANCE.get(lang, REQUESTER_GUIDANCE["en"]) if self.requester_action_needed else None


@dataclass(frozen=True)
class Submitted:
    """A run accepted by ``submit``: its ticket (``queued`` when written; the inline
    dispatcher has already run it when ``submit`` returns)."""

    ticket_id: int
    ticket_number: str


@dataclass(frozen=True)
class PlannedStep:
    id: str
    connector: str
    action: str
    target: str | None
    inputs: dict[str, Any]
    condition: str | None


# The sealed kinds a claim looks for when the ticket does not list them (one queued before
# run_context recorded "sealed"; runner.sealed).
SEALED_AT_SUBMIT = (sealed.PARAMS, sealed.READS)


class Sweeper:
    """A daemon thread that calls ``RunService.sweep()`` every *interval* seconds until ``stop()``."""

    def __init__(self, svc: RunService, interval: float) -> None:
        self._svc, self._interval = svc, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="firstline-sweeper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._svc.sweep()
            except Exception:  # noqa: BLE001 - the sweeper must keep running (next round retries)
                get_logger().exception("sweep.failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class RunService:
    """Submits, executes, follows and sweeps runs. Safe to share between threads."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        audit: AuditLog,
        catalogue: Catalogue,
        connectors: Mapping[str, type[Connector]],
        *,
        secrets: SecretStore | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.settings, self.engine, self.audit, self.catalogue = settings, engine, audit, catalogue
        self.connectors = connectors
        self.secrets = secrets if secrets is not None else SecretStore(settings.inventory.parent)
        self.watchdog = watchdog if watchdog is not None else Watchdog(grace=settings.watchdog_grace)
        self.log = get_logger()
        self.dispatcher: Dispatcher | None = None  # the default for ``submit`` (the portal sets its pool)
        self._inventory: Inventory | None = None
        self._pool: Pool | None = None
        self._lock = threading.Lock()
        # Process-local: secret parameter values of submitted runs, removed at claim.
        self._run_secrets: dict[int, dict[str, Any]] = {}
        # ticket id → (when, reads made for the request just before): this process's runs only
        self._prefetched: dict[int, tuple[float, tuple[Read, ...]]] = {}
        # Out of process (runner.sealed): a worker seals a run's once-only outputs for the reader.
        self.seal_outputs = False
        self._run_key: sealed.RunKey | None = None
        self._run_key_read = False
        # Outcomes of runs executed here, for ``wait`` (they carry secret outputs: kept briefly).
        self._cond = threading.Condition()
        self._here: set[int] = set()
        self._republished: dict[int, float] = {}  # ticket id -> monotonic time of the last re-publish
        self._finished: OrderedDict[int, tuple[float, RunOutcome]] = OrderedDict()
        # Runs executed elsewhere: one reader for all this process's waiters (runner.finalwatch).
        self._watch = FinalWatch(engine, self._wake, log=self.log)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- shared resources ------------------------------------------------------------
    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            self._inventory = load_inventory(self.settings.inventory, self.connectors)
        return self._inventory

    @property
    def pool(self) -> Pool:
        with self._lock:
            if self._pool is None:
                self._pool = Pool(self.connectors, self.inventory, self.secrets)
            return self._pool

    def close(self) -> None:
        self._watch.close()
        if self._pool is not None:
            self._pool.close()

    @property
    def run_key(self) -> sealed.RunKey | None:
        """``FIRSTLINE_RUN_KEY`` (``runner.sealed``), None when none is configured; read once."""
        if not self._run_key_read:
            self._run_key = sealed.key_of(self.settings)
            self._run_key_read = True
        return self._run_key

    # -- submit ----------------------------------------------------------------------
    def prepare(
        self,
        name: str,
        raw: Mapping[str, Any],
        actor: Actor,
        requester: str,
        channel: str,
        proof: str | None = None,
    ) -> tuple[Runbook, dict[str, Any]]:
        """Policy, vetting and parameters: the runbook and the typed values, or an error.

        *proof*: how the requester was proven (``PROOFS``), set by the code path, never from
        the request; see ``account_rules``."""
        if channel not in CHANNELS:
            raise PolicyDenied("unknown channel '%(channel)s'", channel=channel[:16])
        if proof is not None and proof not in PROOFS:
            raise PolicyDenied("unknown proof '%(proof)s'", proof=str(proof)[:16])
        roles = frozenset(actor.roles)
        rb = self.catalogue.vetted(name)
        _ = self.inventory  # a broken inventory refuses the run before a ticket opens (ConfigError, exit 2)
        if not audience_allows(rb, roles):
            if "agent" in roles or "admin" in roles:
                raise PolicyDenied("runbook '%(name)s' is not available to agents", name=name)
            raise PolicyDenied("runbook '%(name)s' is not available for self-service; ask the service desk", name=name)
        values = params_mod.validate(
            rb, raw, requester=requester, roles=roles, channel=channel, inventory=self._inventory_or_none(rb)
        )
        self.account_rules(rb, raw, values, actor, proof)
        self.current_password_tries(rb, values)
        return rb, values

    def current_password_tries(self, rb: Runbook, values: Mapping[str, Any]) -> None:
        """A runbook that checks the account's current password (``change_password``) is
        ``PolicyDenied`` for an account whose tickets met ``current_password_tries`` wrong
        current passwords (reason ``wrong_password``, or ``locked``: the guess that locked it)
        within ``current_password_window_seconds``.

        The directory's own lockout counts failures too, but unlocking the account clears that
        count: a signed-in session (someone else's hands on an unlocked laptop) could guess two
        passwords, unlock the account itself, and guess again without end (a tester's find,
        2026-12-02). The ledger's count survives an unlock; Forgot password (a code by e-mail)
        and the service desk's reset stay open.
        """
        actions = {s.spec.action for s in [*rb.steps, *([rb.verify] if rb.verify else [])]}
        if not actions & CURRENT_PASSWORD_ACTIONS:
            return
        limit = int(getattr(self.settings, "current_password_tries", 5))
        window = float(getattr(self.settings, "current_password_window_seconds", 86400))
        since = (datetime.now(UTC) - timedelta(seconds=window)).isoformat(timespec="microseconds")
        for p in rb.model.parameters:
            if p.type != "account" or not values.get(p.name):
                continue
            key, _folded = self._target_key(rb, values, p.name)
            given = str(values[p.name])
            query = select(func.count()).where(
                ticket.c.subject.in_(sorted({given, given.lower()})),
                ticket.c.reason.in_(WRONG_CURRENT_PASSWORD),
                ticket.c.closed_at >= since,
            )
            if key is not None:
                query = query.where(ticket.c.directory == key)
            with reading(self.engine) as conn:
                wrong = int(conn.execute(query).scalar() or 0)
            if wrong >= limit:
                raise PolicyDenied(TOO_MANY_WRONG_PASSWORDS, tries=wrong, hours=max(1, round(window / 3600)))

    def account_rules(
        self, rb: Runbook, raw: Mapping[str, Any], values: Mapping[str, Any], actor: Actor, proof: str | None
    ) -> None:
        """Who may reset or unlock which account (security review of issue 8, item 1).

        * An employee (no ``agent`` / ``admin`` role) runs a runbook with a ``reset_password``
          step only with *proof* ``selfservice`` (a redeemed one-time code) or ``operator``;
          a signed-in session alone is ``PolicyDenied`` (a stolen cookie must not become the
          account's password). Signed in, employees use ``password-change`` (old password).
        * An agent or admin (any proof but ``operator``) running a runbook with a
          ``reset_password`` or ``unlock_account`` step must name the account: an empty one
          is a ``ParameterError`` (it never defaults to the agent), and naming their own
          account — compared after routing, case-insensitively, whether typed ``name``,
          ``name@domain`` or ``DOMAIN\\name`` — is ``PolicyDenied``.
        """
        actions = {s.spec.action for s in [*rb.steps, *([rb.verify] if rb.verify else [])]}
        roles = set(actor.roles)
        if "agent" not in roles and "admin" not in roles:
            if actions & RESET_ACTIONS and proof not in PROOFS:
                raise PolicyDenied(RESET_NEEDS_PROOF)
            return
        if proof == PROOF_OPERATOR or not actions & SELF_FORBIDDEN_ACTIONS:
            return
        accounts = [p for p in rb.model.parameters if p.type == "account"]
        for p in accounts:
            if raw.get(p.name) in (None, ""):
                raise ParameterError(
                    "%(label)s is required: name the account to act on (it never defaults to you)",
                    label=params_mod.param_label(p.name),
                )
        me = self._account_key(rb, actor.id)
        for p in accounts:
            key, name = self._target_key(rb, values, p.name)
            # an acting person whose directory cannot be told matches their name in any directory
            if me is not None and name == me[1] and (me[0] is None or key is None or key == me[0]):
                raise PolicyDenied(OWN_ACCOUNT_DENIED)

    def _target_key(self, rb: Runbook, values: Mapping[str, Any], param: str) -> tuple[str | None, str]:
        routed = values.get(rb.directory_param) if rb.directory_param else None
        key = routed.get("key") if isinstance(routed, dict) else None
        return (str(key) if key else None, str(values.get(param) or "").casefold())

    def _account_key(self, rb: Runbook, account: str) -> tuple[str | None, str] | None:
        """(directory key, name folded) of an acting person's id (``name``, ``name@domain``,
        ``DOMAIN\\name``), routed like an account parameter; None when it cannot be routed."""
        if not rb.directory_param:
            return (None, account.split("@")[0].split("\\")[-1].casefold())
        try:
            dirs = self.inventory.directories
            implied, bare = dirs.split(account, "the acting person")
        except FirstlineError:
            return None
        key = implied or dirs.default or (next(iter(dirs.entries)) if len(dirs.entries) == 1 else None)
        return (key, bare.casefold())

    def _inventory_or_none(self, rb: Runbook) -> Inventory | None:
        needs = any(p.type in ("choice", "directory") for p in rb.model.parameters)
        return self.inventory if needs else None

    def run_timeout(self, rb: Runbook) -> int:
        """Seconds a claimed run of *rb* may take before the sweep calls it lost: every step's
        timeout times its attempts, plus a minute."""
        return int(
            sum(
                (s.spec.timeout or self.settings.default_step_timeout) * (1 + getattr(s.spec, "retries", 0))
                for s in [*rb.steps, *([rb.verify] if rb.verify else [])]
            )
            + 60
        )

    def submit(
        self,
        name: str,
        raw: Mapping[str, Any],
        *,
        requester: str,
        roles: frozenset[str] | set[str],
        channel: str,
        actor_id: str | None = None,
        client_ip: str | None = None,
        user_agent: str | None = None,
        dispatcher: Dispatcher | None = None,
        progress: Progress | None = None,
        work_note: str | None = None,
        proof: str | None = None,
        reads: Sequence[Read] = (),
        held: Held | None = None,
    ) -> Submitted:
        """Check and record a run as a ``queued`` ticket, hand its id to *dispatcher*
        (default: ``self.dispatcher``) and return at once with the ticket number.

        *reads*: read-only connector calls made for this request just before (the agent
        desk's account look-up); a run executed in this process uses them instead of
        repeating an identical read (``runner.engine.Prefetched``); for another process (a Celery
        worker) they travel sealed with the ticket (``runner.sealed.READS``, deleted with the
        claim) and count only within ``PREFETCH_MAX_AGE`` of when they were made.

        *proof*: how the requester was proven (``PROOFS``; None for a signed-in session),
        passed by the code path that proved it, never taken from request parameters
        (``account_rules``).

        *requester*: on whose behalf (the account whose problem this is); *actor_id*: who
        acts (CLI: the OS user; portal: the signed-in person), None = the requester.
        *work_note*: the agent's reason for the run (already checked by
        ``runner.agent.work_note``), kept on the ticket and in ``ticket.opened``. Refusals
        raise ``FirstlineError`` subclasses before any ticket and are audited as
        ``run.refused``; ``QueueFull`` when the dispatcher cannot take the run.

        *held*: audit events that came before this request (the agent's look-up), written in
        the ticket's transaction, or with the refusal (``runner.ledger.audit.Held``).
        """
        progress = shielded(progress, self.log)
        dispatcher = dispatcher or self.dispatcher
        if dispatcher is None:
            raise LedgerError("no dispatcher is configured for runs")
        # Another process executes it: secret values travel sealed in the ledger (runner.sealed).
        seal = bool(getattr(dispatcher, "out_of_process", False))
        with ExitStack() as stack:
            try:
                actor = actor_for(requester, actor_id, roles, client_ip, user_agent)
                rb, values = self.prepare(name, raw, actor, requester, channel, proof)
                if seal and self.run_key is None and any(values.get(p) is not None for p in rb.secret_params):
                    raise ConfigError(
                        "secret values cannot reach the workers: FIRSTLINE_RUN_KEY (or FIRSTLINE_RUN_KEY_FILE) "
                        "is not set; nothing was started"
                    )
                reserving = (
                    cast(Any, dispatcher).reserve(channel=channel, runbook=rb.name)  # its queue, no ticket read
                    if getattr(dispatcher, "routes_by_run", False)
                    else dispatcher.reserve()
                )
                send = stack.enter_context(reserving)  # QueueFull: refused, no ticket
            except FirstlineError as exc:
                self._audit_refusal(refused_actor(requester, actor_id, roles, client_ip, user_agent), name, exc, held)
                raise
            submitted = self._record(
                rb, values, actor, requester, channel, work_note, seal=seal, reads=reads, held=held
            )
            if reads and not seal:
                self._prefetched[submitted.ticket_id] = (time.monotonic(), tuple(reads))
            try:
                if progress is not None:
                    progress("ticket.opened", {"ticket": submitted.ticket_number})
                try:
                    send(submitted.ticket_id)
                except Exception:
                    # Not handed over (e.g. a broker that is down): the ticket must not stay queued.
                    # An inline run that failed after its claim re-raises (the sweep ends it).
                    self.log.exception("run.not_dispatched", ticket=submitted.ticket_number)
                    self._forget_run(submitted.ticket_id)
                    if not self._end_unstarted(
                        submitted.ticket_id, "not_dispatched", NOT_DISPATCHED_MESSAGE, None, from_states=("queued",)
                    ):
                        raise
            except KeyboardInterrupt:
                # Ctrl-C / SIGTERM after the ticket was recorded and before a run claimed it (a
                # claim that came first is not undone: only a ticket still queued is ended).
                self.log.warning("run.interrupted", ticket=submitted.ticket_number)
                self._forget_run(submitted.ticket_id)
                self._end_unstarted(
                    submitted.ticket_id, "interrupted", INTERRUPTED_UNSTARTED_MESSAGE, None, from_states=("queued",)
                )
                raise
        return submitted

    def _forget_run(self, ticket_id: int) -> None:
        """Drop what this process kept for a run that will not start here."""
        self._run_secrets.pop(ticket_id, None)
        self._prefetched.pop(ticket_id, None)

    def _record(
        self,
        rb: Runbook,
        values: Mapping[str, Any],
        actor: Actor,
        requester: str,
        channel: str,
        work_note: str | None = None,
        *,
        seal: bool = False,
        reads: Sequence[Read] = (),
        held: Held | None = None,
    ) -> Submitted:
        run_timeout = self.run_timeout(rb)
        start_within = float(getattr(self.settings, "run_start_within", 600.0))
        for p in rb.secret_params:
            if isinstance(values.get(p), str):
                # masked in the operator log until the run's deadline has passed
                remember_secret(values[p], seconds=start_within + run_timeout)
        given_secrets = {p: values[p] for p in rb.secret_params if values.get(p) is not None}
        stored_params = {
            k: (REDACTED if k in rb.secret_params else (v["key"] if isinstance(v, dict) else v))
            for k, v in values.items()
        }
        # what the ticket is about: the account acted on; for a host fix the object it acts on
        # (the inventory's choice key: printer, service, folder), so that an auditor's "target"
        # search finds it (the requester is on the ticket and in on_behalf_of anyway)
        subject = next(
            (str(values[p.name]) for p in rb.model.parameters if p.type == "account" and p.name in values),
            next(
                (
                    str(values[p.name]["key"])
                    for p in rb.model.parameters
                    if p.type == "choice" and isinstance(values.get(p.name), dict) and values[p.name].get("key")
                ),
                requester,
            ),
        )
        ticket_id: int | None = None
        try:
            with transaction(self.engine) as conn:
                if held is not None:
                    held.write(conn, self.audit)  # what came before, first in the chain
                ticket_id, number = tickets.open_ticket(
                    conn,
                    self.audit,
                    actor,
                    tickets.NewTicket(
                        requester=requester,
                        subject=subject,
                        channel=channel,
                        category=rb.model.category,
                        type=rb.model.type,
                        runbook=rb.name,
                        runbook_sha256=rb.sha256,
                        params=stored_params,
                        correlation_id=str(uuid.uuid4()),
                        timeout_s=start_within,  # queued: must be claimed by then (``never_started``)
                        directory=values[rb.directory_param]["key"] if rb.directory_param else None,
                        opened_by=actor.id,
                        work_note=work_note,
                        state="queued",
                        run_timeout_s=run_timeout,
                        run_context={
                            "roles": list(actor.roles),
                            "client_ip": actor.client_ip,
                            "user_agent": actor.user_agent,
                            "secret_params": sorted(given_secrets),
                            # what the claim must take from runner.sealed (execute); [] = nothing
                            "sealed": [sealed.PARAMS] * bool(given_secrets and seal)
                            + [sealed.READS] * bool(reads and seal and self.run_key is not None),
                            # the target lock keys, taken with the claim (runner.target_locks)
                            "locks": target_locks.target_keys(rb, values, lambda p: self._target_key(rb, values, p)),
                        },
                    ),
                )
                if given_secrets and seal:  # for another process: sealed, in this transaction
                    key = self.run_key
                    assert key is not None  # checked in submit before the ticket
                    sealed.put(conn, key, ticket_id, sealed.PARAMS, given_secrets)
                elif given_secrets:
                    self._run_secrets[ticket_id] = given_secrets  # before commit: a fast worker finds them
                if reads and seal and self.run_key is not None:  # the look-up, for the worker's identical read
                    try:
                        wire = reads_to_wire(reads)
                        json.dumps(wire)  # JSON-able? else the worker simply reads afresh
                    except (TypeError, ValueError):
                        self.log.warning("run.reads_not_carried", ticket_id=ticket_id)
                    else:
                        sealed.put(conn, self.run_key, ticket_id, sealed.READS, wire)
        except BaseException:
            if ticket_id is not None:
                self._run_secrets.pop(ticket_id, None)
            raise
        assert ticket_id is not None
        return Submitted(ticket_id, number)

    def _audit_refusal(self, actor: Actor, name: str, exc: FirstlineError, held: Held | None = None) -> None:
        outcome = "denied" if isinstance(exc, PolicyDenied | RunbookError) else "failure"
        try:
            with transaction(self.engine) as conn:
                if held is not None:
                    held.write(conn, self.audit)
                self.audit.append(
                    conn,
                    actor,
                    "run.refused",
                    outcome=outcome,
                    target=str(name)[:64],
                    reason=exc.reason_code,  # snake_case as every reason (was the class name)
                    detail={"message": str(exc)[:500]},
                )
        except LedgerError:
            self.log.exception("audit.refusal_not_recorded")

    # -- execute ---------------------------------------------------------------------
    def execute(self, ticket_id: int, *, progress: Progress | None = None) -> RunOutcome | None:
        """Claim *ticket_id* and run it; None when it was not ``queued`` (claimed elsewhere,
        already final, or no such ticket): a redelivered id never runs steps twice.

        Never raises for a run's own failures: they end the ticket (escalated / closed).
        ``LedgerError`` only when the database itself is unusable (the sweep ends the
        ticket later).
        """
        progress = shielded(progress, self.log)
        with self._cond:
            self._here.add(ticket_id)
        try:
            lease = leases.Lease(ticket_id)
            token = read_token = None
            locked: set[str] = set()
            # The ticket is read in the claim's own transaction (one round of the writer lock).
            with transaction(self.engine) as conn:
                row = prepared.execute(conn, _CLAIM_READ, {"b_id": ticket_id}).mappings().first()
                queued = claimed = False
                if row is not None and row["state"] == "queued":
                    queued = True
                    claimed = progress_mod.claim(conn, ticket_id, row["run_timeout_s"] or 3600)
                if row is not None and claimed:
                    # Sealed secret parameters (another process submitted): read and deleted with the
                    # claim; with them, the look-up another process made for this request. Tickets
                    # say which kinds were sealed ("sealed" in run_context; older ones: look).
                    context = json.loads(row["run_context"] or "{}")
                    sealed_kinds = context.get("sealed", SEALED_AT_SUBMIT)
                    taken = sealed.take_kinds(conn, ticket_id, sealed_kinds) if sealed_kinds else {}
                    token, read_token = taken.get(sealed.PARAMS), taken.get(sealed.READS)
                    leases.take(conn, lease, self.settings.run_lease_seconds)  # the lease the heartbeat renews
                    ahead = [k for k in context.get("locks") or () if isinstance(k, str)]  # keys submit worked out
                    if ahead:  # taken too, those free now (the rest: _run_claimed waits for them)
                        locked = target_locks.take_free(
                            conn, ahead, ticket_id=ticket_id, owner=lease.owner, seconds=self.settings.run_lease_seconds
                        )
            if not queued:
                if row is None or row["state"] in tickets.FINAL_STATES:
                    self._forget_run(ticket_id)
                self.log.info("run.not_claimed", ticket_id=ticket_id, state=row["state"] if row else None)
                return None
            assert row is not None
            secrets = self._run_secrets.pop(ticket_id, None)  # removed once claimed or claimed elsewhere
            kept = self._prefetched.pop(ticket_id, None)
            prefetched = Prefetched(kept[1]) if kept is not None else None
            if not claimed:
                self.log.info("run.already_claimed", ticket_id=ticket_id)
                return None
            heartbeat = leases.keeper_for(self)
            try:
                # From the claim's commit on, everything is inside this try: a Ctrl-C here too
                # ends the ticket at once, and the lease (with its target locks) is released.
                heartbeat.hold(lease)
                if token is not None and secrets is None:
                    key = self.run_key  # no key or a token past run_start_within: secrets_unavailable
                    ttl = float(getattr(self.settings, "run_start_within", 600.0))
                    secrets = key.open(token, ttl) if key is not None else None
                if read_token is not None and self.run_key is not None:
                    # Fernet's own age check first (whole seconds), then each read's age in Prefetched.
                    carried = self.run_key.open(read_token, PREFETCH_MAX_AGE)
                    prefetched = Prefetched(reads_from_wire(carried)) if carried else None
                outcome = self._run_claimed(row, secrets or {}, progress, lease, prefetched, locked)
            except LedgerError:
                # The database is unusable: the lease is left to expire, so the sweep finds the run.
                heartbeat.forget(lease)
                raise
            except (Exception, KeyboardInterrupt) as exc:
                # Anything before the steps (unreadable approvals, inventory...), or Ctrl-C /
                # SIGTERM then: never left running.
                if isinstance(exc, KeyboardInterrupt):
                    self.log.warning("run.interrupted", ticket_id=ticket_id)
                    reason, message = "interrupted", INTERRUPTED_MESSAGE
                else:
                    self.log.exception("run.not_started", ticket_id=ticket_id)
                    config = isinstance(exc, FirstlineError)
                    reason = "config_error" if config else "internal_error"
                    message = CONFIG_MESSAGE if config else "An internal error stopped the run."
                meta = {k: row[k] for k in ("subject", "runbook", "runbook_sha256", "correlation_id")}
                ended = self._end_unstarted(ticket_id, reason, message, None, meta, from_states=("running",))
                if ended or not isinstance(exc, KeyboardInterrupt):
                    outcome = RunOutcome(tickets.number_of(ticket_id), "escalated", reason, message, None)
                else:  # interrupted after the run had ended its ticket: what the ledger says
                    outcome = self.outcome_from_ledger(ticket_id)
            finally:
                heartbeat.drop(lease)  # with the lease, the target locks it holds (also those of the claim)
            outcome.runbook = row["runbook"]
            with self._cond:
                self._finished[ticket_id] = (time.monotonic(), outcome)
                self._expire_finished()
                self._cond.notify_all()
            return outcome
        finally:
            with self._cond:
                self._here.discard(ticket_id)
                self._cond.notify_all()

    def _run_claimed(
        self,
        row: Mapping[Any, Any],
        secrets: Mapping[str, Any],
        progress: Progress | None,
        lease: leases.Lease | None = None,
        prefetched: Prefetched | None = None,
        locked: set[str] | None = None,
    ) -> RunOutcome:
        """Run a claimed ticket's steps. *locked*: target lock keys the claim already took
        for this run (``execute``); when they cover every key the run needs, it does not
        ask again."""
        ticket_id, number = row["id"], tickets.number_of(row["id"])
        context_row = json.loads(row["run_context"] or "{}")
        actor = tickets.actor_of(row)
        meta = {
            "subject": row["subject"],
            "runbook": row["runbook"],
            "runbook_sha256": row["runbook_sha256"],
            "correlation_id": row["correlation_id"],
        }
        try:
            rb = self.catalogue.runbook(row["runbook"])
        except FirstlineError:
            rb = None
        if rb is None or rb.sha256 != row["runbook_sha256"]:
            self.log.warning("run.runbook_changed", ticket=number, runbook=row["runbook"])
            return self._escalate_claimed(ticket_id, actor, meta, "runbook_changed", RUNBOOK_CHANGED_MESSAGE)
        try:
            check_vetted(rb, read_lock(self.settings.runbooks_dir))
        except RunbookError:
            return self._escalate_claimed(ticket_id, actor, meta, "runbook_changed", RUNBOOK_CHANGED_MESSAGE)
        needed = set(context_row.get("secret_params") or ())
        if not needed <= set(secrets):
            self.log.warning("run.secrets_unavailable", ticket=number)
            return self._escalate_claimed(ticket_id, actor, meta, "secrets_unavailable", SECRETS_UNAVAILABLE_MESSAGE)
        try:
            values = self._values(rb, json.loads(row["params"]), secrets)
        except FirstlineError:
            self.log.exception("run.parameters_unusable", ticket=number)
            return self._escalate_claimed(ticket_id, actor, meta, "config_error", CONFIG_MESSAGE)
        scrub = Scrubber(values[p] for p in rb.secret_params if p in values)
        scrub.follow(self.secrets.values)  # connector credentials, also those resolved during the run
        for p in rb.secret_params:
            if isinstance(values.get(p), str):
                remember_secret(values[p], seconds=row["run_timeout_s"] or 3600)  # until the run's deadline
        context: dict[str, Any] = {
            "params": values,
            "requester": row["requester"],
            "channel": row["channel"],
            # how a notification says it was done: "agent" when someone acted for the requester
            # (the agent desk's one-click fixes come in on the portal or the API channel)
            "via": "agent" if actor.id != row["requester"] else row["channel"],
            "ticket": number,
            # security.md 36: notifications name where the request came from and link the portal
            # (the configured public URL only, never a request header).
            "client_ip": actor.client_ip or "",
            "portal_url": self.settings.public_base_url,
        }
        recorder = LedgerRecorder(
            self.engine,
            self.audit,
            ticket_id,
            number,
            actor,
            rb,
            row["correlation_id"],
            progress,
            retry_seconds=self.write_retry_seconds,
        )
        lease_s = self.settings.run_lease_seconds
        if lease is not None and lease.attempt > 1:  # re-queued by the sweep: number after the old rows
            recorder.seq = leases.last_step_seq(self.engine, ticket_id)
        fenced = leases.FencedRecorder(recorder, self.engine, lease, lease_s) if lease is not None else recorder
        # Per-target serialisation (runner.target_locks): after the claim, before the first step.
        keys = target_locks.target_keys(rb, values, lambda p: self._target_key(rb, values, p))
        owner = lease.owner if lease is not None else leases.new_owner()
        waited: list[int] = []
        busy = (
            None
            if lease is not None and locked and set(keys) <= locked
            else target_locks.serialise(
                self.engine,
                keys,
                ticket_id=ticket_id,
                owner=owner,
                lease_seconds=lease_s,
                wait=self.settings.target_wait_seconds,
                run_timeout_s=row["run_timeout_s"] or 3600,
                recorder=recorder,
                waited=waited,
            )
        )
        if busy is not None:
            other = busy.holder_number
            self.log.warning("run.target_busy", ticket=number, other=other, target=busy.key)
            message = target_locks.TARGET_BUSY_MESSAGE.format(
                other=other, what=target_locks.describe(busy.key), seconds=self.settings.target_wait_seconds
            )
            return self._escalate_claimed(ticket_id, actor, meta, "target_busy", message)
        if waited:
            twin = self._done_meanwhile(ticket_id, row, waited)
            if twin is not None:
                try:
                    return self._resolve_done_meanwhile(ticket_id, actor, meta, twin, keys)
                finally:
                    if lease is None:
                        target_locks.release(self.engine, owner)
        try:
            try:
                result = run_steps(
                    rb,
                    context,
                    self.pool,
                    fenced,
                    scrub,
                    default_timeout=self.settings.default_step_timeout,
                    watchdog=self.watchdog,
                    prefetched=prefetched,
                )
            except leases.LeaseLost:
                result = None
            except KeyboardInterrupt:
                # Ctrl-C / SIGTERM between steps (a step's own interrupt ends it inside the
                # engine): the steps that finished are written with the ticket's end below.
                self.log.warning("run.interrupted", ticket=number)
                result = RunResult(ok=False, reason="interrupted", message=INTERRUPTED_MESSAGE)
            except LedgerError:
                # A step's record could not be written, even after write_retrying's tries: the
                # database, not the configuration, stopped the run; a step may have changed
                # the target. Closed below if the database is back, else by the sweep (run_lost).
                self.log.exception("run.crashed", ticket=number)
                result = RunResult(ok=False, reason="ledger_unavailable", message=LEDGER_UNAVAILABLE_MESSAGE)
            except Exception as exc:
                self.log.exception("run.crashed", ticket=number)  # the detail (paths, settings) stays in the log
                msg = CONFIG_MESSAGE if isinstance(exc, FirstlineError) else "An internal error stopped the run."
                result = RunResult(
                    ok=False,
                    reason="internal_error" if not isinstance(exc, FirstlineError) else "config_error",
                    message=msg,
                )
            if result is None or (lease is not None and not leases.confirm(self.engine, lease, lease_s)):
                # The sweep took the run back (this process stalled past its lease): it is queued
                # or escalated now, so nothing more is done or closed here but recording the
                # steps that did finish.
                self.log.warning("run.lease_lost", ticket=number)
                recorder.flush()
                return self.outcome_from_ledger(ticket_id)
            return self._finish(ticket_id, number, rb, actor, meta, result, scrub, lease, recorder)
        finally:
            if keys and lease is None:  # with a lease, its release drops the locks too (execute)
                try:
                    target_locks.release(self.engine, owner)
                except LedgerError:
                    self.log.exception("run.locks_not_released", ticket=number)  # they expire with the lease

    def _values(self, rb: Runbook, stored: Mapping[str, Any], secrets: Mapping[str, Any]) -> dict[str, Any]:
        """The typed values ``prepare`` produced, rebuilt from the ticket: choice and directory
        keys resolved from the inventory again, secret values from *secrets*."""
        out: dict[str, Any] = {}
        for p in rb.model.parameters:
            if p.name not in stored:
                continue
            value = stored[p.name]
            if p.type == "secret":
                value = secrets.get(p.name)
            elif p.type == "choice" and value is not None:
                assert p.source is not None
                options = self.inventory.choices.get(p.source, {})
                if value not in options:
                    raise NotFoundError(
                        "choice '%(value)s' of %(source)s is no longer in the inventory", value=value, source=p.source
                    )
                value = {**options[value], "key": value}
            elif p.type == "directory" and value is not None:
                value = self.inventory.directories.get(value).as_param()
            out[p.name] = value
        return out

    def _done_meanwhile(self, ticket_id: int, row: Mapping[str, Any], waited: list[int]) -> int | None:
        with reading(self.engine) as conn:
            return target_locks.done_meanwhile(conn, ticket_id, row["runbook"], row["params"], waited)

    def _resolve_done_meanwhile(
        self, ticket_id: int, actor: Actor, meta: Mapping[str, Any], twin: int, keys: list[str]
    ) -> RunOutcome:
        """End a run whose twin (``target_locks.done_meanwhile``) resolved while it waited:
        resolved, resolution code ``duplicate``, no step run, naming the twin."""
        other = tickets.number_of(twin)
        what = target_locks.describe(keys[0]) if keys else "target"
        message = target_locks.DONE_MEANWHILE_MESSAGE.format(other=other, what=what)
        self.log.info("run.done_meanwhile", ticket=tickets.number_of(ticket_id), other=other)
        with transaction(self.engine) as conn:
            tickets.close_ticket(
                conn,
                self.audit,
                actor,
                ticket_id,
                state="resolved",
                resolution_code="duplicate",
                note=message,
                reason="duplicate",
                message=message,
                assignment_group=None,
                meta=meta,
                from_states=("running",),
            )
        return self.outcome_from_ledger(ticket_id)

    def _escalate_claimed(
        self, ticket_id: int, actor: Actor, meta: Mapping[str, Any], reason: str, message: str
    ) -> RunOutcome:
        self._end_unstarted(ticket_id, reason, message, actor, meta)
        return RunOutcome(tickets.number_of(ticket_id), "escalated", reason, message, None)

    def _end_unstarted(
        self,
        ticket_id: int,
        reason: str,
        message: str,
        actor: Actor | None,
        meta: Mapping[str, Any] | None = None,
        *,
        from_states: tuple[str, ...] | None = None,
        deadline_before: str | None = None,
    ) -> bool:
        """Escalate a ticket whose steps never ran (or whose run was lost); False if it was
        not in *from_states* (default: queued or running) or no longer past *deadline_before*."""
        with transaction(self.engine) as conn:
            return tickets.close_ticket(
                conn,
                self.audit,
                actor or Actor("firstline-runner", ("service",)),
                ticket_id,
                state="escalated",
                resolution_code=None,
                note=None,
                reason=reason,
                message=message,
                assignment_group=self.settings.escalation_group,
                meta=meta or {},
                from_states=from_states,
                deadline_before=deadline_before,
            )

    def _finish(
        self,
        ticket_id: int,
        number: str,
        rb: Runbook,
        actor: Actor,
        meta: Mapping[str, Any],
        result: RunResult,
        scrub: Scrubber,
        lease: leases.Lease | None = None,
        recorder: LedgerRecorder | None = None,
    ) -> RunOutcome:
        note = None
        note_i18n: dict[str, str] = {}
        if result.ok:
            ctx = dict(result.context)
            ctx["params"] = {k: (REDACTED if k in rb.secret_params else v) for k, v in ctx.get("params", {}).items()}
            try:
                note = scrub.message(str(render_value(rb.note, ctx)))
            except Exception:  # noqa: BLE001 - a note that fails to render must not undo a fix
                note = "Resolved by automation."
            for lang, template in rb.notes.items():  # the note in the runbook's other languages
                try:
                    note_i18n[lang] = scrub.message(str(render_value(template, ctx)))
                except Exception:  # noqa: BLE001 - the English note stands; a display falls back to it
                    self.log.warning("run.note_not_rendered", ticket=number, lang=lang)
            state, code, group, message = "resolved", rb.model.resolution.code, None, note
        elif result.requester_action:
            # The requester must try again: closed, neither resolved nor queued for second level.
            state, code, group = "closed", tickets.REQUESTER_ACTION_NEEDED, None
            message = result.message or "The request could not be done as asked."
            note = REQUESTER_GUIDANCE["en"]
        else:
            state, code, group = "escalated", None, rb.model.on_failure.escalate_to
            message = result.message or "The runbook could not finish."
        pending = recorder.pending() if recorder is not None else []
        run_key = self.run_key if result.secrets and self.seal_outputs else None

        def close(conn: Connection) -> None:
            for write in pending:  # the last steps' rows, before the state that ends them
                write(conn)
            tickets.close_ticket(
                conn,
                self.audit,
                actor,
                ticket_id,
                state=state,
                resolution_code=code,
                note=note,
                reason=result.reason,
                message=message,
                assignment_group=group,
                meta=meta,
                note_i18n=note_i18n,
            )
            if lease is not None:  # the run's lease and target locks end with its ticket
                leases.release_in(conn, lease)
            if run_key is not None:
                # Executed for another process: its once-only outputs wait there, sealed (runner.sealed).
                sealed.put(conn, run_key, ticket_id, sealed.OUTPUTS, result.secrets)

        try:
            write_retrying(self.engine, close, seconds=self.write_retry_seconds)
            if recorder is not None:
                recorder.written(len(pending))
        except LedgerError:
            self.log.exception("ticket.close_failed", ticket=number)  # sweep() escalates it later
            raise
        if lease is not None:
            lease.released = True
        self.log.info("run.finished", ticket=number, state=state, reason=result.reason)
        return RunOutcome(number, state, result.reason, message, note, result.steps, result.secrets)

    # -- following and waiting -------------------------------------------------------
    def follow(self, ticket_id: int, after_seq: int = 0) -> progress_mod.Progress:
        """Step rows changed after *after_seq* and the ticket's state (``runner.ledger.progress``);
        works from any process. ``NotFoundError`` for an unknown ticket."""
        found = progress_mod.events_after(self.engine, ticket_id, after_seq)
        if found is None:
            raise NotFoundError(tickets.NO_TICKET, number=tickets.number_of(ticket_id))
        return found

    def wait(
        self, ticket_id: int, timeout: float = 300.0, poll: float = 0.1, *, just_submitted: bool = False
    ) -> RunOutcome | None:
        """The outcome once the ticket is final (None if not within *timeout* seconds).

        *just_submitted*: the caller handed the run over a moment ago, so it is left to the
        watch at once, without a read of its own first (one query fewer per run; a run that
        ended already is seen at the watch's next tick).

        A run executed here wakes the waiter when it ends. One executed by another process
        (a Celery worker) is seen by reading its state: once at once, then by this process's
        ``FinalWatch``, which reads the states of every ticket waited for in one query per
        20 ms tick and wakes the waiters (each waiter polling on its own took about a quarter
        of a portal process's CPU in ``bench/burst.py``). *poll*: the longest a waiter sleeps
        between its own looks at what was seen (seconds).

        A run executed in this process gives its full outcome (with secret outputs such as
        a temporary password, handed over once); otherwise the outcome is read from the
        ledger (no secrets). A database that cannot be read for a moment (a PostgreSQL
        restart) is waited out within *timeout*: the run goes on meanwhile, and failing the
        waiting request would make its client send it again (tests/integration/scaleout/
        test_faults.py, PostgreSQL restart); at the end of *timeout* the waiter reads once
        more itself, so a lasting error reaches it. ``NotFoundError`` for an unknown ticket."""
        deadline = time.monotonic() + timeout
        watching = False
        if just_submitted:
            with self._cond:
                here = ticket_id in self._here or ticket_id in self._finished
            if not here:
                self._watch.add(ticket_id)
                watching = True
        try:
            while True:
                with self._cond:
                    kept = self._finished.pop(ticket_id, None)
                    if kept is not None:
                        return kept[1]
                    here = ticket_id in self._here
                if not here:
                    if watching:
                        seen = self._watch.seen(ticket_id)  # None: not final yet
                        found = self._final_outcome(ticket_id, seen) if seen is not None else None
                        if found is not None:
                            return found
                    else:
                        try:
                            found = self._final_outcome(ticket_id, progress_mod.state_of(self.engine, ticket_id))
                        except (LedgerError, SQLAlchemyError):
                            if time.monotonic() >= deadline:
                                raise
                            self.log.warning("run.wait_ledger_unavailable", ticket=tickets.number_of(ticket_id))
                        else:
                            if found is not None:
                                return found
                        self._watch.add(ticket_id)
                        watching = True
                left = deadline - time.monotonic()
                if left <= 0:
                    # One look of its own: a final state the watch has not read yet, or the error
                    # that kept it from reading (LedgerError / SQLAlchemyError) reaches the caller.
                    return self._final_outcome(ticket_id, progress_mod.state_of(self.engine, ticket_id))
                with self._cond:
                    if ticket_id not in self._finished and self._watch.seen(ticket_id) is None:
                        self._cond.wait(min(poll, left))
        finally:
            if watching:
                self._watch.discard(ticket_id)

    def _final_outcome(self, ticket_id: int, state: str | None) -> RunOutcome | None:
        """The outcome when *state* (read from the ledger, None = no such ticket) is final,
        preferring this process's own (with its once-only secrets); None while it is not."""
        if state is None or state == MISSING:
            raise NotFoundError(tickets.NO_TICKET, number=tickets.number_of(ticket_id))
        if state not in tickets.FINAL_STATES:
            return None
        with self._cond:
            kept = self._finished.pop(ticket_id, None)
            if kept is not None:
                return kept[1]
            if ticket_id in self._here:
                return None  # ending here right now: its own outcome follows
        return self.outcome_from_ledger(ticket_id)

    def outcome_from_ledger(self, ticket_id: int) -> RunOutcome:
        """The outcome as the ledger has it (steps from their rows; never any secret)."""
        with reading(self.engine) as conn:
            row = prepared.execute(conn, _OUTCOME_TICKET, {"b_id": ticket_id}).mappings().first()
            if row is None:
                raise NotFoundError(tickets.NO_TICKET, number=tickets.number_of(ticket_id))
            steps = [
                StepRecord(
                    s["step_id"],
                    s["connector"],
                    s["action"],
                    s["target"],
                    s["status"],
                    json.loads(s["inputs"] or "{}"),
                    json.loads(s["outputs"] or "{}"),
                    s["reason"],
                    s["message"] or "",
                    s["attempts"],
                    s["started_at"],
                    s["finished_at"] or "",
                )
                for s in prepared.execute(conn, _OUTCOME_STEPS, {"b_id": ticket_id}).mappings()
            ]
        return RunOutcome(
            tickets.number_of(ticket_id),
            row["state"],
            row["reason"],
            row["message"] or "",
            row["resolution_note"],
            steps,
            runbook=row["runbook"],
        )

    def _expire_finished(self) -> None:
        limit = time.monotonic() - FINISHED_KEEP_S
        while self._finished:
            first = next(iter(self._finished))
            if self._finished[first][0] >= limit and len(self._finished) <= 10_000:
                break
            del self._finished[first]

    # -- sweeping --------------------------------------------------------------------
    def sweep(self, *, actor_id: str | None = None) -> list[str]:
        """Escalate queued (``never_started``) and running (``run_lost``) tickets whose
        deadline passed; then recover running tickets whose lease expired (their worker
        died; ``runner.leases.recover``): re-queued and dispatched again when no
        state-changing step had started, else escalated ``run_lost``. Final tickets
        (resolved, escalated, closed) are never touched. *actor_id*: the person who started
        the sweep (CLI: the OS user); None for the scheduled sweeper (``system:sweeper``).
        Returns the ticket numbers escalated."""
        actor = (
            Actor(principal(actor_id, what="the acting person"), ("operator",))
            if actor_id is not None
            else leases.SWEEPER
        )
        done = []
        for ticket_id, state in tickets.stale_tickets(self.engine):
            never = state == "queued"
            # Only from the state seen and while still past the deadline: a run claimed
            # meanwhile (new state, renewed deadline) is left alone.
            if self._end_unstarted(
                ticket_id,
                "never_started" if never else "run_lost",
                NEVER_STARTED_MESSAGE if never else RUN_LOST_MESSAGE,
                actor,
                from_states=(state,),
                deadline_before=now(),
            ):
                self._forget_run(ticket_id)
                done.append(tickets.number_of(ticket_id))
        # Runs whose worker died (lease expired; runner.leases): re-queued where safe, else escalated.
        found = leases.recover(
            self.engine,
            self.audit,
            self.connectors,
            actor=actor,
            max_attempts=self.settings.run_max_attempts,
            start_within=float(getattr(self.settings, "run_start_within", 600.0)),
            escalation_group=self.settings.escalation_group,
        )
        for ticket_id in found.escalated:
            self._forget_run(ticket_id)
            done.append(tickets.number_of(ticket_id))
        for ticket_id in found.requeued:
            self._redispatch(ticket_id)
        self._republish_lost()
        leases.tidy(self.engine)
        # Sealed values nobody can use any more (runner.sealed): past their time to live.
        sealed.purge(self.engine, float(getattr(self.settings, "run_start_within", 600.0)))
        self.audit.sync_file(self.engine)  # checkpoint lines a process that died after its commit left out
        return done

    def _republish_lost(self) -> None:
        """Hand the broker again the tickets whose message it lost (a Redis that keeps nothing
        on disk was restarted): tickets still ``queued`` after ``republish_after`` seconds
        while the broker's queues hold no message at all, so theirs cannot be waiting there.
        Each is re-published at most once every two ``republish_after``; a duplicate message is
        harmless (the claim is atomic: the second does nothing). Only for a broker
        dispatcher; a broker that cannot be asked is left alone (the ``never_started`` rule
        ends those tickets when ``run_start_within`` passes)."""
        dispatcher = self.dispatcher
        waiting = getattr(dispatcher, "waiting", None)
        if dispatcher is None or not getattr(dispatcher, "out_of_process", False) or waiting is None:
            return
        after = self.republish_after
        before = (datetime.now(UTC) - timedelta(seconds=after)).isoformat(timespec="microseconds")
        candidates = tickets.queued_before(self.engine, before)
        clock = time.monotonic()
        self._republished = {t: at for t, at in self._republished.items() if clock - at < 2 * after}
        due = [t for t in candidates if t not in self._republished]
        if not due or waiting() != 0:
            return
        for ticket_id in due:
            self._republished[ticket_id] = clock
            self.log.warning("run.republished", ticket=tickets.number_of(ticket_id))
            self._redispatch(ticket_id)

    @property
    def write_retry_seconds(self) -> float:
        """How long a run's step and closing writes are tried again while the database is
        unreachable: half the run lease (the heartbeat renews it once the database is back),
        at most 15 s."""
        return min(float(self.settings.run_lease_seconds) / 2, 15.0)

    @property
    def republish_after(self) -> float:
        """Seconds a ticket may stay ``queued`` with an empty broker before it is re-published:
        twice the sweep interval, at least 5."""
        return max(2.0 * float(getattr(self.settings, "sweep_interval", 60.0)), 5.0)

    def _redispatch(self, ticket_id: int) -> None:
        """Hand a ticket the sweep re-queued to the dispatcher again (none configured, e.g.
        ``firstline tickets sweep``: run it here). A dispatcher that refuses leaves it queued
        for the ``never_started`` rule."""
        dispatcher = self.dispatcher or InlineDispatcher(self.execute)
        try:
            with dispatcher.reserve() as send:
                send(ticket_id)
        except Exception:
            self.log.exception("run.not_redispatched", ticket=tickets.number_of(ticket_id))

    def start_sweeper(self, interval: float | None = None) -> Sweeper:
        """Run ``sweep()`` every *interval* seconds (default ``settings.sweep_interval`` or 60),
        at most ``settings.run_lease_seconds`` apart so a dead worker's run is found within
        about two leases, in a daemon thread; call ``stop()`` on the result at shutdown."""
        every = interval if interval is not None else float(getattr(self.settings, "sweep_interval", 60.0))
        return Sweeper(self, min(every, float(self.settings.run_lease_seconds)))

    # -- dry run ---------------------------------------------------------------------
    def plan(
        self,
        name: str,
        raw: Mapping[str, Any],
        *,
        requester: str,
        roles: frozenset[str] | set[str],
        channel: str = "cli",
        actor_id: str | None = None,
        proof: str | None = PROOF_OPERATOR,
    ) -> list[PlannedStep]:
        """Dry run: the rendered steps, touching nothing. Later steps' outputs are unknown.
        *requester* and *actor_id* are validated as in ``submit`` (``ParameterError``)."""
        actor = actor_for(requester, actor_id, roles)
        rb, values = self.prepare(name, raw, actor, requester, channel, proof)
        shown = {k: (REDACTED if k in rb.secret_params else v) for k, v in values.items()}
        out = []
        for step in [*rb.steps, *([rb.verify] if rb.verify else [])]:
            base = {
                "params": shown,
                "requester": requester,
                "channel": channel,
                "via": "agent" if actor.id != requester else channel,  # as execute sets it
                "ticket": "FL-(new)",
                "client_ip": "",
                "portal_url": self.settings.public_base_url,
            }
            # A condition that the parameters alone decide is decided here: a step that will not
            # run is not listed (a Linux host's plan showed the Windows steps), one that will is
            # listed without its condition; one that needs an earlier step's outputs keeps it.
            decided = _decided(step.when, base)
            if decided is False:
                continue
            ctx = _Lenient({**base, "steps": _Unknown()})
            inputs = {k: _preview(v, ctx) for k, v in step.inputs.items()}
            target = (
                _preview(step.target, ctx) if step.target is not None else self.pool.default_target(step.spec.connector)
            )
            out.append(
                PlannedStep(
                    step.id,
                    step.spec.connector,
                    step.spec.action,
                    str(target),
                    {k: (REDACTED if k in step.action.secret_inputs else v) for k, v in inputs.items()},
                    None if decided is True else step.spec.when,
                )
            )
        return out

    # -- the CLI's way: submit and execute in the caller's thread --------------------
    def run_inline(
        self,
        name: str,
        raw: Mapping[str, Any],
        *,
        requester: str,
        roles: frozenset[str] | set[str],
        channel: str,
        actor_id: str | None = None,
        client_ip: str | None = None,
        user_agent: str | None = None,
        progress: Progress | None = None,
        work_note: str | None = None,
        proof: str | None = None,
    ) -> RunOutcome:
        """``submit`` with an ``InlineDispatcher``: returns once the run is final, with its
        outcome (progress events ``ticket.opened``, ``step.started``, ``step.finished``).
        *proof* as in ``submit``."""
        progress = shielded(progress, self.log)  # one display for the whole run: broken once, off
        inline = InlineDispatcher(lambda tid: self.execute(tid, progress=progress))
        submitted = self.submit(
            name,
            raw,
            requester=requester,
            roles=roles,
            channel=channel,
            actor_id=actor_id,
            client_ip=client_ip,
            user_agent=user_agent,
            dispatcher=inline,
            progress=progress,
            work_note=work_note,
            proof=proof,
        )
        outcome = inline.results.get(submitted.ticket_id)
        with self._cond:
            self._finished.pop(submitted.ticket_id, None)
        return outcome if outcome is not None else self.outcome_from_ledger(submitted.ticket_id)


class _Unknown:
    """Stands in for step outputs during a dry run."""

    def __getattr__(self, name: str) -> _Unknown:
        return self

    def __getitem__(self, name: str) -> _Unknown:
        return self

    def __str__(self) -> str:
        return "<from earlier step>"

    def __bool__(self) -> bool:
        return True


class _Lenient(dict[str, Any]):
    pass


class _NeedsSteps(Exception):
    """A dry run's condition asked for an earlier step's outputs: it cannot be decided yet."""


class _Undecided:
    """``steps`` while a dry run decides a condition: any use of it is ``_NeedsSteps``."""

    def __getattr__(self, name: str) -> Any:
        raise _NeedsSteps(name)

    def __getitem__(self, name: str) -> Any:
        raise _NeedsSteps(name)


def _decided(when: Any, base: Mapping[str, Any]) -> bool | None:
    """The value of the step condition *when* (a compiled template, or None: always) from the
    parameters alone; None when it needs an earlier step's outputs or cannot be rendered."""
    if when is None:
        return True
    try:
        return truthy(when.render({**base, "steps": _Undecided()}))
    except Exception:  # noqa: BLE001 - undecided: the plan shows the condition instead
        return None


def _preview(value: Any, ctx: Mapping[str, Any]) -> Any:
    try:
        return render_value(value, ctx)
    except Exception:  # noqa: BLE001 - a preview shows what it can
        return "<from earlier step>"
