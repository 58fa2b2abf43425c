"""The runner's error tree, drawn once::

    FirstlineError                 root of every error the runner raises on purpose
    ├── ConfigError                settings, inventory or secret references are wrong
    ├── RunbookError               a runbook file is malformed (carries file:line)
    │   └── NotVetted              the file does not match its approved hash
    ├── ParameterError             a run's parameters were refused (names the field)
    ├── PolicyDenied               the caller may not do this (role, target scope)
    ├── NotFoundError              ticket / runbook / target does not exist
    └── LedgerError                the ticket store or audit chain is unusable

Connector errors (``connectors.base.ConnectorError``) are a separate tree; the engine
turns them into escalations. The portal maps these classes to HTTP in one place.
"""

from __future__ import annotations


class FirstlineError(Exception):
    """Root of the runner's errors; ``str(err)`` is safe to show to people."""

    exit_code = 2


class ConfigError(FirstlineError):
    """Settings, inventory or a secret reference is missing or malformed."""


class RunbookError(FirstlineError):
    """A runbook failed to load; ``problems`` lists ``file:line: message`` entries."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class NotVetted(RunbookError):
    """The runbook file changed since it was approved, or was never approved."""


class ParameterError(FirstlineError):
    """A parameter value was refused; the message names the parameter."""


class PolicyDenied(FirstlineError):
    """The requester may not run this runbook on this target."""


class NotFoundError(FirstlineError):
    """A ticket, runbook or inventory target does not exist."""


class LedgerError(FirstlineError):
    """The ticket store or audit chain cannot be used."""
