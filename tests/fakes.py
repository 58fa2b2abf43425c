"""A scripted stand-in connector, for unit tests only (integration tests use real servers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from connectors.base import ActionSpec, Connector, ConnectorError, InputSpec, TargetConfig

Script = dict[str, list[Any]]


class FakeConfig(TargetConfig):
    label: str = "fake"


class FakeConnector(Connector):
    """Returns canned outcomes (or raises canned errors) and records every call.

    ``FakeConnector.script[action]`` is a list consumed front to back; an item is a
    result dict, a ``ConnectorError`` instance to raise, or a callable(inputs).
    """

    name = "fake"
    config_model = FakeConfig
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "account_status": ActionSpec(
            "account_status", (InputSpec("user"),), outputs=frozenset({"exists", "locked", "mail"})
        ),
        "unlock_account": ActionSpec(
            "unlock_account", (InputSpec("user"),), outputs=frozenset({"unlocked", "changed"}), changes_state=True
        ),
        "reset_password": ActionSpec(
            "reset_password",
            (InputSpec("user"), InputSpec("new_password", "secret", required=False, secret=True)),
            outputs=frozenset({"temporary_password"}),
            secret_outputs=frozenset({"temporary_password"}),
            changes_state=True,
        ),
        "echo": ActionSpec("echo", (InputSpec("text"),), outputs=frozenset({"text"})),
    }
    script: ClassVar[Script] = {}
    calls: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []

    def _next(self, action: str, inputs: dict[str, Any]) -> dict[str, Any]:
        FakeConnector.calls.append((self.target_name, action, dict(inputs)))
        queue = FakeConnector.script.get(action)
        item: Any = queue.pop(0) if queue else {}
        if isinstance(item, ConnectorError):
            raise item
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            fn: Callable[[dict[str, Any]], dict[str, Any]] = item
            return fn(inputs)
        return dict(item)

    def account_status(self, *, timeout: float, user: str) -> dict[str, Any]:
        return self._next("account_status", {"user": user})

    def unlock_account(self, *, timeout: float, user: str) -> dict[str, Any]:
        return self._next("unlock_account", {"user": user})

    def reset_password(self, *, timeout: float, user: str, new_password: str | None = None) -> dict[str, Any]:
        return self._next("reset_password", {"user": user, "new_password": new_password})

    def echo(self, *, timeout: float, text: str) -> dict[str, Any]:
        return self._next("echo", {"text": text}) or {"text": text}


class Manual:
    """A dispatcher that only remembers the ticket ids it was handed (a broker nobody reads
    yet); ``fail=True``: ``send`` raises as a broker that is down would."""

    name = "manual"

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[int] = []
        self.fail = fail

    @contextmanager
    def reserve(self) -> Iterator[Any]:
        def send(ticket_id: int) -> None:
            if self.fail:
                raise ConnectionError("broker down")
            self.sent.append(ticket_id)

        yield send

    def depth(self) -> int:
        return 0

    def close(self) -> None:
        return None
