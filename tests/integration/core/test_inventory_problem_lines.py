"""`firstline inventory check` and `firstline runbooks check` name the inventory file once
in front of each problem line: "inventory: inventory /x.yaml is not UTF-8 text" said the
label twice (and `runbooks check` said the path twice). Run as a subprocess."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")


def fl(tmp_path: Path, inventory: Path, *args: str, lang: str = "en") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_") and k != "LANG"}
    env.update(
        FIRSTLINE_ENVIRONMENT="test",
        FIRSTLINE_DATA_DIR=str(tmp_path / "data"),
        FIRSTLINE_INVENTORY=str(inventory),
        FIRSTLINE_RUNBOOKS_DIR=str(REPO / "runbooks"),
        FIRSTLINE_LANG=lang,
    )
    return subprocess.run(
        [FIRSTLINE, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )


FILES = {
    "missing": (None, "cannot be read: No such file or directory"),
    "not-utf8": (b"# caf\xe9\ntargets: {}\n", "not UTF-8 text"),
    "bad-yaml": (b"targets: [\n", "not valid YAML: line 2, column 1"),
    "not-a-mapping": (b"- a\n- b\n", "expected a mapping at the top"),
    "no-connector": (b"targets:\n  x: {}\n", "targets.x: needs a 'connector'"),
}


@pytest.mark.parametrize("case", list(FILES), ids=list(FILES))
def test_each_problem_line_names_the_file_once(tmp_path: Path, case: str) -> None:
    content, problem = FILES[case]
    inventory = tmp_path / "inventory.yaml"
    if content is not None:
        inventory.write_bytes(content)
    r = fl(tmp_path, inventory, "inventory", "check")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{inventory}: {problem}"), r.stderr
    assert lines[-1] == f"{inventory}: 1 problem(s); nothing was connected to.", r.stderr
    assert "inventory: inventory" not in r.stderr and r.stderr.count(str(inventory)) == 2, r.stderr
    linted = fl(tmp_path, inventory, "runbooks", "check")
    assert linted.returncode == 1, linted.stdout + linted.stderr
    said = [line for line in (linted.stdout + linted.stderr).splitlines() if str(inventory) in line]
    assert said and said[0].startswith(f"{inventory}: {problem}"), linted.stdout + linted.stderr
    assert all(line.count(str(inventory)) == 1 for line in said), said


def test_problem_lines_follow_the_chosen_language(tmp_path: Path) -> None:
    """FIRSTLINE_LANG=nl: the problems Firstline finds itself, pydantic's usual sentences and
    the closing line are Dutch in `inventory check` and `runbooks check` (they were English)."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("targets:\n  x: {}\n  corp: {connector: ldap, colour: red}\ndefaults: {mail: nope}\n")
    r = fl(tmp_path, inventory, "inventory", "check", lang="nl")
    assert r.returncode == 2, r.stdout + r.stderr
    for line in (
        f"{inventory}: targets.x: heeft een 'connector' nodig",
        f"{inventory}: targets.corp.colour: Extra velden zijn niet toegestaan",
        f"{inventory}: targets.corp.url: Veld ontbreekt",
        f"{inventory}: defaults.mail noemt een onbekend doel 'nope'",
    ):
        assert line in r.stderr.splitlines(), r.stderr
    assert r.stderr.splitlines()[-1].endswith("probleem/problemen; er is nergens verbinding mee gemaakt."), r.stderr
    assert "needs a" not in r.stderr and "problem(s)" not in r.stderr
    linted = fl(tmp_path, inventory, "runbooks", "check", lang="nl")
    assert f"{inventory}: targets.x: heeft een 'connector' nodig" in linted.stdout, linted.stdout
    assert linted.stderr.strip().endswith("probleem/problemen."), linted.stderr
    english = fl(tmp_path, inventory, "inventory", "check")
    assert f"{inventory}: targets.x: needs a 'connector'" in english.stderr.splitlines(), english.stderr


def test_a_valid_inventory_and_its_targets_in_dutch(tmp_path: Path) -> None:
    r = fl(tmp_path, REPO / "lab" / "inventory.yaml", "inventory", "check", lang="nl")
    assert r.returncode == 0 and r.stdout.strip() == f"{REPO / 'lab' / 'inventory.yaml'}: geldig (5 doelen).", r.stdout
