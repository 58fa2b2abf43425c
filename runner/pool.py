"""Connector instances per (connector, target), built from the inventory and reused
across runs so that connections stay pooled. Thread-safe."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from connectors.base import Connector, ConnectorError
from runner.errors import ConfigError
from runner.inventory import Inventory
from runner.secrets import SecretStore


class Pool:
    def __init__(self, connectors: Mapping[str, type[Connector]], inventory: Inventory, secrets: SecretStore) -> None:
        self.connectors = connectors
        self.inventory = inventory
        self.secrets = secrets
        self._open: dict[tuple[str, str], Connector] = {}
        self._lock = threading.Lock()

    def default_target(self, connector: str) -> str:
        return self.inventory.default_target(connector)

    def get(self, connector: str, target: str) -> Connector:
        key = (connector, target)
        with self._lock:
            conn = self._open.get(key)
            if conn is not None:
                return conn
            config = self.inventory.target(target)
            if config.connector != connector:
                raise ConfigError(f"target '{target}' is a {config.connector} target, not {connector}")
            cls = self.connectors[connector]
            conn = cls(target, config, self.secrets)
            conn.open()
            self._open[key] = conn
            return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._open.values():
                try:
                    conn.close()
                except ConnectorError:
                    pass
            self._open.clear()
