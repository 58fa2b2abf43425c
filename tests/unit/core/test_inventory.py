"""Inventory loading: every mistake is one clear ConfigError naming the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.inventory import load_inventory
from runner.secrets import SecretStore
from tests.fakes import FakeConnector

CONNECTORS = {"fake": FakeConnector}


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    load_inventory(path, CONNECTORS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("targets: [oops", "is not valid YAML"),
        ("hosts: {}\n", "unknown section(s) hosts"),
        ("targets:\n  t1: {label: x}\n", "targets.t1 needs a 'connector'"),
        ("targets:\n  t1: {connector: nope}\n", "unknown connector 'nope'; available: fake"),
        ("targets:\n  t1: {connector: fake, colour: red}\n", "targets.t1.colour: Extra inputs are not permitted"),
        ("targets:\n  t1: {connector: fake}\ndefaults: {fake: t2}\n", "defaults.fake names unknown target 't2'"),
        (
            "targets:\n  t1: {connector: fake}\nchoices:\n  printers:\n    p1: {target: t9}\n",
            "choices.printers.p1 names unknown target 't9'",
        ),
    ],
)
def test_inventory_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert message in str(info.value)


def test_missing_inventory_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_inventory(tmp_path / "absent.yaml", CONNECTORS)


def test_secret_references_resolve_from_env_or_file_never_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SecretStore(tmp_path)
    (tmp_path / "pw").write_text("from-file\n")
    monkeypatch.setenv("FL_TEST_SECRET", "from-env")
    assert store({"file": "pw"}) == "from-file" and store({"env": "FL_TEST_SECRET"}) == "from-env"
    for bad, message in (
        ("inline-password", "never inline"),
        ({"vault": "x"}, "unknown secret source"),
        ({"env": "FL_TEST_UNSET_VAR"}, "is not set"),
        ({"file": "missing"}, "cannot be read"),
    ):
        with pytest.raises(ConfigError, match=message):
            store(bad)
    assert store.seen == {"from-file", "from-env"}
