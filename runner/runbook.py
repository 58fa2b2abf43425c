"""Runbook model and loader: YAML → frozen, fully cross-checked ``Runbook``.

Every problem is reported as ``file:line: message``. See docs/runbooks.md for the format.
"""

from __future__ import annotations

import hashlib
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.base import ActionSpec, Connector
from runner import yamlsource
from runner.errors import RunbookError
from runner.redaction import safe_validation_errors
from runner.templating import Template, TemplateProblem, compile_value, iter_templates

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", max_length=64)]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
ParamType = Literal["string", "int", "bool", "enum", "account", "secret", "choice", "directory"]
# client_ip and portal_url: the request's client address and Settings.public_base_url (notifications, security.md
# item 36); a runner that does not set them leaves them undefined, so use them with `| default('')`
TEMPLATE_ROOTS = frozenset({"params", "steps", "requester", "channel", "via", "ticket", "client_ip", "portal_url"})
ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    """A user-facing text in English (required) and Dutch."""

    en: str = Field(min_length=1, max_length=500)
    nl: str | None = Field(default=None, max_length=500)

    def get(self, lang: str) -> str:
        return (self.nl if lang == "nl" else None) or self.en


class Parameter(_Model):
    """A typed runbook parameter; the portal's form and the CLI are built from these."""

    name: Ident
    type: ParamType
    label: Text | None = None
    help: Text | None = None
    default: str | int | bool | None = None
    required: bool = True
    pattern: str | None = None
    max_length: int = Field(default=256, ge=1, le=4096)
    min: int | None = None
    max: int | None = None
    values: tuple[str, ...] | None = None
    source: Ident | None = None
    settable_by: tuple[Literal["self_service", "agent"], ...] = ("self_service", "agent")

    @model_validator(mode="after")
    def _per_type(self) -> Parameter:
        t = self.type
        if self.pattern is not None:
            if t != "string":
                raise ValueError("'pattern' is only allowed for type string")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"'pattern' is not a valid regular expression: {exc}") from exc
        if (self.values is None) == (t == "enum"):
            raise ValueError("type enum needs 'values'" if t == "enum" else "'values' is only for type enum")
        if (self.source is None) == (t == "choice"):
            raise ValueError("type choice needs 'source'" if t == "choice" else "'source' is only for type choice")
        if (self.min is not None or self.max is not None) and t != "int":
            raise ValueError("'min'/'max' are only for type int")
        if t == "secret" and self.default is not None:
            raise ValueError("a secret parameter cannot have a default")
        if t == "directory" and self.default is not None:
            raise ValueError("a directory parameter cannot have a default (it is routed; see docs/runbooks.md)")
        return self


class Step(_Model):
    """One call of a connector action; ``with`` values are templates."""

    id: Ident
    title: Text | None = None
    connector: Ident
    action: Ident
    target: str | None = None
    with_: dict[Ident, Any] = Field(default_factory=dict, alias="with")
    when: str | None = None
    timeout: float | None = Field(default=None, gt=0, le=3600)
    retries: int = Field(default=0, ge=0, le=3)


class Verify(_Model):
    """A read-back after the steps; every ``expect`` key must equal the action's output."""

    connector: Ident
    action: Ident
    target: str | None = None
    with_: dict[Ident, Any] = Field(default_factory=dict, alias="with")
    expect: dict[Ident, str | int | bool | None] = Field(min_length=1)
    when: str | None = None
    timeout: float | None = Field(default=None, gt=0, le=3600)


class OnFailure(_Model):
    escalate_to: Slug


class NoteText(_Model):
    """A resolution note template in English (required, what the ticket keeps) and Dutch."""

    en: str = Field(min_length=1, max_length=2000)
    nl: str | None = Field(default=None, min_length=1, max_length=2000)


class Resolution(_Model):
    code: Ident = "solved_by_automation"
    note: str | NoteText = Field(union_mode="left_to_right")

    @property
    def note_texts(self) -> dict[str, str]:
        """Language → note template; ``en`` always."""
        if isinstance(self.note, str):
            return {"en": self.note}
        return {k: v for k, v in (("en", self.note.en), ("nl", self.note.nl)) if v}


