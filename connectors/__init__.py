"""Connector plugins for Firstline; the public plugin API is re-exported here."""

from connectors.base import (
    ActionSpec,
    AuthFailed,
    Connector,
    ConnectorError,
    InputSpec,
    InvalidInput,
    NotFound,
    Rejected,
    SecretResolver,
    TargetConfig,
    Timeout,
    Unreachable,
)

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
