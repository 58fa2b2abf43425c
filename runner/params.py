"""Parameter validation: raw strings from a form, the API or the CLI → typed values.

Messages name the parameter and never echo the value (it may be hostile or secret).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from runner import routing
from runner.errors import ParameterError, PolicyDenied, RunbookError
from runner.inventory import Inventory
from runner.runbook import ACCOUNT_PATTERN, Parameter, Runbook
from runner.safetext import shown
from runner.templating import Template

_ACCOUNT = re.compile(ACCOUNT_PATTERN)
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
MAX_SECRET = 1024
TOO_LONG = "%(label)s is too long (at most %(max)s characters)"
OWN_ACCOUNT_ONLY = "%(label)s: employees can only act on their own account"

param_label = routing.param_label


UPN_AMBIGUOUS = (
    "%(label)s: more than one account answers to that sign-in name (one has it as its userPrincipalName, "
    "another as its account name); give the account name as DOMAIN\\name"
)
UPN_UNANSWERED = (
    "%(label)s: the directory could not be asked which account has that sign-in name; try again, or give "
    "the account name as DOMAIN\\name"
)
UPN_UNKNOWN = "%(label)s: no account has that sign-in name; give the account name as DOMAIN\\name"


def account_of_upn(inventory: Inventory, directory: routing.Directory, upn: str, label: str) -> str:
    """The account name of the one account a sign-in name (UPN) typed for an Active Directory
    directory names, read from the directory before anything else uses the name.

    On AD ``first.last@example.test`` is the account whose ``userPrincipalName`` it is — its
    account name (``sAMAccountName``) may be anything — or the account named ``first.last``
    (AD's implicit UPN, only under the AD domain's own DNS name: ``connectors.ldap``
    ``LdapConnector._find``). Passing on ``first.last`` could act on a different account than
    the one meant, and the checks that compare names (an agent's own account, one run per
    account at a time, the employee's own account) need the account's one name. So it is
    looked up here: the account found → its account name; none → the name part when the
    UPN's domain is the implicit one (``connectors.ldap.implicit_upn_domain``: the search asked
    for the account of that name too and there is none, so the runbook reports that no such
    account exists), else ``ParameterError`` (``UPN_UNKNOWN``) — never the name part, which may
    be another person's account (``alice@alt.example`` when no account has that UPN is not the
    account alice); two (the UPN of one, the account name of another) → ``ParameterError``,
    never either of them; the directory not answering → ``ParameterError``.
    """
    from connectors.base import ConnectorError, InvalidInput
    from connectors.ldap import LdapTarget, implicit_upn_domain
    from connectors.registry import registry
    from runner.secrets import SecretStore

    name = upn.split("@")[0]
    if not _ACCOUNT.fullmatch(name):
        return name  # refused as not a valid account name by the caller (_one)
    target = inventory.target(directory.target)
    connector = registry()["ldap"](directory.target, target, SecretStore(inventory.base_dir))
    try:
        out = connector.run("account_status", {"user": upn}, timeout=15)
    except InvalidInput:
        return upn  # not a sign-in name the connector takes: refused by the caller (_one), never the name part
    except ConnectorError as exc:
        if exc.reason == "ambiguous":
            raise ParameterError(UPN_AMBIGUOUS, label=label) from None
        raise ParameterError(UPN_UNANSWERED, label=label) from None
    finally:
        connector.close()
    account = str(out.get("account") or "")
    if not out.get("exists"):
        implicit = implicit_upn_domain(target) if isinstance(target, LdapTarget) else None
        if implicit is not None and upn.partition("@")[2].lower() == implicit:
            return name  # no account has this UPN nor is named *name*: the runbook reports it
        raise ParameterError(UPN_UNKNOWN, label=label)
    return account  # one the account-name rule refuses is refused by the caller (_one), never the name part


def secret_has_controls(value: str) -> bool:
    """True when *value* holds a control character (Unicode category Cc: NUL, tab, line
    break...), which no secret parameter may hold (a password is typed on one line)."""
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def _has_controls(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value)


def _one(p: Parameter, raw: Any, inventory: Inventory | None) -> Any:
    label = param_label(p.name)
    if p.type == "bool":
        if isinstance(raw, bool):
            return raw
        s = str(raw).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise ParameterError("%(label)s must be true or false", label=label)
    if p.type == "int":
        if isinstance(raw, bool):
            raise ParameterError("%(label)s must be a whole number", label=label)
        try:
            n = int(str(raw).strip())
        except ValueError:
            raise ParameterError("%(label)s must be a whole number", label=label) from None
        if p.min is not None and n < p.min:
            raise ParameterError("%(label)s must be at least %(min)s", label=label, min=p.min)
        if p.max is not None and n > p.max:
            raise ParameterError("%(label)s must be at most %(max)s", label=label, max=p.max)
        return n
    if not isinstance(raw, str):
        raise ParameterError("%(label)s must be text", label=label)
    limit = MAX_SECRET if p.type == "secret" else p.max_length
    if len(raw) > limit:
        raise ParameterError(TOO_LONG, label=label, max=limit)
    if "\x00" in raw:
        raise ParameterError("%(label)s contains a NUL character", label=label)
    if p.type == "secret":
        if secret_has_controls(raw):
            raise ParameterError("%(label)s contains control characters", label=label)
        return raw
    if _has_controls(raw):
        raise ParameterError("%(label)s contains control or invisible formatting characters", label=label)
    if p.type == "account":
        if not _ACCOUNT.fullmatch(raw):
            raise ParameterError(
                "%(label)s is not a valid account name (letters, digits, '.', '_' and '-', "
                "starting with a letter or digit, at most 64)",
                label=label,
            )
        return raw
    if p.type == "enum":
        assert p.values is not None
        if raw not in p.values:
            raise ParameterError("%(label)s must be one of: %(values)s", label=label, values=", ".join(p.values))
        return raw
    if p.type == "choice":
        assert p.source is not None
        if inventory is None:
            raise ParameterError("%(label)s: no inventory is configured", label=label)
        options = inventory.choices.get(p.source, {})
        if raw not in options:
            if not options:
                raise ParameterError("%(label)s: no %(source)s are configured", label=label, source=p.source)
            offered = ", ".join(sorted(options))
            raise ParameterError(
                "%(label)s must be one of the choices offered: %(offered)s",
                label=label,
                source=p.source,
                offered=offered,
            )
        return {**options[raw], "key": raw}
    if p.pattern is not None and not re.fullmatch(p.pattern, raw):
        raise ParameterError("%(label)s does not have the expected format", label=label)
    return raw


def validate(
    runbook: Runbook,
    raw: Mapping[str, Any],
    *,
    requester: str,
    roles: frozenset[str],
    channel: str,
    inventory: Inventory | None,
) -> dict[str, Any]:
    """Typed parameter values, with defaults applied and self-service scope enforced."""
    known = runbook.param_index
    unknown = sorted(set(raw) - set(known))
    if unknown:
        # each name as one visible line, cut at 64 characters; at most five named
        named = ", ".join(shown(name, 64) for name in unknown[:5]) + (", …" if len(unknown) > 5 else "")
        if not known:
            raise ParameterError("unknown parameter(s): %(unknown)s; this runbook takes none", unknown=named)
        raise ParameterError(
            "unknown parameter(s): %(unknown)s; this runbook takes: %(known)s",
            unknown=named,
            known=", ".join(known),
        )
    employee = "agent" not in roles and "admin" not in roles
    # A runbook with a `directory` parameter reads accounts as name, name@domain or
    # DOMAIN\name and acts in one routed directory (runner.routing).
    dirs = inventory.directories if runbook.directory_param is not None and inventory is not None else None
    implied: dict[str, str | None] = {}
    out: dict[str, Any] = {}
    for p in runbook.model.parameters:
        value = raw.get(p.name)
        if employee and "self_service" not in p.settable_by and value not in (None, ""):
            raise PolicyDenied("%(label)s can only be set by the service desk", label=param_label(p.name))
        if p.type == "directory":
            out[p.name] = value  # resolved below, once the accounts are known
            continue
        if value is None or value == "":
            if p.default is not None:
                value = Template(p.default).render({"requester": requester, "channel": channel})
            elif p.required:
                raise ParameterError("%(label)s is required", label=param_label(p.name))
            else:
                out[p.name] = None
                continue
        if p.type == "account" and dirs is not None and isinstance(value, str):
            if len(value) > p.max_length:
                raise ParameterError(TOO_LONG, label=param_label(p.name), max=p.max_length)
            implied[p.name], value = dirs.split(value, param_label(p.name), show_known=not employee, keep_upn=True)
            if "@" in value:  # a sign-in name (UPN) typed for an Active Directory directory
                assert inventory is not None and implied[p.name] is not None
                value = account_of_upn(inventory, dirs.get(str(implied[p.name])), value, param_label(p.name))
        typed = _one(p, value, inventory)
        if employee and dirs is None and p.type == "account" and not routing.same_account_name(str(typed), requester):
            raise PolicyDenied(OWN_ACCOUNT_ONLY, label=param_label(p.name))
        out[p.name] = typed
    if runbook.directory_param is not None:
        _route(runbook, out, implied, requester=requester, employee=employee, inventory=inventory)
    return out


def _route(
    runbook: Runbook,
    out: dict[str, Any],
    implied: Mapping[str, str | None],
    *,
    requester: str,
    employee: bool,
    inventory: Inventory | None,
) -> None:
    """Replace the raw ``directory`` value in *out* by the routed directory (runner.routing)."""
    name = runbook.directory_param
    assert name is not None
    if inventory is None:
        raise ParameterError("%(label)s: no inventory is configured", label=param_label(name))
    accounts = {k: v for k, v in out.items() if k in implied and isinstance(v, str)}
    chosen = routing.resolve(
        inventory.directories,
        param=name,
        explicit=out.get(name),
        implied=implied,
        accounts=accounts,
        requester=requester,
        employee=employee,
    )
    connector = inventory.target(chosen.target).connector
    stray = routing.steps_outside(runbook, connector)
    if stray:
        raise RunbookError(
            [
                f"{runbook.path}: step(s) {', '.join(stray)} use connector '{connector}' without "
                f'target: "{{{{ params.{name}.target }}}}"; they would act outside directory {chosen.key}'
            ]
        )
    out[name] = chosen.as_param()
