"""Connector discovery through the ``firstline.connectors`` entry-point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from connectors.base import ActionSpec, Connector

__all__ = ["ENTRY_POINT_GROUP", "PluginError", "discover", "registry"]

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


def discover() -> dict[str, type[Connector]]:
    """Load and check every installed connector; errors name the plugin.

    Raises ``PluginError`` when a connector fails to import, breaks the contract, or
    when two distributions register the same connector name (naming both: a plugin
    must never silently replace another). The same entry point listed twice by one
    distribution (duplicate metadata on ``sys.path``) is one registration.
    """
    found: dict[str, type[Connector]] = {}
    origin: dict[str, tuple[str, str]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        first = origin.get(ep.name)
        if first is not None:
            if first == (dist, ep.value):
                continue
            raise PluginError(
                f"connector '{ep.name}' is registered twice: by distribution '{first[0]}' ({first[1]}) "
                f"and by distribution '{dist}' ({ep.value}); uninstall one of them"
            )
        origin[ep.name] = (dist, ep.value)
        try:
            cls = ep.load()
        except Exception as exc:
            raise PluginError(f"connector '{ep.name}' from distribution '{dist}' failed to import: {exc}") from exc
        found[ep.name] = _check(ep.name, dist, cls)
    return found


@cache
def registry() -> dict[str, type[Connector]]:
    """The installed connectors, discovered once per process."""
    return discover()
