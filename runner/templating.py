"""Runbook templates: Jinja2 ``SandboxedEnvironment`` with ``StrictUndefined``.

A value that is exactly one ``{{ expression }}`` keeps its native type (bool, int,
mapping); anything else renders to a string. Templates are compiled once, when the
runbook loads, and their references (``params.x``, ``steps.y.z``) are checked then.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.sandbox import SandboxedEnvironment

# optimized=False: Jinja's optimizer folds constant expressions while *compiling*, so loading
# any file in the runbooks folder (vetted or not: `runbooks list`, the portal's catalogue)
# evaluated `{{ 'a' * 10**12 }}` or `{{ 9**9**9 }}` — a MemoryError or a CPU spin before
# anyone approved it. Unfolded, nothing in a template runs until a vetted runbook renders it.
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, optimized=False)
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


class Template:
    """A compiled runbook template string (or a plain literal)."""

    __slots__ = ("_expr", "_tmpl", "refs", "source")

    def __init__(self, source: Any) -> None:
        self.source = source
        self._expr: Any = None
        self._tmpl: Any = None
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
        outer = _outermost(tree)
        self.refs = tuple(r for r in _refs(tree) if r.name is not None or r.root not in outer)

    @property
    def is_literal(self) -> bool:
        return self._expr is None and self._tmpl is None

    def render(self, context: Mapping[str, Any]) -> Any:
        if self._expr is not None:
            value = self._expr(**context)
            if isinstance(value, Undefined):  # a bare {{ missing }} is an error, never a value
                value._fail_with_undefined_error()
            return value
        if self._tmpl is not None:
            return self._tmpl.render(**context)
        return self.source


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
