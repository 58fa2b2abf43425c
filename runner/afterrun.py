"""What follows a finished run, wherever it ran (the portal's pool or a Celery worker).

``after_run(app, outcome)``: a run that set an account's password (``reset_password`` /
``change_password`` step that succeeded) ends every portal session of that account
(``AuthService.end_sessions_of``, audited as ``portal.sessions_ended``): sessions live in
the database, so the worker that ran the fix does it, not the portal process that asked.
"""

from __future__ import annotations

from typing import Any

from runner.oplog import get_logger

PASSWORD_ACTIONS = frozenset({"reset_password", "change_password"})


def end_sessions_after_password_change(app: Any, outcome: Any) -> int:
    """End the portal sessions of each account whose password *outcome*'s steps changed
    (matched to its directory by the step's target); returns how many sessions ended."""
    from runner.auth import AuthService

    by_target = {d.target: d.key for d in app.inventory.directories.entries.values()}
    ended = 0
    for step in outcome.steps:
        if step.action in PASSWORD_ACTIONS and step.status == "ok" and step.target in by_target:
            user = step.inputs.get("user")
            if isinstance(user, str) and user:
                for name in _names_of(outcome.steps, step.target, user):
                    ended += AuthService(app).end_sessions_of(by_target[step.target], name)
    return ended


def _names_of(steps: Any, target: str, user: str) -> list[str]:
    """*user* and the account's own name as a read of it in the same run gave it
    (``account_status`` → ``account``): a person signs in under the entry's own name, so a
    reset asked for by a second uid the entry keeps (an old name after a rename) must end
    those sessions too (``connectors.ldap.LdapConnector._own_name``)."""
    names = [user]
    for step in steps:
        if step.action == "account_status" and step.status == "ok" and step.target == target:
            asked = step.inputs.get("user")
            own = (step.outputs or {}).get("account")
            if isinstance(asked, str) and asked.lower() == user.lower() and isinstance(own, str) and own:
                if own.lower() not in (n.lower() for n in names):
                    names.append(own)
    return names


def after_run(app: Any, outcome: Any) -> None:
    """The after-run rules for *outcome*; a failure is logged, never raised (the run is final)."""
    try:
        end_sessions_after_password_change(app, outcome)
    except Exception:  # noqa: BLE001 - the run itself is done and recorded
        get_logger().exception("run.after_run_failed", ticket=getattr(outcome, "ticket_number", None))
