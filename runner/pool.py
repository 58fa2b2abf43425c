"""Connector instances per (connector, target), built from the inventory and reused across
runs so that connections stay pooled. Thread-safe.

Each instance serves one call at a time (``using``): a caller checks one out, calls it and
hands it back. Up to ``per_target`` instances exist per (connector, target), so that runs
of one process against the same directory or host go on side by side (before, one
instance served every thread of a process, and an LDAP connection is used by one call at a
time: eight worker threads queued behind each other, and one slow call held up the rest).
A caller that finds all of them busy waits up to ``wait`` seconds, then gets ``Timeout``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from connectors.base import Connector, ConnectorError, Timeout
from runner.errors import ConfigError
from runner.inventory import Inventory
from runner.secrets import SecretStore

PER_TARGET = 8  # instances (connections) per (connector, target) and process
WAIT_SECONDS = 30.0  # how long a caller waits for a busy target's instance


class Pool:
    def __init__(
        self,
        connectors: Mapping[str, type[Connector]],
        inventory: Inventory,
        secrets: SecretStore,
        *,
        per_target: int = PER_TARGET,
        wait: float = WAIT_SECONDS,
    ) -> None:
        if per_target < 1:
            raise ValueError("per_target must be at least 1")
        self.connectors = connectors
        self.inventory = inventory
        self.secrets = secrets
        self.per_target, self.wait = per_target, wait
        self._idle: dict[tuple[str, str], list[Connector]] = {}
        self._made: dict[tuple[str, str], int] = {}
        self._all: list[Connector] = []
        self._cond = threading.Condition()

    def default_target(self, connector: str) -> str:
        return self.inventory.default_target(connector)

    @contextmanager
    def using(self, connector: str, target: str) -> Iterator[Connector]:
        """An instance of *connector* for *target*, for this caller alone until the block
        ends. ``ConfigError`` when *target* is not such a target; ``Timeout`` when every
        instance stayed busy for ``wait`` seconds; a new instance's ``open()`` errors."""
        key = (connector, target)
        found = self._checkout(key)
        try:
            yield found
        finally:
            with self._cond:
                self._idle.setdefault(key, []).append(found)
                self._cond.notify()

    def _checkout(self, key: tuple[str, str]) -> Connector:
        connector, target = key
        config = self.inventory.target(target)
        if config.connector != connector:
            raise ConfigError(f"target '{target}' is a {config.connector} target, not {connector}")
        deadline = time.monotonic() + self.wait
        with self._cond:
            while True:
                idle = self._idle.get(key)
                if idle:
                    return idle.pop()  # the one used last: its connection is the likeliest alive
                if self._made.get(key, 0) < self.per_target:
                    self._made[key] = self._made.get(key, 0) + 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout(
                        f"All {self.per_target} connections to target '{target}' stayed busy for {self.wait:g} s."
                    )
                self._cond.wait(left)
        try:  # built outside the lock: open() may connect
            made = self.connectors[connector](target, config, self.secrets)
            made.open()
        except BaseException:
            with self._cond:
                self._made[key] -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._all.append(made)
        return made

    def close(self) -> None:
        with self._cond:
            made, self._all = self._all, []
            self._idle.clear()
            self._made.clear()
        for conn in made:
            try:
                conn.close()
            except ConnectorError:
                pass