class RunbookModel(_Model):
    schema_version: Literal[1]
    name: Slug
    title: Text
    description: Text | None = None
    category: str = Field(pattern=r"^[a-z][a-z0-9_-]*(/[a-z][a-z0-9_-]*)*$", max_length=100)
    type: Literal["incident", "request"] = "request"
    audience: tuple[Literal["self_service", "agent"], ...] = Field(min_length=1)
    phrases: dict[Literal["en", "nl"], tuple[str, ...]] = Field(default_factory=dict)
    parameters: tuple[Parameter, ...] = ()
    steps: tuple[Step, ...] = Field(min_length=1)
    verify: Verify | None = None
    on_failure: OnFailure
    resolution: Resolution


@dataclass(frozen=True)
class CompiledStep:
    spec: Step | Verify
    action: ActionSpec
    target: Template | None
    inputs: dict[str, Any]
    when: Template | None
    index: int

    @property
    def id(self) -> str:
        return self.spec.id if isinstance(self.spec, Step) else "verify"


@dataclass(frozen=True)
class Runbook:
    """A loaded, cross-checked runbook plus its file's SHA-256 (what vetting approves)."""

    model: RunbookModel
    path: Path
    sha256: str
    steps: tuple[CompiledStep, ...]
    verify: CompiledStep | None
    note: Template
    param_index: Mapping[str, Parameter] = field(default_factory=dict)
    notes: Mapping[str, Template] = field(default_factory=dict)  # other languages of ``note`` (``nl``)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def secret_params(self) -> frozenset[str]:
        return frozenset(p.name for p in self.model.parameters if p.type == "secret")

    @property
    def directory_param(self) -> str | None:
        """The name of the runbook's ``directory`` parameter (at most one), or None."""
        return next((p.name for p in self.model.parameters if p.type == "directory"), None)


MAX_RUNBOOK_BYTES = 1_048_576
"""A runbook file larger than this is refused unread (the shipped ones are about 10 KB)."""


def read_runbook_file(path: Path) -> bytes:
    """The file's bytes, at most ``MAX_RUNBOOK_BYTES`` + 1 of them (a larger file is refused
    by ``load_runbook``; a runbook path that leads to a device or a huge file is never read whole).

    ``RunbookError`` for a path that is not a regular file (a FIFO would block the reader) or a
    link to a file outside the runbooks directory (``runbooks check`` printed each line of a
    link to /etc/shadow as an unknown key); ``FileNotFoundError`` as ``open`` raises it."""
    st = path.stat()  # follows a link; FileNotFoundError for a missing file or a dangling link
    if not stat.S_ISREG(st.st_mode):
        raise RunbookError([_problem(path, 1, "is not a regular file")])
    if path.is_symlink() and path.resolve().parent != path.parent.resolve():
        problem = "is a link to a file outside the runbooks directory; copy the runbook in"
        raise RunbookError([_problem(path, 1, problem)])
    with path.open("rb") as fh:
        return fh.read(MAX_RUNBOOK_BYTES + 1)


def _problem(path: Path, line: int, msg: str) -> str:
    return f"{path}:{line}: {msg}"


def _pydantic_problems(path: Path, raw: Any, exc: ValidationError) -> list[str]:
    out = []
    for raw_loc, msg, err_type in safe_validation_errors(exc):  # messages without input values
        loc = tuple("with" if p == "with_" else p for p in raw_loc)
        where = ".".join(str(p) for p in loc) or "(top)"
        if err_type == "extra_forbidden":
            msg = "unknown key (check spelling; keys are snake_case)"
        out.append(_problem(path, yamlsource.line_of(raw, loc), f"{where}: {msg}"))
    return out


