"""A ticket number is read the same way by every surface (runner.ticketnumber): the CLI's
`firstline tickets show` (a subprocess) here, the JSON API and the portal's pages in
tests/integration/portal/test_ticket_number_spellings.py. `fl-000001`, `1` and `FL-1` were
"not a ticket number" to the CLI while the portal's own-ticket pages took them, and the
auditor's filter took `1` but refused `FL-1`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")


def spellings(n: int) -> list[str]:
    """The accepted spellings of ticket *n* (the portal test uses the same)."""
    return [f"FL-{n:06d}", f"fl-{n:06d}", f"Fl-{n}", f"FL-{n}", f"{n}", f"{n:06d}", f" FL-{n:06d} ", f"FL-{n:09d}"]


ACCEPTED = spellings(1)
REFUSED = ["FL1", "FL-", "FL-1a", "#1", "１", "FL-0", "0", "FL-1234567890", "FL--1", "FL-+1", "FL- 1", "L-1", "FL_1"]


def fl(tmp_path: Path, *args: str, lang: str = "en") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_") and k != "LANG"}
    env.update(
        FIRSTLINE_ENVIRONMENT="test",
        FIRSTLINE_DATA_DIR=str(tmp_path / "data"),
        FIRSTLINE_INVENTORY=str(REPO / "lab" / "inventory.yaml"),
        FIRSTLINE_RUNBOOKS_DIR=str(REPO / "runbooks"),
        FIRSTLINE_LANG=lang,
    )
    return subprocess.run([FIRSTLINE, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("typed", ACCEPTED)
def test_every_accepted_spelling_names_the_same_ticket(tmp_path: Path, typed: str) -> None:
    r = fl(tmp_path, "tickets", "show", typed)
    assert r.returncode == 2 and r.stderr.strip() == "error: ticket FL-000001 does not exist", r.stderr


@pytest.mark.parametrize("typed", REFUSED)
def test_other_spellings_are_refused_with_one_sentence(tmp_path: Path, typed: str) -> None:
    r = fl(tmp_path, "tickets", "show", "--", typed)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().endswith("is not a ticket number (they look like FL-000123)"), r.stderr
    nl = fl(tmp_path, "tickets", "show", "--", typed, lang="nl")
    assert "is geen ticketnummer (die zien eruit als FL-000123)" in nl.stderr, nl.stderr
