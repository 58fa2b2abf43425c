"""FIRSTLINE_INVENTORY pointing at a file that is not an inventory (``/etc/shadow``, a
credentials file) must not print that file's content: its lines parse into top-level keys,
and "unknown section(s) ..." used to repeat every one of them, password hashes included.
Section-like names are still named (``hosts``); anything else is only counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.inventory import load_inventory
from runner.inventory_check import check_inventory
from tests.fakes import FakeConnector

CONNECTORS = {"fake": FakeConnector}
HASH = "$y$j9T$Lq0cVZsN1e5uQ2Xx.9$kq3Hh7ZpZ0mS8Wc5bB1nD2fG3hJ4kL5mN6pQ7rS8tU9"
SHADOW = f"root:{HASH}:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n"
CREDENTIALS = "db password Sup3r-Secret-Value: 1\nhosts: {}\n"


@pytest.mark.parametrize(
    ("text", "secret", "named"),
    [
        (SHADOW, HASH, None),
        (SHADOW, "root:", None),
        (CREDENTIALS, "Sup3r-Secret-Value", "hosts"),
        ("x" * 41 + ": 1\n", "x" * 41, None),  # too long to be a section name
    ],
)
def test_keys_that_are_not_section_names_are_counted_not_shown(
    tmp_path: Path, text: str, secret: str, named: str | None
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_inventory(path, CONNECTORS)
    report = check_inventory(path, CONNECTORS)
    for message in (str(info.value), *report.problems):
        assert secret not in message
        assert "not section names (not shown" in message
        if named is not None:
            assert f"unknown section(s) {named};" in message


def test_a_misspelt_section_is_still_named(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("target: {}\nchoises: {}\n")
    with pytest.raises(ConfigError) as info:
        load_inventory(path, CONNECTORS)
    assert str(info.value).endswith("unknown section(s) choises, target")
    assert check_inventory(path, CONNECTORS).problems[0] == "unknown section(s) choises, target"
