"""The connector contract: what a plugin implements and what it may raise.

A connector reaches one kind of system (a directory, a host, a print server) for the
runner. It is a class registered under the entry-point group ``firstline.connectors``;
the entry-point name must equal the class's ``name``.

Error tree (library errors are translated *inside* the connector, chained with
``from exc``, so the runner never sees ldap3/paramiko/winrm exceptions)::

    ConnectorError                 base; ``str(err)`` is shown to people, never a secret
    ├── Unreachable                the target did not answer (transient: retried)
    ├── Timeout                    the target answered too slowly (transient: retried)
    ├── AuthFailed                 the service credentials were refused
    ├── Rejected                   the target said no, with its reason
    │   └── NotFound               the object (account, queue, service) does not exist
    └── InvalidInput               the parameters were refused before reaching the target

Only ``Unreachable`` and ``Timeout`` are transient; a runbook step's ``retries`` apply
to those alone.

``requester_action`` marks an error the requester can fix themself (a password that is
too short, a wrong current password, an unknown account name): the runner closes such a
ticket with resolution code ``requester_action_needed`` and plain guidance instead of
escalating it to second level. Escalation is kept for what only a person can fix.

Result contract: every action with ``changes_state=True`` returns ``changed: bool`` —
``True`` only when the target's state was actually changed (an unlock of an account
that was not locked, or clearing an empty queue, returns ``False``). The runner records
``changed`` in the audit event (outcome ``no_change`` when nothing changed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ActionSpec",
    "AuthFailed",
    "Connector",
    "ConnectorError",
    "InputSpec",
    "InvalidInput",
    "NotFound",
    "Rejected",
    "SecretResolver",
    "TargetConfig",
    "Timeout",
    "Unreachable",
]

InputType = Literal["str", "int", "bool", "secret", "list"]


class ConnectorError(Exception):
    """Base of every error a connector raises.

    ``reason`` is a short machine-readable code (``unreachable``, ``auth_failed``,
    ``too_short``...) stored on the ticket; the message is plain language for people.
    Neither may contain a secret. ``outcome_unknown``: the change may or may not have been
    applied (the connection was lost or the time ran out after the change was sent); the
    audit records such an attempt with outcome ``unknown`` instead of ``failure``.
    ``fixed_text``: the message is one of the connector's own texts, filled in with settings
    or the directory's figures only (a password policy's minimum), never with anything the
    requester typed; the runner then shows it as it is, even when a typed secret happens to
    occur in it (a new password "e" would otherwise withhold every refusal's reason).
    """

    reason: str = "connector_error"
    transient: bool = False
    requester_action: bool = False
    outcome_unknown: bool = False
    fixed_text: bool = False

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        requester_action: bool | None = None,
        outcome_unknown: bool | None = None,
        fixed_text: bool | None = None,
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        if requester_action is not None:
            self.requester_action = requester_action
        if outcome_unknown is not None:
            self.outcome_unknown = outcome_unknown
        if fixed_text is not None:
            self.fixed_text = fixed_text

    @property
    def message(self) -> str:
        return str(self)


class Unreachable(ConnectorError):
    """The target could not be reached (connection refused, DNS, TLS handshake)."""

    reason = "unreachable"
    transient = True


class Timeout(ConnectorError):
    """The target did not answer within the step's timeout."""

    reason = "timeout"
    transient = True


class Interrupted(ConnectorError):
    """The run was stopped by its operator (Ctrl-C, SIGTERM) while this step's action ran. A
    connector with remote work in flight stops it first (security.md 50: an SSH command's
    process group killed, a WinRM command terminated and its shell deleted) and says in
    ``cleanup_confirmed`` whether that was confirmed; what the action had done by then is
    not known."""

    reason = "interrupted"
    outcome_unknown = True
    cleanup_confirmed: bool | None = None

    @classmethod
    def after_cleanup(cls, what: str, confirmed: bool, *, done: str, not_done: str) -> Interrupted:
        """``"<what> was interrupted; <done or not_done>"``, with ``cleanup_confirmed`` set."""
        error = cls(f"{what} was interrupted; {done if confirmed else not_done}")
        error.cleanup_confirmed = confirmed
        return error


class AuthFailed(ConnectorError):
    """The connector's own service credentials were refused by the target."""

    reason = "auth_failed"


class Rejected(ConnectorError):
    """The target refused the operation and said why (policy, permissions, state)."""

    reason = "rejected"


class NotFound(Rejected):
    """The object the action names does not exist on the target."""

    reason = "not_found"


class InvalidInput(ConnectorError):
    """A parameter was refused by the connector before anything was sent."""

    reason = "invalid_input"


@dataclass(frozen=True)
class InputSpec:
    """One declared input of an action. ``secret`` inputs are never logged or stored."""

    name: str
    type: InputType = "str"
    required: bool = True
    secret: bool = False
    max_length: int = 4096


@dataclass(frozen=True)
class ActionSpec:
    """What an action takes, what it returns, and whether it changes the target.

    ``secret_outputs`` name result keys (e.g. a generated temporary password) that the
    runner hands to the requester once and redacts everywhere else.
    """

    name: str
    inputs: tuple[InputSpec, ...] = ()
    outputs: frozenset[str] = frozenset()
    secret_outputs: frozenset[str] = frozenset()
    changes_state: bool = False
    description: str = ""
    input_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_names", frozenset(i.name for i in self.inputs))

    @property
    def secret_inputs(self) -> frozenset[str]:
        return frozenset(i.name for i in self.inputs if i.secret)

    def check_inputs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validate *values* against the declared inputs; raise ``InvalidInput``."""
        unknown = set(values) - self.input_names
        if unknown:
            raise InvalidInput(f"{self.name}: unknown input(s) {', '.join(sorted(unknown))}")
        out: dict[str, Any] = {}
        for spec in self.inputs:
            if spec.name not in values or values[spec.name] is None:
                if spec.required:
                    raise InvalidInput(f"{self.name}: input '{spec.name}' is required")
                continue
            value = values[spec.name]
            if spec.type in ("str", "secret"):
                if not isinstance(value, str):
                    value = str(value)
                if len(value) > spec.max_length:
                    raise InvalidInput(f"{self.name}: input '{spec.name}' is longer than {spec.max_length} characters")
                if "\x00" in value:
                    raise InvalidInput(f"{self.name}: input '{spec.name}' contains a NUL character")
            elif spec.type == "int":
                if isinstance(value, bool) or not isinstance(value, int | str):
                    raise InvalidInput(f"{self.name}: input '{spec.name}' must be a whole number")
                try:
                    value = int(value)
                except ValueError as exc:
                    raise InvalidInput(f"{self.name}: input '{spec.name}' must be a whole number") from exc
            elif spec.type == "bool":
                if isinstance(value, str) and value.lower() in ("true", "false"):
                    value = value.lower() == "true"
                if not isinstance(value, bool):
                    raise InvalidInput(f"{self.name}: input '{spec.name}' must be true or false")
            elif spec.type == "list" and not isinstance(value, list | tuple):
                raise InvalidInput(f"{self.name}: input '{spec.name}' must be a list")
            out[spec.name] = value
        return out


SecretResolver = Callable[[Any], str]
"""Turns an inventory credential reference (``{env: NAME}`` or ``{file: PATH}``) into
the secret value, at the moment it is needed. The value is never stored."""


class TargetConfig(BaseModel):
    """Base for a connector's per-target settings, read from the inventory.

    Subclasses add their own fields; unknown keys are errors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    connector: str


class Connector:
    """Base class of every connector.

    Lifecycle: the runner builds one instance per inventory target, enters it as a
    context manager (``open``), calls ``run(action, inputs)`` any number of times —
    possibly across many runs, so keep connections pooled — and finally exits it
    (``close``). ``run`` returns a plain mapping of JSON-able values whose keys are
    listed in the action's ``outputs``.
    """

    name: ClassVar[str]
    actions: ClassVar[Mapping[str, ActionSpec]]
    config_model: ClassVar[type[TargetConfig]] = TargetConfig

    def __init__(self, target_name: str, config: TargetConfig, secrets: SecretResolver) -> None:
        self.target_name = target_name
        self.config = config
        self._secrets = secrets

    def open(self) -> None:
        """Prepare resources (lazy connection setup is fine)."""

    def close(self) -> None:
        """Release every resource; must not raise."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run(self, action: str, inputs: Mapping[str, Any], *, timeout: float) -> dict[str, Any]:
        """Perform *action* with validated *inputs*, within *timeout* seconds.

        Dispatches to the method named like the action. Raise only ``ConnectorError``
        subclasses for expected failures.
        """
        spec = self.actions.get(action)
        if spec is None:
            raise InvalidInput(f"{self.name}: unknown action '{action}'")
        checked = spec.check_inputs(inputs)
        method = getattr(self, action)
        result: dict[str, Any] = method(timeout=timeout, **checked)
        return result

    def check_connection(self, *, timeout: float) -> str | None:
        """Optional: prove the target works as configured — connect, check the server's
        identity (TLS certificate, host key), authenticate with the service credentials and
        do one harmless read. Returns a plain sentence saying what was checked; raises the
        same ``ConnectorError`` subclasses (and messages) as the actions do. The default
        returns ``None``: this connector has no connection check. Used by
        ``firstline inventory check --connect``; must change nothing on the target.
        """
        return None

    def cancel(self) -> bool:
        """Stop remote work of the action in flight, if any; True when confirmed."""
        return True