def load_runbook(path: Path, connectors: Mapping[str, type[Connector]]) -> Runbook:
    """Read, validate and cross-check one runbook file; raise ``RunbookError``."""
    try:
        data = read_runbook_file(path)
    except OSError as exc:
        raise RunbookError([_problem(path, 1, f"cannot read: {exc.strerror}")]) from exc
    if len(data) > MAX_RUNBOOK_BYTES:
        # parsing megabytes of YAML takes PyYAML seconds on every catalogue read
        raise RunbookError([_problem(path, 1, f"too large (a runbook is at most {MAX_RUNBOOK_BYTES} bytes)")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunbookError([_problem(path, 1, "not UTF-8 text")]) from exc
    try:
        raw = yamlsource.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or "not valid YAML"  # never str(exc): it quotes the line
        raise RunbookError([_problem(path, line, f"invalid YAML: {problem}")]) from exc
    if not isinstance(raw, dict):
        raise RunbookError([_problem(path, 1, "a runbook must be a YAML mapping")])
    try:
        model = RunbookModel.model_validate(raw)
    except ValidationError as exc:
        raise RunbookError(_pydantic_problems(path, raw, exc)) from exc
    return _cross_check(path, raw, model, hashlib.sha256(data).hexdigest(), connectors)


def _cross_check(
    path: Path, raw: Any, model: RunbookModel, sha: str, connectors: Mapping[str, type[Connector]]
) -> Runbook:
    problems: list[str] = []

    def at(*loc: Any) -> int:
        return yamlsource.line_of(raw, loc)

    if path.stem != model.name:
        problems.append(_problem(path, at("name"), f"name '{model.name}' must match the file name '{path.stem}'"))
    params = {}
    for i, p in enumerate(model.parameters):
        if p.name in params:
            problems.append(_problem(path, at("parameters", i, "name"), f"duplicate parameter '{p.name}'"))
        params[p.name] = p
    secret_params = {p.name for p in model.parameters if p.type == "secret"}
    for i, p in enumerate(model.parameters):
        if p.type == "directory" and any(q.type == "directory" for q in model.parameters[:i]):
            problems.append(
                _problem(path, at("parameters", i, "type"), "a runbook has at most one directory parameter")
            )

    outputs: dict[str, ActionSpec] = {}
    compiled: list[CompiledStep] = []

    def check_refs(tmpl: Template, loc: tuple[Any, ...], *, allow_secret: bool, label: str) -> None:
        for ref in tmpl.refs:
            line = at(*loc)
            if ref.root not in TEMPLATE_ROOTS:
                problems.append(_problem(path, line, f"{label}: unknown name '{ref.root}' in template"))
            elif ref.root == "params" and ref.name is None:
                if secret_params and not allow_secret:  # {{ params | tojson }} would carry them
                    problems.append(
                        _problem(
                            path,
                            line,
                            f"{label}: 'params' as a whole holds the secret parameter(s) "
                            f"{', '.join(sorted(secret_params))}; name the parameters used (params.<name>)",
                        )
                    )
            elif ref.root == "params" and ref.name is not None:
                if ref.name not in params:
                    problems.append(_problem(path, line, f"{label}: unknown parameter '{ref.name}'"))
                elif ref.name in secret_params and not allow_secret:
                    problems.append(
                        _problem(path, line, f"{label}: secret parameter '{ref.name}' may only feed secret inputs")
                    )
            elif ref.root == "steps" and ref.name is not None:
                if ref.name not in outputs:
                    problems.append(_problem(path, line, f"{label}: step '{ref.name}' is not an earlier step"))
                elif ref.attr is not None and ref.attr not in outputs[ref.name].outputs:
                    problems.append(
                        _problem(
                            path,
                            line,
                            f"{label}: step '{ref.name}' has no output '{ref.attr}' "
                            f"(it returns: {', '.join(sorted(outputs[ref.name].outputs)) or 'nothing'})",
                        )
                    )
                elif ref.attr in outputs[ref.name].secret_outputs and not allow_secret:
                    problems.append(
                        _problem(path, line, f"{label}: secret output '{ref.attr}' may only feed secret inputs")
                    )

    def compile_step(spec: Step | Verify, loc: tuple[Any, ...], index: int) -> CompiledStep | None:
        cls = connectors.get(spec.connector)
        if cls is None:
            problems.append(
                _problem(
                    path,
                    at(*loc, "connector"),
                    f"unknown connector '{spec.connector}'; available: {', '.join(sorted(connectors))}",
                )
            )
            return None
        action = cls.actions.get(spec.action)
        if action is None:
            problems.append(
                _problem(
                    path,
                    at(*loc, "action"),
                    f"connector '{spec.connector}' has no action '{spec.action}'; "
                    f"it has: {', '.join(sorted(cls.actions))}",
                )
            )
            return None
        try:
            inputs = compile_value(spec.with_)
            target = Template(spec.target) if spec.target is not None else None
            when = Template(spec.when) if spec.when is not None else None
        except TemplateProblem as exc:
            problems.append(_problem(path, at(*loc), str(exc)))
            return None
        for name in set(spec.with_) - action.input_names:
            problems.append(
                _problem(
                    path,
                    at(*loc, "with", name),
                    f"action '{spec.action}' has no input '{name}'; inputs: {', '.join(sorted(action.input_names))}",
                )
            )
        for i in action.inputs:
            if i.required and i.name not in spec.with_:
                problems.append(_problem(path, at(*loc, "with"), f"action '{spec.action}' needs input '{i.name}'"))
        for name, value in inputs.items():
            secret_input = name in action.secret_inputs
            if secret_input and isinstance(value, Template) and value.is_literal and value.source not in (None, ""):
                problems.append(
                    _problem(
                        path, at(*loc, "with", name), f"secret input '{name}' must not be a literal in the runbook"
                    )
                )
            for t in iter_templates(value):
                check_refs(t, (*loc, "with", name), allow_secret=secret_input, label=f"with.{name}")
        if target is not None:
            check_refs(target, (*loc, "target"), allow_secret=False, label="target")
        if when is not None:
            check_refs(when, (*loc, "when"), allow_secret=False, label="when")
        return CompiledStep(spec, action, target, inputs, when, index)

    for i, step in enumerate(model.steps):
        if step.id in outputs or step.id == "verify":
            problems.append(_problem(path, at("steps", i, "id"), f"duplicate or reserved step id '{step.id}'"))
        c = compile_step(step, ("steps", i), i)
        if c is not None:
            compiled.append(c)
            outputs[step.id] = c.action
    verify = None
    if model.verify is not None:
        verify = compile_step(model.verify, ("verify",), len(model.steps))
        if verify is not None:
            for key in set(model.verify.expect) - verify.action.outputs:
                problems.append(
                    _problem(path, at("verify", "expect", key), f"action '{model.verify.action}' has no output '{key}'")
                )
    note, notes = Template(""), dict[str, Template]()
    for lang, text in model.resolution.note_texts.items():
        where = ("resolution", "note") if isinstance(model.resolution.note, str) else ("resolution", "note", lang)
        try:
            compiled_note = Template(text)
            check_refs(compiled_note, where, allow_secret=False, label=".".join(where))
        except TemplateProblem as exc:
            problems.append(_problem(path, at(*where), str(exc)))
            continue
        if lang == "en":
            note = compiled_note
        else:
            notes[lang] = compiled_note
    for i, p in enumerate(model.parameters):
        if isinstance(p.default, str):
            try:
                d = Template(p.default)
            except TemplateProblem as exc:
                problems.append(_problem(path, at("parameters", i, "default"), str(exc)))
                continue
            for ref in d.refs:
                if ref.root not in ("requester", "channel"):
                    problems.append(
                        _problem(
                            path, at("parameters", i, "default"), "a default may only use 'requester' or 'channel'"
                        )
                    )
    if problems:
        raise RunbookError(problems)
    return Runbook(model, path, sha, tuple(compiled), verify, note, params, notes)


def load_all(directory: Path, connectors: Mapping[str, type[Connector]]) -> tuple[dict[str, Runbook], list[str]]:
    """Load every ``*.yaml`` runbook in *directory*; return the good ones and all problems."""
    books: dict[str, Runbook] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            rb = load_runbook(path, connectors)
        except RunbookError as exc:
            problems.extend(exc.problems)
            continue
        books[rb.name] = rb
    return books, problems
