"""Python entry point: ``open_app()`` builds the ``Firstline`` service from settings."""

from __future__ import annotations

from collections.abc import Mapping

from connectors import auth_breaker
from connectors.base import Connector
from runner.oplog import configure, remember_secret
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
    settings.audit_secret()
    _remember_database_password(settings.database_url)
    configure(settings.log_file)
    if settings.sqlite_path is not None:
        private_file(settings.sqlite_path)  # SQLite gives its -wal / -shm files the same mode
    private_file(settings.audit_key_file.parent / "audit-checkpoints.jsonl")
    # one refused service sign-in makes later runs (other processes too) fail fast: issue 7 item 8
    auth_breaker.configure(settings.data_dir / "auth-breakers.json")
    return Firstline(settings, connectors, migrate=migrate)


def _remember_database_password(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return
    if password:
        remember_secret(str(password))
