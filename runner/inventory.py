"""The inventory: which systems exist, how to reach them, what employees may pick.

```yaml
defaults: {ldap: corp}                 # target used by a step that names none
targets:
  corp: {connector: ldap, flavor: openldap, url: "ldaps://127.0.0.1:6636", ...}
  print-01: {connector: ssh, address: 127.0.0.1, port: 2222, ...}
choices:                               # what a `choice` parameter may offer
  printers:
    office-1: {label: "Office printer 1", target: print-01, queue: office-1}
directories:                           # what a `directory` parameter may act on (runner.routing)
  corp: {label: "Example Org", target: corp, domains: [example.org], netbios: EXAMPLE-ORG}
```

Secrets appear only as references (``{env: NAME}`` / ``{file: PATH}``); relative paths
are relative to the inventory file. Each target's settings are validated by its
connector's ``config_model`` when the inventory loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connectors.base import Connector, TargetConfig
from runner import yamlsource
from runner.errors import ConfigError, NotFoundError
from runner.redaction import describe_yaml_error, safe_validation_errors, secret_field_message
from runner.routing import Directories, parse_directories


@dataclass(frozen=True)
class Inventory:
    path: Path
    targets: Mapping[str, TargetConfig]
    defaults: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    directories: Directories = field(default_factory=Directories)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def target(self, name: str) -> TargetConfig:
        try:
            return self.targets[name]
        except KeyError:
            raise NotFoundError(
                "'%(name)s' is not a target in the inventory %(file)s", name=name, file=self.path.name
            ) from None

    def default_target(self, connector: str) -> str:
        name = self.defaults.get(connector)
        if name is None:
            candidates = [n for n, t in self.targets.items() if t.connector == connector]
            if len(candidates) != 1:
                raise ConfigError(f"inventory: set defaults.{connector} to choose among {candidates}")
            name = candidates[0]
        return name

    def choice(self, source: str, key: str) -> Mapping[str, Any]:
        options = self.choices.get(source)
        if options is None:
            raise ConfigError(f"inventory has no choices.{source}")
        if key not in options:
            raise NotFoundError("'%(key)s' is not one of the %(source)s in the inventory", key=key, source=source)
        return options[key]


MAX_INVENTORY_BYTES = 4 * 1024 * 1024
"""An inventory file is read up to this size (4 MiB; the lab's is 5 KB, a site with thousands
of printers a few hundred KB). A larger file, or a path that leads to a device such as
/dev/zero, is refused before it is parsed, never read whole."""
TOO_LARGE = "too large (an inventory is at most 4 MiB)"


class InventoryTooLarge(ValueError):
    """The inventory file is larger than ``MAX_INVENTORY_BYTES``."""


def read_inventory_text(path: Path) -> str:
    """The inventory's text; ``OSError``, ``UnicodeDecodeError`` or ``InventoryTooLarge``."""
    with path.open("rb") as fh:
        data = fh.read(MAX_INVENTORY_BYTES + 1)
    if len(data) > MAX_INVENTORY_BYTES:
        raise InventoryTooLarge(TOO_LARGE)
    return data.decode("utf-8")


_SECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,39}")


def unknown_sections(keys: Iterable[object]) -> str:
    """``unknown section(s) a, b`` for top-level *keys* the inventory does not have.

    Only keys that look like section names are repeated: a file that is not an inventory
    (``FIRSTLINE_INVENTORY`` pointing at ``/etc/shadow`` or a credentials file) parses into
    keys that are its content, hashes and passwords included; those are counted, not shown."""
    every = list(keys)
    names = sorted(k for k in every if isinstance(k, str) and _SECTION_NAME.fullmatch(k))
    hidden = len(every) - len(names)
    parts = [", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")] if names else []
    if hidden:
        parts.append(f"{hidden} key(s) that are not section names (not shown; is this file an inventory?)")
    return "unknown section(s) " + "; ".join(parts)


def _model_error(where: str, exc: ValidationError) -> ConfigError:
    # Never the input value: a password written inline must not reach a message or the log.
    parts = [
        f"{where}.{'.'.join(str(p) for p in loc)}: {secret_field_message(loc, msg, kind)}"
        for loc, msg, kind in safe_validation_errors(exc)
    ]
    return ConfigError("inventory: " + "; ".join(parts))


