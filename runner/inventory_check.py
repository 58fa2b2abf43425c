"""``firstline inventory check [--connect]``: is the inventory usable, and do its targets work?

Two levels (issue 7, item 22):

* **valid** — every problem is reported at once, each naming the exact field
  (``targets.corp.password: file ../x not readable (No such file or directory)``):
  YAML, connector names, each target's settings (its connector's ``config_model``),
  secret references (shape, environment variable set, file readable UTF-8 text, not
  empty), CA / known_hosts paths, ``defaults`` (known connector, target of that
  connector), ``choices`` (target exists, value in the target's allow-list:
  ``queue`` → ``allowed_queues``, ``service`` → ``allowed_services``, ``path`` →
  ``cleanup_paths``) and the rest ``runner.inventory.load_inventory`` checks
  (directories). No value is ever shown, only where it is.
* **reachable** (``--connect``) — each target's connector ``check_connection`` is run:
  connect, verify the server (TLS certificate / host key), authenticate with the
  service credentials, one harmless read. The result per target carries the same
  messages the connectors give in a run (TLS, authentication, unreachable). A
  connector without a check is reported as "not checked".

``InventoryReport.exit_code``: 0 all valid (and, with ``--connect``, every checked
target works), 1 valid but some target failed, 2 invalid inventory.

``runbook_problems`` cross-checks runbooks against the inventory for
``firstline runbooks check``: every step's connector has a target (its own or the
default), a fixed ``target`` exists and belongs to that connector, and each
``choice`` parameter's ``source`` exists in ``choices``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connectors.base import Connector, ConnectorError, TargetConfig
from runner import routing, yamlsource
from runner.clitexts import N_
from runner.errors import ConfigError, FirstlineError, Text
from runner.inventory import (
    Inventory,
    InventoryTooLarge,
    kind_problem,
    load_inventory,
    read_inventory_text,
    unknown_sections,
)
from runner.redaction import (
    Scrubber,
    describe_yaml_error,
    is_secret_setting,
    safe_validation_errors,
    secret_field_message,
)
from runner.secrets import SecretStore

__all__ = ["InventoryReport", "TargetResult", "check_inventory", "runbook_problems"]

# Option keys in ``choices`` and the target setting that allow-lists them.
ALLOW_LISTS = {"queue": "allowed_queues", "service": "allowed_services", "path": "cleanup_paths"}
# Settings that name a file by a plain string, and what the string is relative to.
PATH_FIELDS_RELATIVE_TO_INVENTORY = frozenset({"known_hosts", "ca_trust"})
PATH_FIELDS_AS_GIVEN = frozenset({"ca_file"})


@dataclass(frozen=True)
class TargetResult:
    """The outcome of one target's connection check. ``ok`` None: not checked."""

    target: str
    connector: str
    ok: bool | None
    message: str
    reason: str | None = None


