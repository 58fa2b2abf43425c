"""Python entry point: ``open_app()`` builds the ``Firstline`` service from settings."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.base import Connector
from runner.oplog import configure
from runner.service import Firstline, RunOutcome
from runner.settings import Settings, get_settings

__all__ = ["Firstline", "RunOutcome", "open_app"]


def open_app(settings: Settings | None = None, connectors: Mapping[str, type[Connector]] | None = None) -> Firstline:
    """Open the ledger (migrating it if needed) and return the service."""
    settings = settings or get_settings()
    configure(settings.log_file)
    return Firstline(settings, connectors)
