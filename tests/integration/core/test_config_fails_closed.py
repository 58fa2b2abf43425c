"""Configuration fails closed and never leaks (issue 7, items 20 and 21), run as an
operator runs Firstline: the installed ``firstline`` command in a separate process.

* an inline password in the inventory is refused (exit 2) naming the field, and the
  password is in none of stdout, stderr, the log file, the database or the audit
  export — for plain, nested-dict, list, very long and non-ASCII values, and for a
  password typed into a non-secret field;
* ``prod`` (the default environment) without an audit key exits 2 naming
  ``FIRSTLINE_AUDIT_KEY`` / ``FIRSTLINE_AUDIT_KEY_FILE`` and creates no key (nor any
  other file); ``dev`` creates the key 0600 under umask 022;
* defaults come from the working directory / ``FIRSTLINE_DATA_DIR``, never from where
  the code is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update(extra)
    return env


def fl(env: dict[str, str], *args: str, cwd: Path, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    def pre() -> None:
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [FIRSTLINE, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=pre,  # only sets the umask
    )


def _lab_inventory(tmp_path: Path, edit: Any) -> Path:
    raw = yaml.safe_load((REPO / "lab" / "inventory.yaml").read_text())
    edit(raw)
    (tmp_path / "lab").mkdir(exist_ok=True)
    path = tmp_path / "lab" / "inventory.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    if not (tmp_path / "var").exists():
        os.symlink(REPO / "var", tmp_path / "var")  # the inventory's relative secret paths stay valid
    return path


def _everything_written(tmp_path: Path, data: Path) -> bytes:
    blob = b""
    for p in sorted(data.rglob("*")) if data.exists() else []:
        if p.is_file():
            blob += p.read_bytes()
    return blob


PLAIN = "Inline-S3cret-pw-0042"
VARIANTS: dict[str, tuple[str, Any, str]] = {
    # id: (field path under targets.corp, value, text that must never appear)
    "plain": ("password", PLAIN, PLAIN),
    "unicode": ("password", "Wachtwoord-Ünïcødé-密码-🔑", "Wachtwoord-Ünïcødé-密码-🔑"),
    "very-long": ("password", "L0ng-" + "x" * 4000 + "-end", "x" * 200),
    "list": ("password", ["In-A-List-S3cret"], "In-A-List-S3cret"),
    "nested-dict": ("password", {"value": {"plain": "Nested-S3cret-77"}}, "Nested-S3cret-77"),
    "bind-dn-field": ("bind_dn", ["BindDn-Typed-S3cret"], "BindDn-Typed-S3cret"),
    "port-field": ("url", {"secret": "Url-Dict-S3cret"}, "Url-Dict-S3cret"),
}


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_an_inline_password_is_refused_naming_the_field_and_never_shown(tmp_path: Path, variant: str) -> None:
    field, value, needle = VARIANTS[variant]

    def edit(raw: dict[str, Any]) -> None:
        raw["targets"]["corp"][field] = value

    inventory = _lab_inventory(tmp_path, edit)
    data = tmp_path / "data"
    books = tmp_path / "runbooks"
    books.mkdir()
    shutil.copy(REPO / "runbooks" / "account-status.yaml", books)
    env = _clean_env(
        FIRSTLINE_ENVIRONMENT="test",
        FIRSTLINE_DATA_DIR=str(data),
        FIRSTLINE_INVENTORY=str(inventory),
        FIRSTLINE_RUNBOOKS_DIR=str(books),
    )
    vet = fl(env, "runbooks", "vet", "account-status", "--by", "tester", cwd=tmp_path)
    assert vet.returncode == 0, vet.stderr
    for args in (("run", "account-status", "-p", "user=alice"), ("inventory", "check")):
        r = fl(env, *args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        assert f"targets.corp.{field}" in r.stderr + r.stdout, r.stderr
        assert "Traceback" not in r.stderr
        shown = (r.stdout + r.stderr).encode()
        for text in (needle, json.dumps(needle)[1:-1]):
            assert text.encode() not in shown
    stored = _everything_written(tmp_path, data)
    assert stored, "the log and ledger were written"
    for text in (needle, json.dumps(needle)[1:-1], repr(needle)[1:-1]):
        assert text.encode() not in stored, f"{variant}: the value reached a file"


def test_prod_without_an_audit_key_refuses_to_start_and_creates_nothing(tmp_path: Path) -> None:
    env = _clean_env(FIRSTLINE_INVENTORY=str(REPO / "lab" / "inventory.yaml"))  # no FIRSTLINE_ENVIRONMENT
    for args in (("tickets", "list"), ("audit", "verify"), ("run", "account-status", "-p", "user=alice")):
        r = fl(env, *args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "FIRSTLINE_AUDIT_KEY" in r.stderr and "FIRSTLINE_AUDIT_KEY_FILE" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == [], "prod created files without a key"
    explicit = _clean_env(FIRSTLINE_ENVIRONMENT="prod", FIRSTLINE_DATA_DIR=str(tmp_path / "d"))
    r = fl(explicit, "tickets", "list", cwd=tmp_path)
    assert r.returncode == 2 and "FIRSTLINE_AUDIT_KEY" in r.stderr
    assert not (tmp_path / "d").exists()


def test_prod_with_a_key_file_runs_and_keeps_data_in_the_data_dir(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    key = keys / "audit.key"
    key.write_text("k" * 64)
    key.chmod(0o600)
    env = _clean_env(FIRSTLINE_AUDIT_KEY_FILE=str(key), FIRSTLINE_DATA_DIR=str(tmp_path / "state"))
    r = fl(env, "tickets", "list", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "state" / "firstline.db").exists()
    assert not (REPO / "runner" / "var").exists()
    key.chmod(0o644)
    r = fl(env, "tickets", "list", cwd=tmp_path)
    assert r.returncode == 2 and "chmod 600" in r.stderr


def test_dev_creates_its_key_owner_only_under_umask_022_in_the_working_directory(tmp_path: Path) -> None:
    env = _clean_env(FIRSTLINE_ENVIRONMENT="dev")
    r = fl(env, "tickets", "list", cwd=tmp_path, umask=0o022)
    assert r.returncode == 0, r.stderr
    var = tmp_path / "var"  # ./var of the working directory, not the source tree
    for f in (var / "audit.key", var / "firstline.db", var / "audit-checkpoints.jsonl", var / "log" / "firstline.log"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))
    for d in (var, var / "log"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, (d, oct(d.stat().st_mode))
    assert len((var / "audit.key").read_text().strip()) >= 32


def test_db_upgrade_creates_a_new_data_directory_owner_only(tmp_path: Path) -> None:
    """``db upgrade`` made the database's directory 0755 (the engine's own mkdir); the other
    commands made it 0700, as README says."""
    env = _clean_env(FIRSTLINE_ENVIRONMENT="dev", FIRSTLINE_DATA_DIR=str(tmp_path / "new" / "data"))
    r = fl(env, "db", "upgrade", cwd=tmp_path, umask=0o022)
    assert r.returncode == 0, r.stderr
    for d in (tmp_path / "new", tmp_path / "new" / "data"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, (d, oct(d.stat().st_mode))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FIRSTLINE_ENVIRONMENT", "production-S3cret"),
        ("FIRSTLINE_CHECKPOINT_EVERY", "S3cret-not-a-number"),
        ("FIRSTLINE_DEFAULT_STEP_TIMEOUT", "S3cret-Ünï-∞"),
    ],
)
def test_a_wrong_setting_is_a_clear_error_naming_it_never_its_value(tmp_path: Path, name: str, value: str) -> None:
    env = _clean_env(FIRSTLINE_ENVIRONMENT="test", FIRSTLINE_DATA_DIR=str(tmp_path / "d"))
    env[name] = value
    r = fl(env, "tickets", "list", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"settings: {name}:" in r.stderr and "expected " in r.stderr, r.stderr
    assert "S3cret" not in r.stdout + r.stderr
