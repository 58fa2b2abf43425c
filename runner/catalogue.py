"""The runbook catalogue: load, lint and vet runbooks, and the audience rule.

Shared by the CLI (``runbooks list/check/vet``), the run service (``runner.runs``), the
portal's list of fixes (``runner.fixes``: search and forms over these runbooks) and,
later, triage.

Runbooks are YAML files in ``settings.runbooks_dir`` (docs/runbooks.md); each is loaded
from disk on use and cached by content hash, so an edit is seen at once — and, because
the run service compares the hash a ticket was submitted with to the file when it
executes, an edit between submit and execute escalates the run (``runbook_changed``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from connectors.base import Connector
from runner import clitexts
from runner.errors import FirstlineError, NotFoundError, PolicyDenied, RunbookError, Text
from runner.filememo import FileMemo
from runner.inventory import load_inventory
from runner.ledger.audit import Actor, AuditLog
from runner.ledger.store import transaction
from runner.runbook import Runbook, load_all, load_runbook, read_runbook_file
from runner.safetext import free_text, principal
from runner.settings import Settings
from runner.vetting import check_vetted, lock_path, read_lock, restore_lock, write_approval


def audience_allows(runbook: Runbook, roles: frozenset[str] | set[str]) -> bool:
    """May a caller with *roles* run *runbook*? Agents and admins: runbooks whose
    ``audience`` holds ``agent`` or ``self_service``; everyone else: ``self_service`` only
    (docs/runbooks.md "audience"). The one place this rule lives."""
    audience = set(runbook.model.audience)
    if "agent" in roles or "admin" in roles:
        return bool(audience & {"agent", "self_service"})
    return "self_service" in audience


def needs_proof(runbook: Runbook) -> bool:
    """Does *runbook* set a password without the current one (a ``reset_password`` step)?
    Employees run such a runbook only after proving who they are with a one-time code
    (``runner.runs.RunService.account_rules``), so the signed-in catalogue does not offer it
    to them: signed in, they change their password with the current one."""
    steps = [*runbook.steps, *([runbook.verify] if runbook.verify else [])]
    return any(s.spec.action == "reset_password" for s in steps)


def offered(runbook: Runbook, roles: frozenset[str] | set[str]) -> bool:
    """Is *runbook* listed for a signed-in caller with *roles*? ``audience_allows``, less the
    runbooks that need a one-time-code proof for employees (``needs_proof``)."""
    employee = "agent" not in roles and "admin" not in roles
    return audience_allows(runbook, roles) and not (employee and needs_proof(runbook))


@dataclass(frozen=True)
class CatalogueEntry:
    """One runbook file as a list shows it: ``state`` is ``vetted``, ``changed`` (edited
    since its approval) or ``not_vetted``."""

    name: str
    runbook: Runbook
    state: str


class Catalogue:
    """The runbooks of one installation. Safe to share between threads."""

    def __init__(self, settings: Settings, connectors: Mapping[str, type[Connector]]) -> None:
        self.settings = settings
        self.connectors = connectors
        self._cache: dict[Path, Runbook] = {}
        self._files: FileMemo[Runbook] = FileMemo()  # the file's identity when it was last read
        # name -> (runbooks directory, file) of runbooks that loaded: a run asks 4 times
        self._paths: dict[str, tuple[Path, Path]] = {}
        self._lock = threading.Lock()

    @property
    def directory(self) -> Path:
        return self.settings.runbooks_dir

    def runbook(self, name: str) -> Runbook:
        """Load *name* from disk; edits are seen at once (the parse is kept by content hash,
        and the file is not read again while its identity is unchanged: ``runner.filememo``).

        ``NotFoundError`` when *name* is not a runbook name or has no file (the message
        lists the available ones); ``RunbookError`` when the file is malformed."""
        if not name or "/" in name or "\\" in name or name.startswith(".") or len(name) > 64:
            raise NotFoundError("'%(name)s' is not a runbook name", name=name[:64])
        directory = self.directory
        known_path = self._paths.get(name)
        path = known_path[1] if known_path is not None and known_path[0] is directory else directory / f"{name}.yaml"
        try:
            seen = self._files.look(path)
            unchanged = self._files.known(path, seen)
            if unchanged is not None:
                return unchanged
            data = read_runbook_file(path)
        except FileNotFoundError:
            known = ", ".join(sorted(p.stem for p in self.directory.glob("*.yaml")))
            raise NotFoundError("no runbook named '%(name)s'; available: %(known)s", name=name, known=known) from None
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached.sha256 == digest:
            rb = cached
        else:
            rb = load_runbook(path, self.connectors)  # reads the file again
            with self._lock:
                self._cache[path] = rb
        if rb.sha256 == digest:  # what was looked at is what was parsed
            self._files.keep(path, seen, rb)
        self._paths[name] = (directory, path)
        return rb

    def vetted(self, name: str) -> Runbook:
        """*name* as it is now, which must match its approval (``NotVetted`` otherwise)."""
        rb = self.runbook(name)
        check_vetted(rb, read_lock(self.directory))
        return rb

    def entries(self) -> tuple[list[CatalogueEntry], list[str]]:
        """Every runbook that loads, by name, with its vetting state; and ``file:line:
        problem`` lines for those that do not."""
        books, problems = load_all(self.directory, self.connectors)
        approvals = read_lock(self.directory)
        out = []
        for name, rb in sorted(books.items()):
            a = approvals.get(name)
            state = "vetted" if a and a.sha256 == rb.sha256 else "changed" if a else "not_vetted"
            out.append(CatalogueEntry(name, rb, state))
        return out, problems

    def available(self, roles: frozenset[str] | set[str]) -> list[Runbook]:
        """Vetted runbooks offered to a signed-in caller with *roles* (``offered``), by name."""
        entries, _problems = self.entries()
        return [e.runbook for e in entries if e.state == "vetted" and offered(e.runbook, roles)]

    def check(self) -> list[str]:
        """Lint every runbook, its vetting and the inventory; ``file:line: problem`` lines.
        A runbooks directory that does not exist or holds no runbook is a problem too (a
        mistyped ``FIRSTLINE_RUNBOOKS_DIR`` passed the check in CI)."""
        if not self.directory.is_dir():
            return [Text(clitexts.RUNBOOKS_DIR_MISSING, dir=str(self.directory))]
        books, problems = load_all(self.directory, self.connectors)
        if not books and not problems:
            problems.append(Text(clitexts.RUNBOOKS_DIR_EMPTY, dir=str(self.directory)))
        approvals = read_lock(self.directory)
        for rb in books.values():
            try:
                check_vetted(rb, approvals)
            except RunbookError as exc:
                problems.extend(exc.problems)
        for name in sorted(set(approvals) - {p.stem for p in self.directory.glob("*.yaml")}):
            problems.append(f"{self.directory / 'vetted.lock'}:1: approval for '{name}' has no runbook file")
        # The runbooks need a valid inventory: every problem of it, then each runbook against it.
        from runner.inventory_check import check_inventory, runbook_problems

        report = check_inventory(self.settings.inventory, self.connectors)
        # Text: the file as it is, the problem in the reader's language (runner.clitexts.translate)
        problems.extend(
            Text("%(file)s: %(problem)s", file=str(self.settings.inventory), problem=p) for p in report.problems
        )
        if not report.problems:
            problems.extend(
                Text("%(file)s: %(problem)s", file=str(self.settings.inventory), problem=p)
                for p in runbook_problems(books, load_inventory(self.settings.inventory, self.connectors))
            )
        return problems

    def vet(self, engine: Engine, audit: AuditLog, name: str, by: str, *, actor_id: str | None = None) -> str:
        """Approve *name*'s current content; returns its SHA-256. *by*: who reviewed and
        approves (free text such as ``Ada (CAB 2026-11-27)``, no control/format/bidi
        characters, up to 128); *actor_id*: who records it (CLI: the OS user), an account
        name. The audit event's actor is *actor_id* (else *by*), ``detail.approved_by`` is *by*."""
        try:
            by = free_text(by, what=Text("--by (the person approving)"))
        except FirstlineError as exc:
            raise PolicyDenied("%(problem)s; name the person approving in plain text", problem=str(exc)) from None
        if actor_id is not None:
            principal(actor_id, what=Text("the acting person"))
        rb = self.runbook(name)  # must load cleanly: a broken runbook cannot be vetted
        # An approval exists only with its audit event: the lock file is written inside the
        # transaction that appends the event (a failed write rolls the event back), and put
        # back as it was when the event cannot be committed.
        lock = lock_path(self.directory)
        before = lock.read_bytes() if lock.exists() else None
        written = False
        try:
            with transaction(engine) as conn:
                approved_at = datetime.now(UTC).isoformat(timespec="seconds")
                audit.append(
                    conn,
                    Actor(actor_id or by, ("admin",)),
                    "runbook.vetted",
                    outcome="success",
                    target=name,
                    runbook=name,
                    runbook_sha256=rb.sha256,
                    detail={"approved_at": approved_at, "approved_by": by},
                )
                write_approval(self.directory, rb, by, approved_at=approved_at)
                written = True
        except BaseException:
            if written:
                restore_lock(self.directory, before)
            raise
        return rb.sha256
