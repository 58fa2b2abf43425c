"""A data directory or database URL that cannot be used is a configuration error (review of
issue 8, item 3): exit 2 and one line on stderr naming the variable to fix, never exit 3
(internal error), never the password of the URL — for ``tickets list`` and ``serve`` alike.

Separate processes, as an operator meets them. No lab service is needed.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
from contextlib import closing
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


def _refused(env: dict[str, str], *command: str) -> str:
    """*command* ends at once with exit 2 and one line naming FIRSTLINE_DATABASE_URL."""
    r = subprocess.run([FIRSTLINE, *command], env=env, capture_output=True, text=True, timeout=30, check=False, cwd="/")
    everything = r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (command, r.returncode, everything)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "FIRSTLINE_DATABASE_URL" in lines[0], everything
    assert "Traceback" not in everything and PASSWORD not in everything
    return lines[0]


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("/etc/hostname/ledger.db", ("/etc/hostname",)),  # under a file
        ("{tmp}", ("Is a directory",)),  # the path is a directory
    ],
)
def test_db_upgrade_on_a_sqlite_path_it_cannot_use_is_a_config_error(
    tmp_path: Path, where: str, words: tuple[str, ...]
) -> None:
    """`db upgrade` said "internal error (NotADirectoryError)", exit 3, where `tickets list` said exit 2."""
    env = _env(data_dir=str(tmp_path / "data"), database_url="sqlite:///" + where.format(tmp=tmp_path))
    line = _refused(env, "db", "upgrade")
    assert all(word in line for word in words), line


def test_another_applications_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    """A valid SQLite file with tables of something else was migrated: Firstline's tables
    were added beside the other application's, and every command went on."""
    other = tmp_path / "recipes.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE recipe (id INTEGER PRIMARY KEY, name TEXT)")
        db.commit()
    env = _env(data_dir=str(tmp_path / "data"), database_url=f"sqlite:///{other}")
    for command in (["db", "upgrade"], ["tickets", "list"]):
        assert "no Firstline schema" in _refused(env, *command)
    with closing(sqlite3.connect(other)) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("recipe",)]
        # not even its journal mode: WAL is persistent, and an application on an old SQLite
        # (or on a network share) could no longer open its own file
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert not other.with_name("recipes.db-wal").exists()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sqlite://", ("in-memory", "keeps nothing")),
        ("sqlite:///:memory:", ("in-memory",)),
        (f"postgresql://u:{PASSWORD}@127.0.0.1:1/x", ("postgresql+psycopg2://",)),  # SQLAlchemy's default driver
    ],
)
def test_a_database_url_that_would_not_work_says_what_to_write(
    tmp_path: Path, url: str, words: tuple[str, ...]
) -> None:
    """An in-memory SQLite database migrated and forgot (`db upgrade` said done, exit 0); a
    bare postgresql:// named a driver that is not installed without saying the one that is."""
    line = _refused(_env(data_dir=str(tmp_path / "data"), database_url=url), "db", "upgrade")
    assert all(word in line for word in words), line


def test_a_postgresql_url_pointing_at_a_silent_port_gives_up(tmp_path: Path) -> None:
    """A port that accepts and never answers (another service, a firewall): libpq waited
    for ever, so `db upgrade`, `serve` and `worker` hung without a word."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody ever reads or writes
        url = f"postgresql+psycopg2://u:{PASSWORD}@127.0.0.1:{silent.getsockname()[1]}/x"
        line = _refused(_env(data_dir=str(tmp_path / "data"), database_url=url), "db", "upgrade")
    assert "timeout" in line.lower(), line


def test_an_unencoded_at_sign_in_the_password_is_named_not_echoed(tmp_path: Path) -> None:
    """`user:pw@rt@host`: the driver took `rt@host` for the host and printed it, the end of the password."""
    url = "postgresql+psycopg2://u:Db-Pass@Word-4471@127.0.0.1:1/x"
    line = _refused(_env(data_dir=str(tmp_path / "data"), database_url=url), "tickets", "list")
    assert "percent-encode" in line and "Word-4471" not in line, line


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/fl\n.db", "postgresql+psycopg2://postgres@127.0.0.1:5432/x\n"])
def test_a_database_url_with_a_line_break_is_refused(tmp_path: Path, url: str) -> None:
    """The database name or file name took the line break in; the driver's reason, cut at it, said half."""
    env = _env(data_dir=str(tmp_path / "data"), database_url=url.format(tmp=tmp_path))
    line = _refused(env, "db", "upgrade")
    assert "line break or control character" in line, line


@pytest.mark.parametrize(
    ("variable", "where", "words"),
    [
        # the directory that holds the data dir (and so the database): the log file's fault,
        # which was reported as FIRSTLINE_DATA_DIR
        ("log_file", "{tmp}", ("Is a directory",)),
        ("log_file", "{tmp}/elsewhere", ("Is a directory",)),  # a directory of its own
        ("log_file", "/etc/hostname/firstline.log", ("/etc/hostname",)),  # under a file
        ("log_file", "/proc/firstline-x/firstline.log", ("/proc/firstline-x",)),
    ],
    ids=["log-is-parent-of-data-dir", "log-is-a-directory", "log-under-a-file", "log-unwritable"],
)
def test_a_file_setting_that_cannot_be_used_names_that_setting(
    tmp_path: Path, variable: str, where: str, words: tuple[str, ...]
) -> None:
    (tmp_path / "elsewhere").mkdir()
    path = where.format(tmp=tmp_path)
    env = _env(data_dir=str(tmp_path / "data"), **{variable: path})
    line = _config_error(env, f"FIRSTLINE_{variable.upper()}", *words)
    assert "FIRSTLINE_DATA_DIR" not in line and "Set it to a file in a directory" in line, line
    dutch = subprocess.run(
        [FIRSTLINE, "tickets", "list"], env={**env, "FIRSTLINE_LANG": "nl"}, capture_output=True, text=True, timeout=60
    )
    assert dutch.returncode == 2 and "Stel het in op een bestand" in dutch.stderr, dutch.stderr


@pytest.mark.parametrize("variable", ["data_dir", "inventory", "runbooks_dir"])
def test_a_path_setting_that_is_set_but_empty_is_refused(tmp_path: Path, variable: str) -> None:
    """``FIRSTLINE_DATA_DIR=`` (a typo, a lost value) was taken as unset: every command made
    its database and audit key in ./var of whatever folder it ran in, and said nothing."""
    env = _env(data_dir=str(tmp_path / "data")) | {f"FIRSTLINE_{variable.upper()}": ""}
    r = subprocess.run(
        [FIRSTLINE, "tickets", "list"], env=env, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert f"FIRSTLINE_{variable.upper()} is set but empty" in r.stderr and "Value error" not in r.stderr
    assert not (tmp_path / "var").exists()  # nothing made in the working directory
