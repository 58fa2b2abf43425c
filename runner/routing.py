"""Directory routing: which directory a run acts on, and how an account name picks one.

The inventory declares the directories runbooks may act on::

    directories:
      corp: {label: "Example Org (OpenLDAP)", target: corp, domains: [example.org], netbios: EXAMPLE-ORG}
      ad:   {label: "Example Test (Active Directory)", target: ad, domains: [example.test], netbios: EXAMPLE}

A runbook parameter of type ``directory`` holds one of them. Its value comes from, in
this order: the agent's explicit choice (a key above), the domain of a qualified account
(``alice@example.org`` — the UPN suffix — or ``EXAMPLE\\bob`` — the NetBIOS domain),
the requester's own sign-in name (employees: always, and only, their own directory), and
last the inventory default: the directory whose ``target`` is its connector's default
target (``defaults.ldap: corp`` → the directory on ``corp``), or the only one declared.

Qualified names are read strictly: exactly one ``@`` or one ``\\`` (never both), a
non-empty name that is a valid account name, and a domain that is ASCII, has no trailing
dot and is declared (compared case-insensitively; a Unicode look-alike such as a Cyrillic
``а`` is not ASCII and is refused, never folded). Domains are matched exactly, never as
suffixes: ``sub.example.org`` and ``notexample.org`` are not ``example.org``.

Without a ``directories`` section, the inventory has one implicit directory named after
the default ``ldap`` target (``defaults.ldap``, or the only ``ldap`` target), with no
domains; qualified names are then refused.

Errors: ``ConfigError`` for a malformed section (naming ``directories.<key>.<field>``),
``ParameterError`` for a value that is not a declared directory or domain (listing the
declared ones, never echoing the value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.errors import ConfigError, ParameterError, PolicyDenied, Text

_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
# RFC 1035 LDH labels (a UPN suffix is a DNS name); at most 253 characters, no trailing dot.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
# NetBIOS domain names: at most 15 characters ([MS-ADTS] 3.1.1.1.5 / MS KB 909264).
# Letters, digits and '-' only: the same set runner.safetext.principal accepts for a requester.
_NETBIOS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,14}$")
_FIELDS = frozenset({"label", "target", "domains", "netbios"})
ONE_OF_DIRECTORIES = "%(label)s must be one of the directories: %(names)s"
OWN_DIRECTORY_ONLY = "%(label)s: employees can only act in their own directory"


def param_label(name: str) -> Text:
    """How messages name a runbook parameter (translated with them: ``runner.errors.Text``)."""
    return Text("parameter '%(name)s'", name=name)


DIRECTORY_LABEL = param_label("directory")


@dataclass(frozen=True)
class Directory:
    """One declared directory: its key, a label for people, the inventory target it acts
    on, and the sign-in domains (lower case) and NetBIOS names (upper case) routed to it."""

    key: str
    label: str
    target: str
    domains: tuple[str, ...] = ()
    netbios: tuple[str, ...] = ()
    upn: bool = False  # an Active Directory target: a typed name@domain is a sign-in name (UPN)

    def as_param(self) -> dict[str, Any]:
        """The value a ``directory`` parameter holds in templates (``params.directory.target``)."""
        return {
            "key": self.key,
            "label": self.label,
            "target": self.target,
            "domains": list(self.domains),
            "netbios": list(self.netbios),
        }

    def principal(self, name: str) -> str:
        """The principal the portal records for account *name* of this directory (sign-in,
        ``runner.auth``): the name in lower case, ``@`` the first domain when there is one."""
        name = name.lower()
        return f"{name}@{self.domains[0]}" if self.domains else name


@dataclass(frozen=True)
class Directories:
    """The inventory's directories, with lookup by key, sign-in domain and NetBIOS name."""

    entries: Mapping[str, Directory] = field(default_factory=dict)
    default: str | None = None

    def names(self) -> str:
        return ", ".join(sorted(self.entries)) or "none configured"

    def get(self, key: str, label: str = DIRECTORY_LABEL) -> Directory:
        """The directory named *key*; ``ParameterError`` listing the valid keys otherwise."""
        found = self.entries.get(key)
        if found is None:
            raise ParameterError(ONE_OF_DIRECTORIES, label=label, names=self.names())
        return found

    def _domains(self) -> str:
        shown = sorted({d for e in self.entries.values() for d in e.domains})
        shown += sorted({n for e in self.entries.values() for n in e.netbios})
        return ", ".join(shown) or "none configured"

    def split(self, raw: str, label: str, *, show_known: bool = True, keep_upn: bool = False) -> tuple[str | None, str]:
        """``(directory key or None, bare name)`` of an account as typed.

        ``alice`` → ``(None, "alice")``; ``alice@example.org`` → ``("corp", "alice")``;
        ``EXAMPLE\\bob`` → ``("ad", "bob")``. The bare name is not checked here (the
        caller applies the account-name rule). Raises ``ParameterError`` for two
        separators, an empty side, or a domain that is malformed or not declared (listing
        the declared ones when *show_known*: for agents, not for employees).

        *keep_upn*: ``name@domain`` typed for an Active Directory directory (``Directory.upn``)
        stays whole, the domain in lower case (``("ad", "first.last@example.test")``): on AD
        that is a sign-in name (``userPrincipalName``) whose name part need not be the account
        name, and the ``ldap`` connector looks it up as such. Only for callers that hand the
        name to the connector and take the account name it finds (sign-in, self-service).
        """
        ats, slashes = raw.count("@"), raw.count("\\")
        if ats == 0 and slashes == 0:
            return None, raw
        if ats + slashes != 1:
            raise ParameterError(
                "%(label)s must be a name, name@domain or DOMAIN\\name (one '@' or one '\\', not both or twice)",
                label=label,
            )
        if ats:
            name, domain = raw.split("@")
            key = self._by_domain(domain)
        else:
            domain, name = raw.split("\\")
            key = self._by_netbios(domain)
        if not name:
            raise ParameterError("%(label)s has a domain but no account name", label=label)
        if keep_upn and ats and key is not None and self.entries[key].upn:
            return key, f"{name}@{domain.lower()}"
        if key is None:
            if show_known:
                raise ParameterError(
                    "%(label)s: the domain is not one this service desk serves; known: %(known)s",
                    label=label,
                    known=self._domains(),
                )
            raise ParameterError("%(label)s: the domain is not one this service desk serves", label=label)
        return key, name

    def _by_domain(self, domain: str) -> str | None:
        # ASCII first: str.lower() would fold some non-ASCII letters into ASCII look-alikes
        # (e.g. 'K' KELVIN SIGN → 'k'), so a non-ASCII domain never matches.
        if not domain.isascii() or not _DOMAIN.fullmatch(domain.lower()):
            return None
        wanted = domain.lower()
        return next((e.key for e in self.entries.values() if wanted in e.domains), None)

    def _by_netbios(self, name: str) -> str | None:
        if not name.isascii() or not _NETBIOS.fullmatch(name):
            return None
        wanted = name.upper()
        return next((e.key for e in self.entries.values() if wanted in e.netbios), None)

    def of_requester(self, requester: str, *, keep_upn: bool = False) -> tuple[str | None, str]:
        """Where an employee's own account lives: ``(directory key, bare name)``.

        A qualified requester routes by its domain (``ParameterError`` if undeclared); a
        bare one belongs to the default directory (None when there is none). *keep_upn*: as
        for ``split`` (a sign-in name typed at the portal).
        """
        key, name = self.split(requester, Text("the requester"), show_known=False, keep_upn=keep_upn)
        return (key if key is not None else self.default), name

    def principal(self, raw: str, label: str = "the requester") -> str:
        """The canonical principal for a person named as at sign-in (``alice``,
        ``alice@example.org``, ``EXAMPLE-ORG\\alice``): what the portal records for them
        (``Directory.principal``), so that every entry point (CLI ``--as``, an agent's "on
        behalf of") records one person under one name. A bare name belongs to the default
        directory. Without declared directories the name is kept as given. ``ParameterError``
        for a name that resolves to no declared directory (an undeclared domain, or a bare
        name when several directories are declared and none is the default)."""
        if not self.entries:
            return raw
        key, name = self.split(raw, label)
        if not name:
            raise ParameterError("%(label)s is empty", label=label)
        key = key if key is not None else self.default
        if key is None:
            raise ParameterError(
                "%(label)s: a bare name could be in any of the directories (%(names)s); "
                "give name@domain or DOMAIN\\name (known: %(domains)s)",
                label=label,
                names=self.names(),
                domains=self._domains(),
            )
        return self.entries[key].principal(name)

    def search_forms(self, raw: str) -> tuple[str, ...]:
        """Every stored form a person filter *raw* stands for (``runner.queries``): *raw* as
        given, and for each directory it could name (its domain's, or all of them for a bare
        name) the canonical principal and the ``NETBIOS\\name`` form, plus the bare name in
        lower case for the default directory (requesters recorded before entry points
        recorded canonical principals). A name that matches no declared directory form is
        searched as given. In the order found, without repeats."""
        forms = [raw]
        try:
            key, name = self.split(raw, "person")
        except ParameterError:
            return (raw,)
        if not name:
            return (raw,)
        low = name.lower()
        keys = [key] if key is not None else list(self.entries)
        for k in keys:
            d = self.entries[k]
            forms.append(d.principal(name))
            forms.extend(f"{n}\\{low}" for n in d.netbios)
            if key is not None and k == self.default:
                forms.append(low)
        if key is None:
            forms.append(low)
        return tuple(dict.fromkeys(forms))


