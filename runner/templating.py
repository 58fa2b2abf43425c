"""Runbook templates: Jinja2 ``SandboxedEnvironment`` with ``StrictUndefined``.

A value that is exactly one ``{{ expression }}`` keeps its native type (bool, int,
mapping); anything else renders to a string. Templates are compiled once, when the
runbook loads, and their references (``params.x``, ``steps.y.z``) are checked then.

Most templates only read names and keys (``{{ params.user }}``, ``Account {{ params.user }}
unlocked.``). Those are rendered without Jinja when every key is found in a plain ``dict``
and is not also a ``dict`` attribute: the value Jinja's sandbox would give (its ``getattr``
tries the attribute, then the item). In every other case (a missing key, another type,
``params.items``) Jinja renders it, so its errors and its sandbox decide as before. A
fresh Jinja context per render cost about 40 µs; every run renders each step's inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import SandboxedEnvironment


class _Unfolded(CodeGenerator):
    """Jinja's code generator without its constant folding of output: it evaluated
    ``{{ ('x' * 10000) * 20000 }}`` (or ``'x'|center(10**9)``) while *compiling*, even
    with ``optimized=False``, so loading a runbook file — ``runbooks check`` and ``vet``,
    before anyone approved it — took gigabytes. Only literal text is written as it is."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> str:
        if not isinstance(node, nodes.TemplateData | nodes.Const):
            raise nodes.Impossible()
        return str(super()._output_child_to_const(node, frame, finalize))


class _RunbookSandbox(SandboxedEnvironment):
    code_generator_class = _Unfolded


# optimized=False: Jinja's optimizer folds constant expressions while *compiling*, so loading
# any file in the runbooks folder (vetted or not: `runbooks list`, the portal's catalogue)
# evaluated `{{ 'a' * 10**12 }}` or `{{ 9**9**9 }}` — a MemoryError or a CPU spin before
# anyone approved it; the code generator folded output the same way (``_Unfolded``).
# Unfolded, nothing in a template runs until a vetted runbook renders it.
_ENV = _RunbookSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, optimized=False)
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.S)


class TemplateProblem(Exception):
    """A template does not compile or names something that does not exist."""


@dataclass(frozen=True)
class Ref:
    """One reference found in a template: ``params.user`` or ``steps.check.locked``."""

    root: str
    name: str | None
    attr: str | None


def _refs(tree: nodes.Node) -> Iterator[Ref]:
    """Yield the names a template reads, with up to two attribute levels."""
    claimed: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        chain: list[str] = []
        cur: nodes.Node = node
        while isinstance(cur, nodes.Getattr | nodes.Getitem):
            if isinstance(cur, nodes.Getattr):
                chain.append(cur.attr)
            elif isinstance(cur.arg, nodes.Const) and isinstance(cur.arg.value, str):
                chain.append(cur.arg.value)
            else:
                chain = []
            claimed.add(id(cur))
            cur = cur.node
        if isinstance(cur, nodes.Name) and id(node) not in _inner(claimed, node):
            chain.reverse()
            yield Ref(cur.name, chain[0] if chain else None, chain[1] if len(chain) > 1 else None)
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load":
            yield Ref(name.name, None, None)


def _inner(claimed: set[int], node: nodes.Node) -> set[int]:
    # The outermost Getattr of a chain carries the full path; inner links are skipped.
    inner = set()
    cur = getattr(node, "node", None)
    while isinstance(cur, nodes.Getattr | nodes.Getitem):
        inner.add(id(cur))
        cur = cur.node
    return inner - {id(node)}


# A dotted read (``params.user``) as its names; text between reads as str.
_Path = tuple[str, ...]
_DICT_ATTRS = frozenset(dir(dict))  # ``params.items`` is the method in Jinja, not the key
_MISS = object()


def _path(node: nodes.Node) -> _Path | None:
    """``params.user.name`` as ("params", "user", "name"); None for anything else."""
    chain: list[str] = []
    while isinstance(node, nodes.Getattr):
        chain.append(node.attr)
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load":
        return None
    chain.append(node.name)
    chain.reverse()
    return tuple(chain)


