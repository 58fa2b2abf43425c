"""A data directory or database URL that cannot be used is a configuration error (review of
issue 8, item 3): exit 2 and one line on stderr naming the variable to fix, never exit 3
(internal error), never the password of the URL — for ``tickets list`` and ``serve`` alike.

Separate processes, as an operator meets them. No lab service is needed.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")
PASSWORD = "Db-Pass-Word-4471"


def _env(**firstline: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    base.update(
        FIRSTLINE_RUNBOOKS_DIR=str(REPO / "runbooks"),
        FIRSTLINE_INVENTORY=str(REPO / "lab" / "inventory.yaml"),
        FIRSTLINE_ENVIRONMENT="dev",  # a key may be created: only the paths are wrong
        COLUMNS="200",
    )
    base.update({f"FIRSTLINE_{k.upper()}": v for k, v in firstline.items()})
    return base


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config_error(env: dict[str, str], variable: str, *args: str) -> str:
    commands = [["tickets", "list"], ["serve", "--host", "127.0.0.1", "--port", str(_port())]]
    for command in commands:
        r = subprocess.run(
            [FIRSTLINE, *command], env=env, capture_output=True, text=True, timeout=60, check=False, cwd="/"
        )
        everything = r.stdout + r.stderr
        assert r.returncode == 2, (command, r.returncode, everything)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (command, everything)
        assert variable in lines[0], (command, everything)
        assert "Traceback" not in everything and "internal error" not in everything
        assert PASSWORD not in everything
        for word in args:
            assert word in lines[0], (command, everything)
    return lines[0]


@pytest.mark.parametrize(
    "data_dir",
    ["/proc/firstline-x", "/proc/self/status", "/etc/hostname", "/dev/null/x"],
)
def test_a_data_dir_that_cannot_be_used_is_a_config_error(data_dir: str) -> None:
    _config_error(_env(data_dir=data_dir), "FIRSTLINE_DATA_DIR", data_dir)


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    _config_error(_env(data_dir=str(a_file)), "FIRSTLINE_DATA_DIR", "Not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_an_unwritable_data_dir(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    _config_error(_env(data_dir=str(locked / "data")), "FIRSTLINE_DATA_DIR", "Permission denied")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"foo://u:{PASSWORD}@db.example/x", ("scheme 'foo'",)),
        (f"mysql://u:{PASSWORD}@db.example/x", ("not installed", "MySQLdb")),
        (f"postgresql+asyncpg://u:{PASSWORD}@db.example/x", ("not installed",)),
        (f"not a url {PASSWORD}", ("scheme 'none'",)),
        (f"postgresql+psycopg2://u:{PASSWORD}@127.0.0.1:1/x", ("not usable", "refused")),  # nobody listens
        (f"postgresql+psycopg2://u:{PASSWORD}@host.invalid/x", ("not usable",)),  # no such host
        ("sqlite:////proc/firstline-x/ledger.db", ("/proc/firstline-x",)),
    ],
)
def test_a_database_url_that_cannot_be_used_is_a_config_error(tmp_path: Path, url: str, words: tuple[str, ...]) -> None:
    line = _config_error(_env(data_dir=str(tmp_path / "data"), database_url=url), "FIRSTLINE_DATABASE_URL", *words)
    assert PASSWORD not in line
    log = tmp_path / "data" / "log" / "firstline.log"
    assert not log.exists() or PASSWORD not in log.read_text(encoding="utf-8")
