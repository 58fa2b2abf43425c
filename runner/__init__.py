"""Firstline's engine: runbooks, vetting, step execution, the ticket and audit ledger."""

__version__ = "0.1.0"
