"""Vetting: ``runbooks/vetted.lock`` records the approved SHA-256 of each runbook file.

A runbook whose file does not match its approval is refused everywhere (CLI, API,
portal, worker). Approving is an audited act (see ``service.vet``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.errors import ConfigError, NotVetted
from runner.runbook import Runbook

LOCK_NAME = "vetted.lock"


@dataclass(frozen=True)
class Approval:
    sha256: str
    approved_by: str
    approved_at: str


def lock_path(runbooks_dir: Path) -> Path:
    return runbooks_dir / LOCK_NAME


def read_lock(runbooks_dir: Path) -> dict[str, Approval]:
    path = lock_path(runbooks_dir)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: Approval(**entry) for name, entry in raw["runbooks"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is unreadable or malformed: {exc}") from exc


def write_approval(
    runbooks_dir: Path, runbook: Runbook, approved_by: str, *, approved_at: str | None = None
) -> Approval:
    """Record *runbook*'s current SHA-256 as approved by *approved_by* in ``vetted.lock``
    (written to a temporary file and renamed into place: never half a file)."""
    entries = read_lock(runbooks_dir)
    approval = Approval(runbook.sha256, approved_by, approved_at or datetime.now(UTC).isoformat(timespec="seconds"))
    entries[runbook.name] = approval
    body = {
        "comment": "Approved runbook hashes. Change only with `firstline runbooks vet NAME --by WHO`.",
        "runbooks": {k: vars(v) for k, v in sorted(entries.items())},
    }
    _replace(runbooks_dir, (json.dumps(body, indent=2) + "\n").encode("utf-8"))
    return approval


def restore_lock(runbooks_dir: Path, content: bytes | None) -> None:
    """Put ``vetted.lock`` back as it was (*content*; None: there was none)."""
    if content is None:
        lock_path(runbooks_dir).unlink(missing_ok=True)
    else:
        _replace(runbooks_dir, content)


def _replace(runbooks_dir: Path, content: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=runbooks_dir, prefix=".vetted.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    os.replace(tmp, lock_path(runbooks_dir))


def check_vetted(runbook: Runbook, approvals: dict[str, Approval]) -> Approval:
    """Return the approval for *runbook*'s current content, or raise ``NotVetted``."""
    approval = approvals.get(runbook.name)
    if approval is None:
        raise NotVetted(
            [
                f"{runbook.path}:1: runbook '{runbook.name}' is not vetted; "
                f"an admin must review it and run `firstline runbooks vet {runbook.name} --by NAME`"
            ]
        )
    if approval.sha256 != runbook.sha256:
        raise NotVetted(
            [
                f"{runbook.path}:1: runbook '{runbook.name}' changed since it was vetted by "
                f"{approval.approved_by} on {approval.approved_at[:10]}; it will not run until it is "
                f"reviewed and vetted again"
            ]
        )
    return approval