def parse_directories(raw: Any, targets: Mapping[str, Any], defaults: Mapping[str, str]) -> Directories:
    """Validate the inventory's ``directories`` section (None: the implicit one, see module doc).

    *targets* maps target names to their configs (with a ``connector`` attribute);
    *defaults* is the inventory's ``defaults`` (connector → target).
    """
    if raw is None:
        target = defaults.get("ldap")
        if target is None:
            ldap = [n for n, t in targets.items() if getattr(t, "connector", None) == "ldap"]
            target = ldap[0] if len(ldap) == 1 else None
        if target is None:
            return Directories()
        return Directories({target: Directory(target, target, target)}, target)
    if not isinstance(raw, dict):
        raise ConfigError("inventory: directories must be a mapping of name → {target, label, domains, netbios}")
    entries: dict[str, Directory] = {}
    seen_domains: dict[str, str] = {}
    seen_netbios: dict[str, str] = {}
    for key, spec in raw.items():
        where = f"inventory: directories.{key}"
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ConfigError(f"{where}: names are lower case letters, digits, '_' and '-' (starting with a letter)")
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping with at least 'target'")
        unknown = sorted(set(map(str, spec)) - _FIELDS)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; fields: {', '.join(sorted(_FIELDS))}")
        target = spec.get("target")
        if not isinstance(target, str) or target not in targets:
            raise ConfigError(f"{where}.target must name a target of the inventory")
        label = spec.get("label", key)
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise ConfigError(f"{where}.label must be a short text")
        domains = _names(spec.get("domains"), f"{where}.domains")
        for d in domains:
            if not d.isascii() or d.endswith(".") or not _DOMAIN.fullmatch(d.lower()):
                raise ConfigError(f"{where}.domains: '{d[:64]}' is not a DNS domain (ASCII, no trailing dot)")
        netbios = _names(spec.get("netbios"), f"{where}.netbios")
        for n in netbios:
            if not _NETBIOS.fullmatch(n):
                raise ConfigError(f"{where}.netbios: '{n[:64]}' is not a NetBIOS domain name (1–15 characters)")
        low = tuple(d.lower() for d in domains)
        up = tuple(n.upper() for n in netbios)
        for d in low:
            if d in seen_domains:
                raise ConfigError(f"{where}.domains: {d} is already routed to directories.{seen_domains[d]}")
            seen_domains[d] = key
        for n in up:
            if n in seen_netbios:
                raise ConfigError(f"{where}.netbios: {n} is already routed to directories.{seen_netbios[n]}")
            seen_netbios[n] = key
        config = targets[target]
        upn = getattr(config, "connector", "") == "ldap" and getattr(config, "flavor", "") == "active_directory"
        entries[key] = Directory(key, label.strip(), target, low, up, upn)
    by_default = [
        e.key for e in entries.values() if defaults.get(getattr(targets[e.target], "connector", "")) == e.target
    ]
    default = by_default[0] if len(by_default) == 1 else (next(iter(entries)) if len(entries) == 1 else None)
    return Directories(entries, default)