@dataclass
class InventoryReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    results: list[TargetResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.problems:
            return 2
        return 1 if any(r.ok is False for r in self.results) else 0


def check_inventory(
    path: Path,
    connectors: Mapping[str, type[Connector]],
    *,
    connect: bool = False,
    timeout: float = 10.0,
) -> InventoryReport:
    """Validate the inventory at *path* (and, with *connect*, check every target).

    Never raises for a problem in the inventory: problems are in ``report.problems``, each
    ``where: what`` without the file (``targets.corp.port: ...``, ``not UTF-8 text``): the
    caller names the file once in front (``firstline inventory check``, ``runbooks lint``).
    """
    report = InventoryReport(path)
    try:
        raw = yamlsource.load_plain(read_inventory_text(path)) or {}
    except OSError as exc:
        report.problems.append(Text(N_("cannot be read: %(reason)s"), reason=Text(exc.strerror or "")))
        return report
    except InventoryTooLarge as exc:
        report.problems.append(str(exc))
        return report
    except UnicodeDecodeError:
        report.problems.append(Text(N_("not UTF-8 text")))
        return report
    except yaml.YAMLError as exc:
        report.problems.append(Text(N_("not valid YAML: %(problem)s"), problem=describe_yaml_error(exc)))
        return report
    if not isinstance(raw, dict):
        report.problems.append(Text(N_("expected a mapping at the top")))
        return report
    base = path.parent
    configs = _targets(raw, connectors, report.problems)
    for name, cfg in configs.items():
        report.problems.extend(_references(f"targets.{name}", cfg.model_dump(), base))
    if report.problems:
        # Still check defaults and choices against the targets that are valid, so that
        # every problem is reported in one go; targets that are invalid are skipped there.
        partial = _partial(path, raw, configs)
        if partial is not None:
            report.problems.extend(_defaults(raw, partial, connectors))
            report.problems.extend(_choices(partial))
        return report
    try:
        inventory = load_inventory(path, connectors)
    except ConfigError as exc:
        report.problems.append(str(exc).removeprefix("inventory: "))
        return report
    report.targets = list(inventory.targets)
    report.problems.extend(_defaults(raw, inventory, connectors))
    report.problems.extend(_choices(inventory))
    if report.problems or not connect:
        return report
    report.results = [_connect(name, cfg, connectors, base, timeout) for name, cfg in inventory.targets.items()]
    return report


def _targets(raw: Mapping[str, Any], connectors: Mapping[str, type[Connector]], problems: list[str]) -> dict[str, Any]:
    unknown = set(raw) - {"defaults", "targets", "choices", "directories"}
    if unknown:
        problems.append(unknown_sections(unknown))
    targets = raw.get("targets") or {}
    if not isinstance(targets, dict):
        problems.append(Text(N_("targets: expected a mapping of target names")))
        return {}
    if not targets and not unknown:
        # An empty file (a wrong path, a truncated copy) is no working inventory: every
        # runbook step acts on a target. (With unknown sections, those are the problem.)
        problems.append(Text(N_("targets: none are defined; every runbook step acts on a target")))
        return {}
    out: dict[str, TargetConfig] = {}
    for name, spec in targets.items():
        where = f"targets.{name}"
        if not isinstance(spec, dict) or "connector" not in spec:
            problems.append(Text(N_("%(where)s: needs a 'connector'"), where=where))
            continue
        cls = connectors.get(str(spec["connector"]))
        if cls is None:
            problems.append(
                Text(
                    N_("%(where)s.connector: unknown connector '%(name)s'; available: %(known)s"),
                    where=where,
                    name=str(spec["connector"])[:40],
                    known=", ".join(sorted(connectors)),
                )
            )
            continue
        try:
            out[str(name)] = cls.config_model.model_validate(spec)
        except ValidationError as exc:
            for loc, msg, kind in safe_validation_errors(exc):
                here = f"{where}.{'.'.join(str(p) for p in loc)}"
                said = Text(secret_field_message(loc, msg, kind))  # pydantic's sentence: translated when known
                problems.append(Text("%(where)s: %(problem)s", where=here, problem=said))
    return out


def _partial(path: Path, raw: Mapping[str, Any], configs: Mapping[str, TargetConfig]) -> Inventory | None:
    defaults, choices = raw.get("defaults") or {}, raw.get("choices") or {}
    if not isinstance(defaults, dict) or not isinstance(choices, dict):
        return None
    invalid = set(map(str, raw.get("targets") or {})) - set(configs)  # declared, but reported already
    known = {str(k): str(v) for k, v in defaults.items() if str(v) not in invalid}
    valid_choices = {
        source: {
            key: opt
            for key, opt in (options or {}).items()
            if not isinstance(opt, dict) or opt.get("target") not in invalid
        }
        for source, options in choices.items()
        if isinstance(options, dict) or options is None
    }
    return Inventory(path=path, targets=configs, defaults=known, choices=valid_choices)


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("env", "file")


def _references(where: str, settings: Mapping[str, Any], base: Path) -> Iterable[str]:
    for key, value in settings.items():
        here = f"{where}.{key}"
        if value is None:
            continue
        if isinstance(value, dict) and (is_secret_setting(key) or _is_reference(value) or set(value) & {"env", "file"}):
            problem = _reference_problem(value, base)
            if problem:
                yield Text("%(where)s: %(problem)s", where=here, problem=problem)
        elif isinstance(value, str) and key in PATH_FIELDS_RELATIVE_TO_INVENTORY | PATH_FIELDS_AS_GIVEN:
            path = Path(value)
            shown = value
            if key in PATH_FIELDS_RELATIVE_TO_INVENTORY and not path.is_absolute():
                path = base / path
            problem = _file_problem(path, shown)
            if problem:
                yield Text("%(where)s: %(problem)s", where=here, problem=problem)


def _reference_problem(ref: Mapping[str, Any], base: Path) -> str | None:
    if not _is_reference(ref):
        return Text(N_("a secret must be a reference {env: NAME} or {file: PATH} (exactly one), never inline"))
    ((kind, where),) = ref.items()
    if not isinstance(where, str) or not where:
        if kind == "env":
            return Text(N_("env: must name an environment variable"))
        return Text(N_("file: must name a file"))
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            return Text(N_("environment variable %(name)s is not set"), name=where)
        return Text(N_("environment variable %(name)s is empty"), name=where) if not value else None
    path = Path(where)
    return _file_problem(path if path.is_absolute() else base / path, where)


def _file_problem(path: Path, shown: str) -> str | None:
    try:
        text = path.read_bytes()
    except OSError as exc:
        return Text(N_("file %(file)s not readable (%(reason)s)"), file=shown, reason=Text(exc.strerror or ""))
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return Text(N_("file %(file)s is not UTF-8 text"), file=shown)
    return Text(N_("file %(file)s is empty"), file=shown) if not text.strip() else None


def _defaults(raw: Mapping[str, Any], inventory: Inventory, connectors: Mapping[str, type[Connector]]) -> list[str]:
    problems: list[str] = []
    for conn, name in inventory.defaults.items():
        if name not in inventory.targets:
            problems.append(
                Text(N_("defaults.%(connector)s names unknown target '%(name)s'"), connector=conn, name=name)
            )
        elif conn not in connectors:
            problems.append(
                Text(
                    N_("defaults.%(connector)s: unknown connector '%(connector)s'; available: %(known)s"),
                    connector=conn,
                    known=", ".join(sorted(connectors)),
                )
            )
        elif name in inventory.targets and inventory.targets[name].connector != conn:
            problems.append(
                Text(
                    N_("defaults.%(connector)s: target '%(name)s' is a %(kind)s target, not %(connector)s"),
                    connector=conn,
                    name=name,
                    kind=inventory.targets[name].connector,
                )
            )
    return problems


def _choices(inventory: Inventory) -> list[str]:
    problems: list[str] = []
    for source, options in inventory.choices.items():
        if not isinstance(options, dict):
            problems.append(Text(N_("choices.%(source)s: expected a mapping of options"), source=source))
            continue
        for key, option in options.items():
            here = f"choices.{source}.{key}"
            if not isinstance(option, dict):
                problems.append(Text(N_("%(where)s: expected a mapping (label, target, ...)"), where=here))
                continue
            if "label" not in option:
                problems.append(Text(N_("%(where)s: needs a 'label' (what the requester sees)"), where=here))
            target = option.get("target")
            if target is None:
                problems.append(Text(N_("%(where)s: needs a 'target'"), where=here))
                continue
            if target not in inventory.targets:
                problems.append(Text(N_("%(where)s names unknown target '%(name)s'"), where=here, name=target))
                continue
            cfg = inventory.targets[target]
            wrong_kind = kind_problem(here, option, cfg)
            if wrong_kind is not None:
                problems.append(wrong_kind)
            for opt_key, setting in ALLOW_LISTS.items():
                if opt_key not in option or not hasattr(cfg, setting):
                    continue
                allowed = getattr(cfg, setting)
                if allowed is None:
                    continue
                value = str(option[opt_key])
                names = [str(a) for a in allowed]
                match = value.casefold() in {a.casefold() for a in names} if opt_key != "path" else value in names
                if not match:
                    problems.append(
                        Text(
                            N_("%(where)s.%(key)s: '%(value)s' is not in targets.%(target)s.%(setting)s (%(names)s)"),
                            where=here,
                            key=opt_key,
                            value=value,
                            target=target,
                            setting=setting,
                            names=", ".join(names),
                        )
                    )
    return problems


GRACE = 1.0
"""Seconds a target's check may run past ``--timeout`` before it is stopped (its connector's
``cancel()``) and reported as not answering: a connector's own connect and read timeouts
(an SSH ``connect_timeout`` of 5 s, WinRM's 30 s) are not all bounded by the check's."""


def _connect(
    name: str, cfg: TargetConfig, connectors: Mapping[str, type[Connector]], base: Path, timeout: float
) -> TargetResult:
    """``_check`` of one target, stopped after *timeout* + ``GRACE`` seconds."""
    made: list[Connector] = []
    found: list[TargetResult] = []
    worker = threading.Thread(
        target=lambda: found.append(_check(name, cfg, connectors, base, timeout, made)),
        name=f"inventory-check-{name}",
        daemon=True,  # a check that ignores cancel() must not keep the command from ending
    )
    worker.start()
    worker.join(timeout + GRACE)
    if found:
        return found[0]
    for conn in made:
        with contextlib.suppress(Exception):
            conn.cancel()
    worker.join(GRACE)
    message = Text(N_("no answer within %(seconds)s s (the check was stopped)"), seconds=f"{timeout:g}")
    return TargetResult(name, cfg.connector, False, message, "timeout")


def _check(
    name: str,
    cfg: TargetConfig,
    connectors: Mapping[str, type[Connector]],
    base: Path,
    timeout: float,
    made: list[Connector],
) -> TargetResult:
    store = SecretStore(base)
    scrub = Scrubber()
    scrub.follow(store.values)
    cls = connectors[cfg.connector]
    try:
        conn = cls(name, cfg, store)
        made.append(conn)
        with conn:
            said = conn.check_connection(timeout=timeout)
    except ConnectorError as exc:
        return TargetResult(name, cfg.connector, False, scrub.text(str(exc)), exc.reason)
    except FirstlineError as exc:
        return TargetResult(name, cfg.connector, False, scrub.text(str(exc)), "config_error")
    except Exception as exc:  # noqa: BLE001 - one broken connector must not hide the other targets
        from runner.oplog import get_logger

        get_logger().exception("inventory.check_crashed", target=name)
        return TargetResult(
            name, cfg.connector, False, f"internal error ({type(exc).__name__}); see the log file", "internal_error"
        )
    if said is None:
        return TargetResult(name, cfg.connector, None, Text(N_("not checked: the connector has no connection check")))
    return TargetResult(name, cfg.connector, True, scrub.text(said))


def runbook_problems(books: Mapping[str, Any], inventory: Inventory) -> list[str]:
    """``file:line``-less problems of *books* (name → ``runner.runbook.Runbook``) against
    *inventory*: ``runbook <name>: step <id>: ...``."""
    problems: list[str] = []
    for name, rb in sorted(books.items()):
        for step in [*rb.steps, *([rb.verify] if rb.verify else [])]:
            connector = step.spec.connector
            fixed = getattr(step.spec, "target", None)
            if step.target is not None:
                if isinstance(fixed, str) and "{" not in fixed:
                    cfg = inventory.targets.get(fixed)
                    if cfg is None:
                        problems.append(
                            Text(
                                N_("runbook %(name)s: step %(step)s: target '%(target)s' is not in the inventory"),
                                name=name,
                                step=step.id,
                                target=fixed,
                            )
                        )
                    elif cfg.connector != connector:
                        problems.append(
                            Text(
                                N_(
                                    "runbook %(name)s: step %(step)s: target '%(target)s' is a %(kind)s target, "
                                    "not %(connector)s"
                                ),
                                name=name,
                                step=step.id,
                                target=fixed,
                                kind=cfg.connector,
                                connector=connector,
                            )
                        )
                continue
            try:
                inventory.default_target(connector)
            except ConfigError as exc:
                problems.append(f"runbook {name}: step {step.id}: {exc}")
        for param in rb.model.parameters:
            source = getattr(param, "source", None)
            if param.type == "choice" and source and source not in inventory.choices:
                problems.append(
                    Text(
                        N_("runbook %(name)s: parameter %(param)s: the inventory has no choices.%(source)s"),
                        name=name,
                        param=param.name,
                        source=source,
                    )
                )
        problems.extend(routing.runbook_problems(rb, inventory.directories, inventory.targets))
    return problems
