"""``Firstline``: the one service the CLI, the portal and the worker call.

request → policy + vetting + parameters → ticket (in_progress) → engine → ticket
resolved | escalated. A ticket never stays in progress: every failure path escalates,
and ``sweep()`` escalates tickets whose run died (worker killed, power loss).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.base import Connector
from connectors.registry import registry
from runner import params as params_mod
from runner.engine import CONFIG_MESSAGE, RunResult, StepRecord, execute
from runner.errors import FirstlineError, LedgerError, NotFoundError, ParameterError, PolicyDenied, RunbookError
from runner.inventory import Inventory, load_inventory
from runner.ledger import audit as audit_mod
from runner.ledger import tickets
from runner.ledger.audit import Actor, AuditLog
from runner.ledger.store import make_engine, transaction, upgrade
from runner.oplog import get_logger, remember_secret
from runner.pool import Pool
from runner.redaction import REDACTED, Scrubber
from runner.runbook import CompiledStep, Runbook, load_all, load_runbook
from runner.safetext import free_text, principal
from runner.secrets import SecretStore
from runner.settings import Settings
from runner.templating import render_value
from runner.timeparse import parse_instant
from runner.vetting import check_vetted, read_lock, write_approval
from runner.watchdog import Watchdog

CHANNELS = ("portal", "api", "cli", "worker")
Progress = Callable[[str, Mapping[str, Any]], None]
# Shown with a ticket closed as ``requester_action_needed`` (the message above it says what was wrong).
REQUESTER_GUIDANCE = {
    "en": "You can fix this yourself: correct what the message says and try again. "
    "This ticket is closed; the service desk will not act on it.",
    "nl": "Dit kunt u zelf oplossen: pas aan wat de melding zegt en probeer het opnieuw. "
    "Dit ticket is gesloten; de servicedesk onderneemt er niets mee.",
}


def _actor(
    requester: str,
    actor_id: str | None,
    roles: frozenset[str] | set[str],
    client_ip: str | None = None,
    user_agent: str | None = None,
) -> Actor:
    """Who acts (*actor_id*, or the requester acting for themself) on whose behalf (the
    requester). Both are validated as account names; ``ParameterError`` otherwise."""
    principal(requester, what="the requester (--as)")
    if actor_id is not None:
        principal(actor_id, what="the acting person")
    return Actor(
        actor_id or requester,
        tuple(sorted(roles)),
        on_behalf_of=requester,
        client_ip=client_ip,
        user_agent=user_agent,
    )


def _refused_actor(
    requester: str,
    actor_id: str | None,
    roles: frozenset[str] | set[str],
    client_ip: str | None,
    user_agent: str | None,
) -> Actor:
    """The actor of a ``run.refused`` event: never an invalid id (those are what was refused)."""
    try:
        return _actor(requester, actor_id, roles, client_ip, user_agent)
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
class PlannedStep:
    id: str
    connector: str
    action: str
    target: str | None
    inputs: dict[str, Any]
    condition: str | None


class _LedgerRecorder:
    def __init__(
        self,
        app: Firstline,
        ticket_id: int,
        number: str,
        actor: Actor,
        runbook: Runbook,
        correlation_id: str,
        progress: Progress | None,
    ) -> None:
        self.app, self.ticket_id, self.number, self.actor = app, ticket_id, number, actor
        self.runbook, self.correlation_id, self.progress, self.seq = runbook, correlation_id, progress, 0
        self.titles: dict[str, dict[str, str]] = {}

    def step_started(self, step: CompiledStep, target: str | None) -> None:
        title_text = getattr(step.spec, "title", None)
        if title_text is not None:
            self.titles[step.id] = {"en": title_text.en, "nl": title_text.get("nl")}
        elif step.id == "verify":
            self.titles[step.id] = {"en": "Check the result", "nl": "Resultaat controleren"}
        else:
            self.titles[step.id] = {"en": step.id, "nl": step.id}
        if self.progress is not None:
            self.progress("step.started", {"step": step.id, "title": self.titles[step.id], "target": target})

    def step_finished(self, record: StepRecord) -> None:
        self.seq += 1
        with transaction(self.app.engine) as conn:
            tickets.record_step(conn, self.ticket_id, self.seq, record.row())
            if record.changes_state and record.status == "ok":
                # changed False: the action found nothing to do; recorded as such, never as a change.
                self.app.audit.append(
                    conn,
                    self.actor,
                    f"{record.connector}.{record.action}",
                    outcome="success" if record.changed is not False else "no_change",
                    target=f"{record.target}:{record.inputs.get('user') or record.inputs.get('queue') or ''}".rstrip(
                        ":"
                    ),
                    ticket=self.number,
                    runbook=self.runbook.name,
                    runbook_sha256=self.runbook.sha256,
                    correlation_id=self.correlation_id,
                    detail={
                        "step": record.step_id,
                        "inputs": record.inputs,
                        "changed": record.changed is not False,
                        "changed_reported": record.changed_reported,
                    },
                )
        if self.progress is not None:
            self.progress(
                "step.finished",
                {
                    "step": record.step_id,
                    "title": self.titles.get(record.step_id, {"en": record.step_id, "nl": record.step_id}),
                    "status": record.status,
                    "message": record.message,
                    "reason": record.reason,
                    "changed": record.changed,
                },
            )


class Firstline:
    """The application service. Safe to share between threads."""

    def __init__(self, settings: Settings, connectors: Mapping[str, type[Connector]] | None = None) -> None:
        self.settings = settings
        self.connectors = dict(registry() if connectors is None else connectors)
        self.engine = make_engine(settings.database_url)
        upgrade(self.engine)
        checkpoint_file = settings.audit_key_file.parent / "audit-checkpoints.jsonl"
        self.audit = AuditLog(settings.audit_secret(), settings.checkpoint_every, checkpoint_file)
        self.audit.ensure_head(self.engine)
        self._inventory: Inventory | None = None
        # Every credential this store resolves is masked in the log and in every run's records.
        self.secrets = SecretStore(settings.inventory.parent)
        self._pool: Pool | None = None
        self._cache: dict[Path, Runbook] = {}
        self._lock = threading.Lock()
        self.log = get_logger()
        self.watchdog = Watchdog(grace=settings.watchdog_grace)

    # -- inventory and runbooks -------------------------------------------------------
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

    def runbook(self, name: str) -> Runbook:
        """Load *name* from disk (cached by content hash, so edits are seen at once)."""
        if not name or "/" in name or name.startswith(".") or len(name) > 64:
            raise NotFoundError(f"'{name[:64]}' is not a runbook name")
        path = self.settings.runbooks_dir / f"{name}.yaml"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            known = ", ".join(sorted(p.stem for p in self.settings.runbooks_dir.glob("*.yaml")))
            raise NotFoundError(f"no runbook named '{name}'; available: {known}") from None
        cached = self._cache.get(path)
        if cached is not None and cached.sha256 == hashlib.sha256(data).hexdigest():
            return cached
        rb = load_runbook(path, self.connectors)
        self._cache[path] = rb
        return rb

    def check_runbooks(self) -> list[str]:
        """Lint every runbook and its vetting; return ``file:line: problem`` lines."""
        books, problems = load_all(self.settings.runbooks_dir, self.connectors)
        approvals = read_lock(self.settings.runbooks_dir)
        for rb in books.values():
            try:
                check_vetted(rb, approvals)
            except RunbookError as exc:
                problems.extend(exc.problems)
        for name in sorted(set(approvals) - {p.stem for p in self.settings.runbooks_dir.glob("*.yaml")}):
            problems.append(
                f"{self.settings.runbooks_dir / 'vetted.lock'}:1: approval for '{name}' has no runbook file"
            )
        # The runbooks need a valid inventory: every problem of it, then each runbook against it.
        from runner.inventory_check import check_inventory, runbook_problems

        report = check_inventory(self.settings.inventory, self.connectors)
        problems.extend(f"{self.settings.inventory}: {p}" for p in report.problems)
        if not report.problems:
            problems.extend(
                f"{self.settings.inventory}: {p}"
                for p in runbook_problems(books, load_inventory(self.settings.inventory, self.connectors))
            )
        return problems

    def vet(self, name: str, by: str, *, actor_id: str | None = None) -> str:
        """Approve *name*'s current content. *by*: who reviewed and approves (free text such
        as ``Ada (CAB 2026-11-27)``, no control/format/bidi characters, up to 128);
        *actor_id*: who records it (CLI: the OS user), an account name. The audit event's
        actor is *actor_id* (else *by*), ``detail.approved_by`` is *by*."""
        try:
            by = free_text(by, what="--by (the person approving)")
        except FirstlineError as exc:
            raise PolicyDenied(f"{exc}; name the person approving in plain text") from None
        if actor_id is not None:
            principal(actor_id, what="the acting person")
        rb = self.runbook(name)  # must load cleanly: a broken runbook cannot be vetted
        approval = write_approval(self.settings.runbooks_dir, rb, by)
        with transaction(self.engine) as conn:
            self.audit.append(
                conn,
                Actor(actor_id or by, ("admin",)),
                "runbook.vetted",
                outcome="success",
                target=name,
                runbook=name,
                runbook_sha256=rb.sha256,
                detail={"approved_at": approval.approved_at, "approved_by": by},
            )
        return rb.sha256

    # -- running ---------------------------------------------------------------------
    def _prepare(
        self, name: str, raw: Mapping[str, Any], actor: Actor, requester: str, channel: str
    ) -> tuple[Runbook, dict[str, Any]]:
        if channel not in CHANNELS:
            raise PolicyDenied(f"unknown channel '{channel[:16]}'")
        roles = frozenset(actor.roles)
        rb = self.runbook(name)
        check_vetted(rb, read_lock(self.settings.runbooks_dir))
        _ = self.inventory  # a broken inventory refuses the run before a ticket opens (ConfigError, exit 2)
        audience = set(rb.model.audience)
        if "agent" in roles or "admin" in roles:
            if "agent" not in audience and "self_service" not in audience:
                raise PolicyDenied(f"runbook '{name}' is not available to agents")
        elif "self_service" not in audience:
            raise PolicyDenied(f"runbook '{name}' is not available for self-service; ask the service desk")
        values = params_mod.validate(
            rb, raw, requester=requester, roles=roles, channel=channel, inventory=self._inventory_or_none(rb)
        )
        return rb, values

    def _inventory_or_none(self, rb: Runbook) -> Inventory | None:
        needs = any(p.type in ("choice", "directory") for p in rb.model.parameters)
        return self.inventory if needs else None

    def plan(
        self,
        name: str,
        raw: Mapping[str, Any],
        *,
        requester: str,
        roles: frozenset[str] | set[str],
        channel: str = "cli",
        actor_id: str | None = None,
    ) -> list[PlannedStep]:
        """Dry run: the rendered steps, touching nothing. Later steps' outputs are unknown.
        *requester* and *actor_id* are validated as in ``run`` (``ParameterError``)."""
        actor = _actor(requester, actor_id, roles)
        rb, values = self._prepare(name, raw, actor, requester, channel)
        shown = {k: (REDACTED if k in rb.secret_params else v) for k, v in values.items()}
        out = []
        for step in [*rb.steps, *([rb.verify] if rb.verify else [])]:
            ctx = _Lenient(
                {"params": shown, "requester": requester, "channel": channel, "ticket": "FL-(new)", "steps": _Unknown()}
            )
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
                    step.spec.when,
                )
            )
        return out

    def run(
        self,
        name: str,
        raw: Mapping[str, Any],
        *,
        requester: str,
        roles: frozenset[str] | set[str] = frozenset({"agent"}),
        channel: str = "cli",
        actor_id: str | None = None,
        client_ip: str | None = None,
        user_agent: str | None = None,
        progress: Progress | None = None,
    ) -> RunOutcome:
        """Request and execute a run; always returns an outcome once a ticket opened.

        *requester*: on whose behalf (the account whose problem this is). *actor_id*: who
        acts — the person at the keyboard (CLI: the OS user) or the signed-in agent; None
        means the requester acts for themself. Both must be account names
        (``runner.safetext.principal``); ``ParameterError`` otherwise, before any ticket.
        The ticket records both (``opened_by``, ``requester``), every audit event carries
        ``actor`` and ``on_behalf_of``.
        """
        try:
            actor = _actor(requester, actor_id, roles, client_ip, user_agent)
            rb, values = self._prepare(name, raw, actor, requester, channel)
        except FirstlineError as exc:
            self._audit_refusal(_refused_actor(requester, actor_id, roles, client_ip, user_agent), name, exc)
            raise
        scrub = Scrubber(values[p] for p in rb.secret_params if p in values)
        scrub.follow(self.secrets.values)  # connector credentials, also those resolved during the run
        for p in rb.secret_params:
            if isinstance(values.get(p), str):
                remember_secret(values[p])
        correlation_id = str(uuid.uuid4())
        stored_params = {
            k: (REDACTED if k in rb.secret_params else (v["key"] if isinstance(v, dict) else v))
            for k, v in values.items()
        }
        subject = next(
            (str(values[p.name]) for p in rb.model.parameters if p.type == "account" and p.name in values), requester
        )
        timeout = (
            sum(
                (s.spec.timeout or self.settings.default_step_timeout) * (1 + getattr(s.spec, "retries", 0))
                for s in [*rb.steps, *([rb.verify] if rb.verify else [])]
            )
            + 60
        )
        with transaction(self.engine) as conn:
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
                    correlation_id=correlation_id,
                    timeout_s=timeout,
                    directory=values[rb.directory_param]["key"] if rb.directory_param else None,
                    opened_by=actor.id,
                ),
            )
        if progress is not None:
            progress("ticket.opened", {"ticket": number})
        context: dict[str, Any] = {"params": values, "requester": requester, "channel": channel, "ticket": number}
        recorder = _LedgerRecorder(self, ticket_id, number, actor, rb, correlation_id, progress)
        try:
            result = execute(
                rb,
                context,
                self.pool,
                recorder,
                scrub,
                default_timeout=self.settings.default_step_timeout,
                watchdog=self.watchdog,
            )
        except Exception as exc:
            self.log.exception("run.crashed", ticket=number)  # the detail (paths, settings) stays in the log
            msg = CONFIG_MESSAGE if isinstance(exc, FirstlineError) else "An internal error stopped the run."
            result = RunResult(
                ok=False,
                reason="internal_error" if not isinstance(exc, FirstlineError) else "config_error",
                message=msg,
                steps=list(getattr(recorder, "steps", [])),
            )
        return self._finish(ticket_id, number, rb, actor, correlation_id, subject, result, scrub)

    def _finish(
        self,
        ticket_id: int,
        number: str,
        rb: Runbook,
        actor: Actor,
        correlation_id: str,
        subject: str,
        result: RunResult,
        scrub: Scrubber,
    ) -> RunOutcome:
        meta = {"subject": subject, "runbook": rb.name, "runbook_sha256": rb.sha256, "correlation_id": correlation_id}
        note = None
        if result.ok:
            ctx = dict(result.context)
            ctx["params"] = {k: (REDACTED if k in rb.secret_params else v) for k, v in ctx.get("params", {}).items()}
            try:
                note = scrub.text(str(render_value(rb.note, ctx)))
            except Exception:  # noqa: BLE001 - a note that fails to render must not undo a fix
                note = "Resolved by automation."
            state, code, group, message = "resolved", rb.model.resolution.code, None, note
        elif result.requester_action:
            # The requester must try again: closed, neither resolved nor queued for second level.
            state, code, group = "closed", tickets.REQUESTER_ACTION_NEEDED, None
            message = result.message or "The request could not be done as asked."
            note = REQUESTER_GUIDANCE["en"]
        else:
            state, code, group = "escalated", None, rb.model.on_failure.escalate_to
            message = result.message or "The runbook could not finish."
        try:
            with transaction(self.engine) as conn:
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
                )
        except LedgerError:
            self.log.exception("ticket.close_failed", ticket=number)  # sweep() escalates it later
            raise
        self.log.info("run.finished", ticket=number, state=state, reason=result.reason)
        return RunOutcome(number, state, result.reason, message, note, result.steps, result.secrets)

    def _audit_refusal(self, actor: Actor, name: str, exc: FirstlineError) -> None:
        outcome = "denied" if isinstance(exc, PolicyDenied | RunbookError) else "failure"
        try:
            with transaction(self.engine) as conn:
                self.audit.append(
                    conn,
                    actor,
                    "run.refused",
                    outcome=outcome,
                    target=name[:64],
                    reason=type(exc).__name__,
                    detail={"message": str(exc)[:500]},
                )
        except LedgerError:
            self.log.exception("audit.refusal_not_recorded")

    def sweep(self, *, actor_id: str | None = None) -> list[str]:
        """Escalate tickets still in progress past their deadline (their run died); final
        tickets (resolved, escalated, closed) are never touched. *actor_id*: the person who
        started the sweep (CLI: the OS user); None for the scheduled sweeper service."""
        actor = (
            Actor(principal(actor_id, what="the acting person"), ("operator",))
            if actor_id is not None
            else Actor("firstline-sweeper", ("service",))
        )
        done = []
        for ticket_id in tickets.stale_ticket_ids(self.engine):
            with transaction(self.engine) as conn:
                if tickets.close_ticket(
                    conn,
                    self.audit,
                    actor,
                    ticket_id,
                    state="escalated",
                    resolution_code=None,
                    note=None,
                    reason="run_lost",
                    message="The run stopped before it finished (worker lost); "
                    "second level must check the target's state.",
                    assignment_group=self.settings.escalation_group,
                    meta={},
                ):
                    done.append(tickets.number_of(ticket_id))
        return done

    # -- reading ---------------------------------------------------------------------
    def list_tickets(
        self, *, since: datetime | str | None = None, until: datetime | str | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        """Newest tickets; *since* (inclusive) / *until* (exclusive) bound ``opened_at`` — aware
        datetimes or text for ``runner.timeparse.parse_instant`` (no offset = UTC)."""
        return tickets.list_tickets(self.engine, since=_when(since, "since"), until=_when(until, "until"), **kw)

    def ticket(self, number: str) -> dict[str, Any]:
        if not number.startswith("FL-") or not number[3:].isdigit() or len(number) > 12:
            raise NotFoundError(f"'{number[:20]}' is not a ticket number (they look like FL-000123)")
        return tickets.get_ticket(self.engine, number)

    def verify_audit(self) -> audit_mod.VerifyReport:
        return audit_mod.verify(self.engine, self.audit.key, self.audit.checkpoint_file)

    def export_audit(
        self, fmt: str, since: datetime | str | None = None, until: datetime | str | None = None
    ) -> Iterator[str]:
        """Audit events as JSON Lines or CSV; *since* inclusive, *until* exclusive (see ``list_tickets``)."""
        return audit_mod.export(self.engine, fmt, _when(since, "since"), _when(until, "until"))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self.engine.dispose()


def _when(value: datetime | str | None, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ParameterError(f"{what} must carry a timezone (use UTC)")
        return value
    return parse_instant(value, what=what)


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


def _preview(value: Any, ctx: Mapping[str, Any]) -> Any:
    try:
        return render_value(value, ctx)
    except Exception:  # noqa: BLE001 - a preview shows what it can
        return "<from earlier step>"
