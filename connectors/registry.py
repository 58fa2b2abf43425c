"""Connector discovery through the ``firstline.connectors`` entry-point group."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from connectors.base import ActionSpec, Connector

__all__ = ["ENTRY_POINT_GROUP", "Connectors", "PluginError", "discover", "registry"]

ENTRY_POINT_GROUP = "firstline.connectors"


class PluginError(Exception):
    """A connector plugin failed to load or does not honour the contract."""


def _check(ep_name: str, dist: str, cls: object) -> type[Connector]:
    where = f"connector '{ep_name}' from distribution '{dist}'"
    if not isinstance(cls, type) or not issubclass(cls, Connector):
        raise PluginError(f"{where} is not a subclass of connectors.base.Connector")
    if getattr(cls, "name", None) != ep_name:
        raise PluginError(f"{where}: class name attribute {getattr(cls, 'name', None)!r} != {ep_name!r}")
    actions = getattr(cls, "actions", None)
    if not actions or not all(isinstance(a, ActionSpec) and a.name == k for k, a in actions.items()):
        raise PluginError(f"{where}: 'actions' must map each action name to its ActionSpec")
    missing = [a for a in actions if not callable(getattr(cls, a, None))]
    if missing:
        raise PluginError(f"{where}: declared actions without a method: {', '.join(missing)}")
    return cls


def _entry_points() -> dict[str, tuple[str, EntryPoint]]:
    """name -> (distribution, entry point) of every installed connector, from the metadata
    alone (nothing imported). ``PluginError`` when two distributions (or one, differently)
    register the same name; the same entry point listed twice is one registration."""
    found: dict[str, tuple[str, EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        first = found.get(ep.name)
        if first is not None:
            if (first[0], first[1].value) == (dist, ep.value):
                continue
            raise PluginError(
                f"connector '{ep.name}' is registered twice: by distribution '{first[0]}' ({first[1].value}) "
                f"and by distribution '{dist}' ({ep.value}); uninstall one of them"
            )
        found[ep.name] = (dist, ep)
    return found


def _load(name: str, dist: str, ep: EntryPoint) -> type[Connector]:
    try:
        cls = ep.load()
    except Exception as exc:
        raise PluginError(f"connector '{name}' from distribution '{dist}' failed to import: {exc}") from exc
    return _check(name, dist, cls)


def discover() -> dict[str, type[Connector]]:
    """Load and check every installed connector; errors name the plugin.

    Raises ``PluginError`` when a connector fails to import, breaks the contract, or
    when two distributions register the same connector name (naming both: a plugin
    must never silently replace another). The same entry point listed twice by one
    distribution (duplicate metadata on ``sys.path``) is one registration.
    """
    return {name: _load(name, dist, ep) for name, (dist, ep) in _entry_points().items()}


class Connectors(Mapping[str, type[Connector]]):
    """The installed connectors by name, each imported and checked (``_check``) the first
    time it is asked for. The names, and the refusal of a name registered twice, come from
    the package metadata when this is made, so a command that runs no step (``firstline
    tickets list``, ``audit export``) never imports the SSH or WinRM libraries (about a
    quarter of a second per start). A plugin that fails to import raises ``PluginError``
    (naming it) where it is first needed: loading a runbook or inventory that uses it.
    Safe to share between threads."""

    def __init__(self) -> None:
        self._points = _entry_points()
        self._loaded: dict[str, type[Connector]] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> type[Connector]:
        cls = self._loaded.get(name)
        if cls is not None:
            return cls
        dist, ep = self._points[name]  # KeyError for an unknown name, as a dict
        with self._lock:
            cls = self._loaded.get(name)
            if cls is None:
                cls = self._loaded[name] = _load(name, dist, ep)
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._points)

    def __len__(self) -> int:
        return len(self._points)

    def __contains__(self, name: object) -> bool:
        return name in self._points


@cache
def registry() -> Connectors:
    """The installed connectors (``Connectors``: loaded on first use), made once per process."""
    return Connectors()
