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
from typing import Any

from runner.errors import ConfigError, NotVetted
from runner.filememo import FileMemo
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
    """The approvals in *runbooks_dir*'s ``vetted.lock`` (runbook name -> ``Approval``);
    ``{}`` when there is no lock file. ``ConfigError`` when it is unreadable or malformed.

    Every submit and every claim asks (a run is refused when its runbook's hash is not the
    approved one). The parse is kept while the file is unchanged (``runner.filememo``: its
    identity, trusted once the file has settled), so an approval written or withdrawn a
    moment ago counts at the next submit and claim.
    """
    path = lock_path(runbooks_dir)
    try:
        seen = _PARSED.look(path)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path} is unreadable or malformed: {exc}") from exc
    known = _PARSED.known(path, seen)
    if known is not None:
        return dict(known)
    approvals = _parse_lock(path)
    _PARSED.keep(path, seen, approvals)
    return dict(approvals)


_PARSED: FileMemo[dict[str, Approval]] = FileMemo()


def _parse_lock(path: Path) -> dict[str, Approval]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)
        entries = raw["runbooks"] if isinstance(raw, dict) else None
        if not isinstance(entries, dict):
            raise ValueError("'runbooks' must map runbook names to approvals")
        out = {}
        for name, entry in entries.items():
            if (
                not isinstance(entry, dict)
                or set(entry) != _FIELDS
                or not all(isinstance(v, str) for v in entry.values())
            ):
                raise ValueError(f"the approval of '{name}' must have exactly the texts {', '.join(sorted(_FIELDS))}")
            out[name] = Approval(**entry)
        return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is unreadable or malformed: {exc}") from exc


_FIELDS = {"sha256", "approved_by", "approved_at"}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: with a name given twice, json keeps the
    last silently, so an approval further down would overrule the one a reviewer reads."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"'{key}' is given twice")
        out[key] = value
    return out


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