def _names(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a name or a list of names")
    return list(value)


def same_account_name(a: str, b: str) -> bool:
    """Do *a* and *b* name the same account? Directories match account names without regard
    to case; ASCII letters only are folded here (``str.lower`` would fold the KELVIN SIGN into
    ``k``, a name the directory may hold as another account)."""
    return a == b or (a.isascii() and b.isascii() and a.lower() == b.lower())


def resolve(
    dirs: Directories,
    *,
    param: str,
    explicit: Any,
    implied: Mapping[str, str | None],
    accounts: Mapping[str, str],
    requester: str,
    employee: bool,
) -> Directory:
    """The directory a run acts on (rules in the module docstring).

    *explicit* is the raw value given for the ``directory`` parameter *param* (None or ""
    when not given); *implied* maps account parameters to the directory their domain
    named (None when bare); *accounts* maps account parameters to their bare names.
    Raises ``ParameterError`` for an unknown or contradictory choice and ``PolicyDenied``
    when an employee names another directory or another account than their own.
    """
    label = param_label(param)
    chosen: str | None = None
    if explicit not in (None, ""):
        if employee and (not isinstance(explicit, str) or explicit not in dirs.entries):
            # employees have exactly one directory: no list of the others
            raise PolicyDenied(OWN_DIRECTORY_ONLY, label=label)
        if not isinstance(explicit, str):
            raise ParameterError(ONE_OF_DIRECTORIES, label=label, names=dirs.names())
        chosen = dirs.get(explicit, label).key
    named = {k for k in implied.values() if k is not None}
    if employee:  # first: an employee's other choice is a policy refusal, not a typing error
        own, own_name = dirs.of_requester(requester)
        if own is None:
            raise PolicyDenied(
                "your sign-in name does not say which directory holds your account; ask the service desk"
            )
        if any(k != own for k in (chosen, *named) if k is not None):
            raise PolicyDenied(OWN_DIRECTORY_ONLY, label=label)
        for pname, name in accounts.items():
            if not same_account_name(name, own_name):
                raise PolicyDenied("%(label)s: employees can only act on their own account", label=param_label(pname))
        return dirs.entries[own]
    if len(named) > 1:
        raise ParameterError("the accounts given belong to different directories; one run acts on one directory")
    from_account = next(iter(named), None)
    if chosen is not None and from_account is not None and chosen != from_account:
        raise ParameterError("%(label)s and the account's domain point to different directories", label=label)
    chosen = chosen or from_account or dirs.default
    if chosen is None:
        raise ParameterError(
            "%(label)s is required: choose one of the directories: %(names)s", label=label, names=dirs.names()
        )
    return dirs.entries[chosen]


def steps_outside(runbook: Any, connector: str) -> list[str]:
    """Steps of *runbook* that use *connector* (the chosen directory's) without taking their
    target from the directory parameter (``target: "{{ params.<name>.target }}"``): such a
    step would act on the inventory default while the ticket names another directory."""
    param = runbook.directory_param
    bad = []
    for step in [*runbook.steps, *([runbook.verify] if runbook.verify is not None else [])]:
        if step.spec.connector != connector:
            continue
        refs = step.target.refs if step.target is not None else ()
        if not any(r.root == "params" and r.name == param and r.attr == "target" for r in refs):
            bad.append(step.id)
    return bad


def runbook_problems(runbook: Any, dirs: Directories, targets: Mapping[str, Any]) -> list[str]:
    """What stops *runbook* (a ``runner.runbook.Runbook``) from acting correctly in every
    declared directory: none declared, or steps on a directory's connector that do not
    take their target from the directory parameter. Empty for runbooks without one."""
    if runbook.directory_param is None:
        return []
    if not dirs.entries:
        return [f"runbook {runbook.name}: parameter {runbook.directory_param}: the inventory declares no directories"]
    problems = []
    for connector in sorted({getattr(targets[d.target], "connector", "") for d in dirs.entries.values()}):
        stray = steps_outside(runbook, connector)
        if stray:
            problems.append(
                f"runbook {runbook.name}: step(s) {', '.join(stray)} use connector '{connector}' without "
                f'target: "{{{{ params.{runbook.directory_param}.target }}}}"'
            )
    return problems
