"""YAML loading that remembers line numbers, so errors can say ``file:line``.

Both loaders (``load`` for runbooks, ``load_plain`` for the inventory) are PyYAML's safe
loader plus two refusals, each a ``yaml.MarkedYAMLError`` naming the line: a key given twice
in one mapping (PyYAML keeps the last one silently), and a document that anchors and
aliases expand beyond ``MAX_NODES`` nodes, ``MAX_NODES_PLAIN`` for the inventory (a few
lines of ``&a [*b, *b, ...]`` otherwise make every reader of the file — ``firstline runbooks
list``, the portal's catalogue — walk hundreds of millions of values) or that refers to itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

# PyYAML's constructor methods are untyped.
# mypy: disable-error-code="no-untyped-call"


MAX_NODES = 100_000
"""Nodes a runbook may hold once its aliases are expanded (a runbook has a few hundred)."""
MAX_NODES_PLAIN = 2_000_000
"""The same for the inventory (large sites list thousands of printers): only runaway aliases."""


def _refuse(problem: str, node: yaml.Node) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(problem=problem, problem_mark=node.start_mark)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: yaml.Node, limit: int = MAX_NODES) -> None:
    """Raise ``MarkedYAMLError`` when *root*, aliases expanded, exceeds *limit* nodes
    or contains itself. Linear in the composed (unexpanded) graph: each node is sized once."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > limit:
                raise _refuse(f"more than {limit} values (anchors and aliases expanded)", node)
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _refuse("an alias refers to the value that contains it", node)
        if not children:
            sizes[key] = 1
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children)


class LineDict(dict[Any, Any]):
    line: int = 0
    key_lines: dict[Any, int]


class LineList(list[Any]):
    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    seen: set[Any] = set()
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.MarkedYAMLError(
                "while constructing a mapping", node.start_mark, f"duplicate key '{key}'", key_node.start_mark
            )
        seen.add(key)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


class _PlainLoader(yaml.SafeLoader):
    pass


def _plain_mapping(loader: _PlainLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *defaults` and keys that override what it merges are fine
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.MarkedYAMLError(
                "while constructing a mapping", node.start_mark, f"duplicate key '{key}'", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_PlainLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _plain_mapping)


def _load(text: str, loader_class: type[yaml.SafeLoader], limit: int) -> Any:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_expansion(node, limit)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """Parse *text* safely; mappings and lists carry their line numbers."""
    return _load(text, _Loader, MAX_NODES)


def load_plain(text: str) -> Any:
    """Parse *text* safely into plain dicts and lists (the inventory), with the same refusals."""
    return _load(text, _PlainLoader, MAX_NODES_PLAIN)


def line_of(root: Any, loc: Sequence[Any]) -> int:
    """Best line number for the pydantic-style location *loc* inside *root*."""
    node, line = root, getattr(root, "line", 1)
    for part in loc:
        if isinstance(node, LineDict) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line
