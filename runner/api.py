"""Python entry point: ``open_app()`` builds the ``Firstline`` service from settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from connectors import auth_breaker
from connectors.base import Connector
from runner.errors import ConfigError
from runner.oplog import configure, remember_secret
from runner.safetext import shown
from runner.service import Firstline, RunOutcome
from runner.settings import Settings, get_settings, private_file

__all__ = ["Firstline", "RunOutcome", "open_app"]


def open_app(
    settings: Settings | None = None,
    connectors: Mapping[str, type[Connector]] | None = None,
    *,
    migrate: bool | None = None,
) -> Firstline:
    """Open the ledger and return the service.

    *migrate*: see ``Firstline`` (None: migrate on the embedded default — SQLite, or the
    ``dev`` / ``test`` environments; a production PostgreSQL is upgraded only by
    ``firstline db upgrade``).

    Fails closed before anything is written: without an audit key outside ``dev`` /
    ``test`` this raises ``ConfigError`` and creates no file. The log file, the SQLite
    database and the audit checkpoint file are created 0600 (directories 0700).
    """
    settings = settings or get_settings()
    _remember_database_password(settings.database_url)
    try:
        settings.audit_secret()
        configure(settings.log_file)
        if settings.sqlite_path is not None:
            private_file(settings.sqlite_path)  # SQLite gives its -wal / -shm files the same mode
        private_file(settings.audit_key_file.parent / "audit-checkpoints.jsonl")
        # one refused service sign-in makes later runs (other processes too) fail fast: issue 7 item 8
        auth_breaker.configure(settings.data_dir / "auth-breakers.json")
    except OSError as exc:
        raise ConfigError(path_problem(settings, exc)) from exc
    return Firstline(settings, connectors, migrate=migrate)


def path_problem(settings: Settings, exc: OSError) -> str:
    """One line for a file Firstline could not create or open: the setting to fix (the one
    whose path holds the failing file, else ``FIRSTLINE_DATA_DIR``), the path and the
    system's reason. Paths only: no URL, no password."""
    failing = Path(str(exc.filename)) if exc.filename else None
    candidates = [
        ("FIRSTLINE_DATABASE_URL", settings.sqlite_path),
        ("FIRSTLINE_LOG_FILE", settings.log_file),
        ("FIRSTLINE_AUDIT_KEY_FILE", settings.audit_key_file),
    ]
    known = [(name, path) for name, path in candidates if path is not None and failing is not None]
    # The file itself first, then a file the failing path is a directory of: a log file set
    # to the directory that holds the data dir is the log file's fault, not the database's.
    owner = next(((n, p) for n, p in known if p == failing), None) or next(
        ((n, p) for n, p in known if failing in p.parents), None
    )
    variable = "FIRSTLINE_DATA_DIR"
    if owner is not None and not _under(owner[1], settings.data_dir):
        variable = owner[0]
    reason = exc.strerror or type(exc).__name__
    where = shown(str(failing), 200) if failing is not None else shown(str(settings.data_dir), 200)
    data_dir = shown(str(settings.data_dir), 200)
    if variable == "FIRSTLINE_DATA_DIR":
        return (
            f"{variable} cannot be used: {where}: {reason}. Set it to a directory this user can write "
            f"(data dir now: {data_dir})."
        )
    return (
        f"{variable} cannot be used: {where}: {reason}. Set it to a file in a directory this user can write "
        f"(data dir now: {data_dir})."
    )


def _under(path: Path, directory: Path) -> bool:
    try:
        path.relative_to(directory)
    except ValueError:
        return False
    return True


def _remember_database_password(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return
    if password:
        remember_secret(str(password), seconds=None)