def _plain_parts(tree: nodes.Template) -> tuple[str | _Path, ...] | None:
    """The template as text and dotted reads, when it is nothing else; None otherwise."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts: list[str | _Path] = []
    for child in tree.body[0].nodes:
        if isinstance(child, nodes.TemplateData):
            parts.append(child.data)
            continue
        found = _path(child)
        if found is None:
            return None
        parts.append(found)
    return tuple(parts)


def _read(path: _Path, context: Mapping[str, Any]) -> Any:
    """What Jinja would read for *path*, or ``_MISS`` where only Jinja can say."""
    value = context.get(path[0], _MISS)
    for name in path[1:]:
        if type(value) is not dict or name in _DICT_ATTRS:
            return _MISS
        value = value.get(name, _MISS)
    return value


class Template:
    """A compiled runbook template string (or a plain literal)."""

    __slots__ = ("_expr", "_parts", "_tmpl", "refs", "source")

    def __init__(self, source: Any) -> None:
        self.source = source
        self._expr: Any = None
        self._tmpl: Any = None
        self._parts: tuple[str | _Path, ...] | None = None
        self.refs: tuple[Ref, ...] = ()
        if not isinstance(source, str) or "{" not in source:
            return
        try:
            m = _SINGLE.match(source)
            if m:
                self._expr = _ENV.compile_expression(m.group("expr"), undefined_to_none=False)
                tree = _ENV.parse("{{" + m.group("expr") + "}}")
            else:
                self._tmpl = _ENV.from_string(source)
                tree = _ENV.parse(source)
        except TemplateError as exc:
            raise TemplateProblem(f"template does not compile: {exc}") from exc
        private = _private_name(tree)
        if private is not None:
            # the sandbox refuses it when rendered (SecurityError), so a runbook that reads one
            # fails only at run time — a note then silently becomes "Resolved by automation."
            raise TemplateProblem(f"template reads '{private}', a private attribute the sandbox refuses")
        self._parts = _plain_parts(tree)
        outer = _outermost(tree)
        self.refs = tuple(r for r in _refs(tree) if r.name is not None or r.root not in outer)

    @property
    def is_literal(self) -> bool:
        return self._expr is None and self._tmpl is None

    def render(self, context: Mapping[str, Any]) -> Any:
        parts = self._parts
        if parts is not None:
            if self._expr is not None:  # one read: its own value (bool, int, mapping)
                value = _read(parts[0], context) if len(parts) == 1 and isinstance(parts[0], tuple) else _MISS
                if value is not _MISS and not isinstance(value, Undefined):
                    return value
            else:
                texts = [part if isinstance(part, str) else _read(part, context) for part in parts]
                if not any(text is _MISS for text in texts):
                    return "".join(text if type(text) is str else str(text) for text in texts)
        if self._expr is not None:
            value = self._expr(**context)
            if isinstance(value, Undefined):  # a bare {{ missing }} is an error, never a value
                value._fail_with_undefined_error()
            return value
        if self._tmpl is not None:
            return self._tmpl.render(**context)
        return self.source


def _private_name(tree: nodes.Node) -> str | None:
    """The first ``_name`` a template reads as an attribute or a constant key (``''.__class__``,
    ``x['__init__']``), or None. The names Jinja's sandbox treats as unsafe all start with "_"."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            name = node.arg.value
        else:
            continue
        if name.startswith("_"):
            return name
    return None


def _outermost(tree: nodes.Node) -> set[str]:
    """Names only ever used as the root of an attribute chain (reported via the chain)."""
    roots = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        cur = node
        while isinstance(cur, nodes.Getattr | nodes.Getitem):
            cur = cur.node
        if isinstance(cur, nodes.Name):
            roots.add(cur.name)
    return roots


def compile_value(value: Any) -> Any:
    """Compile every string inside *value* (dicts and lists walked)."""
    if isinstance(value, Mapping):
        return {k: compile_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [compile_value(v) for v in value]
    return Template(value)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, Template):
        return value.render(context)
    if isinstance(value, Mapping):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    return value


def iter_templates(value: Any) -> Iterator[Template]:
    if isinstance(value, Template):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from iter_templates(v)
    elif isinstance(value, list):
        for v in value:
            yield from iter_templates(v)


def truthy(value: Any) -> bool:
    """``when:`` semantics: strings 'false', 'no', '0' and '' are false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0", "none")
    return bool(value)
