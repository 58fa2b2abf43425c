"""Connector discovery (issue 7 item 23): a plugin never silently replaces another."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from types import SimpleNamespace
from typing import Any

import pytest

from connectors import registry as registry_mod
from connectors.base import Connector
from connectors.registry import ENTRY_POINT_GROUP, PluginError, discover
from tests.fakes import FakeConnector


class OtherFake(FakeConnector):
    """A second class claiming the same connector name."""


def _ep(name: str, value: str, dist: str) -> EntryPoint:
    ep = EntryPoint(name, value, ENTRY_POINT_GROUP)
    return ep._for(SimpleNamespace(name=dist))  # type: ignore[arg-type]


def _installed(monkeypatch: pytest.MonkeyPatch, *eps: EntryPoint) -> None:
    def fake_entry_points(**kw: Any) -> list[EntryPoint]:
        assert kw == {"group": ENTRY_POINT_GROUP}
        return list(eps)

    monkeypatch.setattr(registry_mod, "entry_points", fake_entry_points)


@pytest.mark.parametrize("second", ["tests.unit.core.test_plugins:OtherFake", "tests.fakes:FakeConnector"])
def test_two_distributions_with_the_same_connector_name_are_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, second: str
) -> None:
    _installed(
        monkeypatch,
        _ep("fake", "tests.fakes:FakeConnector", "firstline-fake"),
        _ep("fake", second, "evil-plugin"),
    )
    with pytest.raises(PluginError) as info:
        discover()
    message = str(info.value)
    assert "'fake'" in message and "'firstline-fake'" in message and "'evil-plugin'" in message


def test_one_distribution_registering_one_name_twice_differently_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(
        monkeypatch,
        _ep("fake", "tests.fakes:FakeConnector", "firstline-fake"),
        _ep("fake", "tests.unit.core.test_plugins:OtherFake", "firstline-fake"),
    )
    with pytest.raises(PluginError, match="registered twice"):
        discover()


def test_the_same_entry_point_seen_twice_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = _ep("fake", "tests.fakes:FakeConnector", "firstline-fake")
    _installed(monkeypatch, ep, _ep("fake", "tests.fakes:FakeConnector", "firstline-fake"))
    assert discover() == {"fake": FakeConnector}


def test_distinct_names_load_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_mod, "_check", lambda name, dist, cls: cls)
    _installed(
        monkeypatch,
        _ep("fake", "tests.fakes:FakeConnector", "a"),
        _ep("other", "tests.unit.core.test_plugins:OtherFake", "b"),
    )
    assert set(discover()) == {"fake", "other"}


def test_the_installed_connectors_have_no_duplicates() -> None:
    assert set(discover()) >= {"ldap", "ssh", "winrm", "mail"}


def test_connectors_are_imported_when_first_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """``registry()``'s mapping lists every name from the metadata, imports none of them
    until asked, and names a plugin that fails to import where it is first needed."""
    _installed(
        monkeypatch,
        _ep("fake", "tests.fakes:FakeConnector", "firstline-fake"),
        _ep("broken", "tests.no_such_module:Nothing", "broken-plugin"),
    )
    loads: list[str] = []
    real_load = registry_mod._load

    def counted(name: str, dist: str, ep: EntryPoint) -> type[Connector]:
        loads.append(name)
        return real_load(name, dist, ep)

    monkeypatch.setattr(registry_mod, "_load", counted)
    found = registry_mod.Connectors()
    assert set(found) == {"fake", "broken"} and len(found) == 2 and "broken" in found and loads == []
    assert found["fake"] is FakeConnector and found["fake"] is FakeConnector and loads == ["fake"]
    with pytest.raises(PluginError, match="'broken' from distribution 'broken-plugin' failed to import"):
        found["broken"]
    with pytest.raises(KeyError):
        found["nope"]


def test_a_name_registered_twice_is_refused_before_anything_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(
        monkeypatch,
        _ep("fake", "tests.fakes:FakeConnector", "firstline-fake"),
        _ep("fake", "tests.unit.core.test_plugins:OtherFake", "evil-plugin"),
    )
    with pytest.raises(PluginError, match="registered twice"):
        registry_mod.Connectors()
