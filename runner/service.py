"""``Firstline``: the facade the CLI, the portal and the tests call (compatibility layer).

The work is split along its concerns; this class wires them over one database:

* ``runner.catalogue.Catalogue`` — load, list, lint and vet runbooks (``self.catalogue``);
* ``runner.runs.RunService`` — submit → ``queued`` ticket → dispatcher → ``execute``,
  follow, wait, sweep (``self.runs``; docs/architecture.md "The run seam");
* ``runner.queries`` / ``runner.ledger`` — typed ticket and audit reading.

``run()`` keeps the spine's behaviour: submit with an ``InlineDispatcher`` and return the
outcome once the run is final (what ``firstline run`` does). Building a ``Firstline``
migrates the database only on the embedded default (SQLite, or the ``dev`` / ``test``
environments) or with ``migrate=True``; a production server database must already be
current (``firstline db upgrade``) or ``LedgerError`` says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from connectors.base import Connector
from connectors.registry import registry
from runner.catalogue import Catalogue
from runner.dispatch import Dispatcher
from runner.errors import ParameterError
from runner.inventory import Inventory
from runner.ledger import audit as audit_mod
from runner.ledger import tickets
from runner.ledger.audit import AuditLog
from runner.ledger.progress import Progress as RunProgress
from runner.ledger.store import ensure_schema, make_engine
from runner.oplog import get_logger
from runner.pool import Pool
from runner.recorder import Progress
from runner.runbook import Runbook
from runner.runs import (
    CHANNELS,
    PROOF_OPERATOR,
    REQUESTER_GUIDANCE,
    PlannedStep,
    RunOutcome,
    RunService,
    Submitted,
)
from runner.secrets import SecretStore
from runner.settings import Settings
from runner.ticketnumber import canonical
from runner.timeparse import parse_instant
from runner.watchdog import Watchdog

__all__ = [
    "CHANNELS",
    "REQUESTER_GUIDANCE",
    "Firstline",
    "PlannedStep",
    "Progress",
    "RunOutcome",
    "Submitted",
]


class Firstline:
    """The application service. Safe to share between threads.

    *migrate*: bring the schema to the newest revision while opening. None (default):
    only on the embedded default — a SQLite database, or the ``dev`` / ``test``
    environments; a server database (PostgreSQL) in ``prod`` must be upgraded with
    ``firstline db upgrade``, and a schema that is not current raises ``LedgerError``
    naming that command.
    """

    def __init__(
        self,
        settings: Settings,
        connectors: Mapping[str, type[Connector]] | None = None,
        *,
        migrate: bool | None = None,
    ) -> None:
        self.settings = settings
        self.connectors: Mapping[str, type[Connector]] = registry() if connectors is None else dict(connectors)
        self.engine = make_engine(settings.database_url, settings)
        if migrate is None:  # the embedded default migrates itself; a server database is upgraded explicitly
            migrate = settings.environment in ("dev", "test") or settings.sqlite_path is not None
        ensure_schema(self.engine, migrate=migrate)
        checkpoint_file = settings.audit_key_file.parent / "audit-checkpoints.jsonl"
        self.audit = AuditLog(settings.audit_secret(), settings.checkpoint_every, checkpoint_file)
        self.audit.ensure_head(self.engine)
        # Every credential this store resolves is masked in the log and in every run's records.
        self.secrets = SecretStore(settings.inventory.parent)
        self.log = get_logger()
        self.watchdog = Watchdog(grace=settings.watchdog_grace)
        self.catalogue = Catalogue(settings, self.connectors)
        self.runs = RunService(
            settings,
            self.engine,
            self.audit,
            self.catalogue,
            self.connectors,
            secrets=self.secrets,
            watchdog=self.watchdog,
        )

    # -- inventory and runbooks -------------------------------------------------------
    @property
    def inventory(self) -> Inventory:
        return self.runs.inventory

    @property
    def pool(self) -> Pool:
        return self.runs.pool

    def runbook(self, name: str) -> Runbook:
        """Load *name* from disk (cached by content hash, so edits are seen at once)."""
        return self.catalogue.runbook(name)

    def check_runbooks(self) -> list[str]:
        """Lint every runbook, its vetting and the inventory; return ``file:line: problem`` lines."""
        return self.catalogue.check()

    def vet(self, name: str, by: str, *, actor_id: str | None = None) -> str:
        """Approve *name*'s current content (``Catalogue.vet``); returns its SHA-256."""
        return self.catalogue.vet(self.engine, self.audit, name, by, actor_id=actor_id)

    # -- running ---------------------------------------------------------------------
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
        """Dry run: the rendered steps, touching nothing (``RunService.plan``); *proof* as in ``run``."""
        return self.runs.plan(
            name, raw, requester=requester, roles=roles, channel=channel, actor_id=actor_id, proof=proof
        )

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
        work_note: str | None = None,
        proof: str | None = PROOF_OPERATOR,
    ) -> RunOutcome:
        """Request and execute a run in this thread; always returns an outcome once a ticket opened.

        Submit (ticket ``queued``) and execute inline (``RunService.run_inline``).
        *requester*: on whose behalf (the account whose problem this is). *actor_id*: who
        acts — the person at the keyboard (CLI: the OS user) or the signed-in agent; None
        means the requester acts for themself. Both must be account names
        (``runner.safetext.principal``); ``ParameterError`` otherwise, before any ticket.
        The ticket records both (``opened_by``, ``requester``), every audit event carries
        ``actor`` and ``on_behalf_of``. *work_note*: the agent's reason for the run (already
        checked by ``runner.agent.work_note``), kept on the ticket and in ``ticket.opened``.
        *proof* (``runner.runs.PROOFS``): this in-process entry point is an operator's (the
        CLI passes ``operator`` explicitly); pass None to apply a signed-in session's rules
        (``RunService.account_rules``).
        """
        return self.runs.run_inline(
            name,
            raw,
            requester=requester,
            roles=roles,
            channel=channel,
            actor_id=actor_id,
            client_ip=client_ip,
            user_agent=user_agent,
            progress=progress,
            work_note=work_note,
            proof=proof,
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
        work_note: str | None = None,
        proof: str | None = None,
    ) -> Submitted:
        """Queue a run and hand it to *dispatcher* (default ``self.runs.dispatcher``); returns at
        once. *proof*: None (a signed-in session's rules) unless the caller proved the requester
        (``runner.runs.PROOFS``)."""
        return self.runs.submit(
            name,
            raw,
            requester=requester,
            roles=roles,
            channel=channel,
            actor_id=actor_id,
            client_ip=client_ip,
            user_agent=user_agent,
            dispatcher=dispatcher,
            work_note=work_note,
            proof=proof,
        )

    def execute(self, ticket_id: int, *, progress: Progress | None = None) -> RunOutcome | None:
        """Claim and run a queued ticket (``RunService.execute``); None if it was not queued."""
        return self.runs.execute(ticket_id, progress=progress)

    def follow(self, ticket_id: int, after_seq: int = 0) -> RunProgress:
        """Progress of a run after *after_seq* (``RunService.follow``)."""
        return self.runs.follow(ticket_id, after_seq)

    def sweep(self, *, actor_id: str | None = None) -> list[str]:
        """Escalate queued (``never_started``) and running (``run_lost``) tickets past their
        deadline; final tickets (resolved, escalated, closed) are never touched. *actor_id*:
        the person who started the sweep (CLI: the OS user); None for the scheduled sweeper."""
        return self.runs.sweep(actor_id=actor_id)

    # -- reading ---------------------------------------------------------------------
    def list_tickets(
        self, *, since: datetime | str | None = None, until: datetime | str | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        """Newest tickets; *since* (inclusive) / *until* (exclusive) bound ``opened_at`` — aware
        datetimes or text for ``runner.timeparse.parse_instant`` (no offset = UTC)."""
        return tickets.list_tickets(self.engine, since=_when(since, "since"), until=_when(until, "until"), **kw)

    def ticket(self, number: str) -> dict[str, Any]:
        """One ticket by its number in any spelling ``runner.ticketnumber`` accepts."""
        return tickets.get_ticket(self.engine, canonical(number))

    def verify_audit(self) -> audit_mod.VerifyReport:
        return audit_mod.verify(self.engine, self.audit.key, self.audit.checkpoint_file)

    def export_audit(
        self, fmt: str, since: datetime | str | None = None, until: datetime | str | None = None
    ) -> Iterator[str]:
        """Audit events as JSON Lines or CSV; *since* inclusive, *until* exclusive (see ``list_tickets``)."""
        return audit_mod.export(self.engine, fmt, _when(since, "since"), _when(until, "until"))

    def close(self) -> None:
        dispatcher = self.runs.dispatcher
        if dispatcher is not None:
            dispatcher.close()
        self.runs.close()
        self.engine.dispose()


def _when(value: datetime | str | None, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ParameterError("%(what)s must carry a timezone (use UTC)", what=what)
        return value
    return parse_instant(value, what=what)