# What a host choice's ``kind`` says (the runbooks' step conditions compare it: ``params.printer.kind
# == 'cups'``) and the connectors of the targets it fits. A kind no step names skipped every
# step of the run, which then resolved having done nothing (``runner.engine``: ``nothing_ran``).
KINDS: dict[str, tuple[str, ...]] = {"cups": ("ssh",), "linux": ("ssh",), "windows": ("winrm",)}
HOST_OPTION_KEYS = ("queue", "service", "path")


def kind_problem(where: str, option: Mapping[str, Any], target: TargetConfig) -> str | None:
    """What is wrong with the ``kind`` of the host choice *option* (at *where*) on *target*,
    or None: on an SSH or WinRM target a host choice (one with a queue, service or path)
    needs one of ``KINDS``, and the kind must fit the target's connector (``windows`` is a
    WinRM target, ``cups`` and ``linux`` SSH targets). Other connectors' choices are theirs."""
    if not any(target.connector in fits for fits in KINDS.values()):
        return None  # another connector's choice (a plugin's): its own runbooks give kind its meaning
    kind = option.get("kind")
    if kind is None:
        if any(k in option for k in HOST_OPTION_KEYS):
            return f"{where}: needs a 'kind' ({', '.join(KINDS)})"
        return None
    if kind not in KINDS:
        return f"{where}.kind: '{str(kind)[:40]}' is not a kind Firstline knows ({', '.join(KINDS)}; lower case)"
    if target.connector not in KINDS[kind]:
        return f"{where}.kind: '{kind}' needs a {' or '.join(KINDS[kind])} target; its target is {target.connector}"
    return None


def load_inventory(path: Path, connectors: Mapping[str, type[Connector]]) -> Inventory:
    try:
        raw = yamlsource.load_plain(read_inventory_text(path)) or {}
    except OSError as exc:
        raise ConfigError(f"inventory {path} cannot be read: {exc.strerror}") from exc
    except InventoryTooLarge:
        raise ConfigError(f"inventory {path} is {TOO_LARGE}") from None
    except UnicodeDecodeError:
        # as `firstline inventory check` says it (a file saved as Latin-1 / Windows-1252)
        raise ConfigError(f"inventory {path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"inventory {path} is not valid YAML: {describe_yaml_error(exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"inventory {path}: expected a mapping at the top")
    unknown = set(raw) - {"defaults", "targets", "choices", "directories"}
    if unknown:
        raise ConfigError(f"inventory {path}: {unknown_sections(unknown)}")
    targets: dict[str, TargetConfig] = {}
    for name, spec in (raw.get("targets") or {}).items():
        if not isinstance(spec, dict) or "connector" not in spec:
            raise ConfigError(f"inventory: targets.{name} needs a 'connector'")
        cls = connectors.get(spec["connector"])
        if cls is None:
            raise ConfigError(
                f"inventory: targets.{name} uses unknown connector '{spec['connector']}'; "
                f"available: {', '.join(sorted(connectors))}"
            )
        try:
            targets[str(name)] = cls.config_model.model_validate(spec)
        except ValidationError as exc:
            raise _model_error(f"targets.{name}", exc) from exc
    defaults = {str(k): str(v) for k, v in (raw.get("defaults") or {}).items()}
    for conn, tname in defaults.items():
        if tname not in targets:
            raise ConfigError(f"inventory: defaults.{conn} names unknown target '{tname}'")
    choices = raw.get("choices") or {}
    for source, options in choices.items():
        for key, opt in (options or {}).items():
            ref = opt.get("target") if isinstance(opt, dict) else None
            if ref is not None and ref not in targets:
                raise ConfigError(f"inventory: choices.{source}.{key} names unknown target '{ref}'")
            if ref is not None and isinstance(opt, dict):
                problem = kind_problem(f"choices.{source}.{key}", opt, targets[ref])
                if problem is not None:
                    raise ConfigError(f"inventory: {problem}")
    directories = parse_directories(raw.get("directories"), targets, defaults)
    return Inventory(path=path, targets=targets, defaults=defaults, choices=choices, directories=directories)
