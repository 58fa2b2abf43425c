"""The connector pool hands each caller an instance of its own for the length of a call:
calls against one target from several threads go on side by side (before, one instance —
one LDAP connection — served every thread of a process, so they queued behind each other),
at most ``per_target`` instances exist, a caller finds a free one reused, and waits (then
``Timeout``) when all are busy."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Timeout
from runner.errors import ConfigError
from runner.inventory import load_inventory
from runner.pool import Pool
from runner.secrets import SecretStore
from tests.fakes import FakeConnector


def _pool(tmp_path: Path, **kw: Any) -> Pool:
    inv = tmp_path / "inventory.yaml"
    inv.write_text("defaults: {fake: f1}\ntargets:\n  f1: {connector: fake}\n  f2: {connector: fake}\n")
    return Pool({"fake": FakeConnector}, load_inventory(inv, {"fake": FakeConnector}), SecretStore(tmp_path), **kw)


def test_concurrent_callers_get_instances_of_their_own_and_later_ones_reuse_them(tmp_path: Path) -> None:
    pool = _pool(tmp_path, per_target=4)
    inside = threading.Barrier(3, timeout=5)
    seen: list[int] = []

    def call() -> None:
        with pool.using("fake", "f1") as conn:
            seen.append(id(conn))
            inside.wait()  # all three hold one at the same time

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(set(seen)) == 3  # three at once: three instances
    with pool.using("fake", "f1") as again:
        assert id(again) in seen  # a free one is reused, none is made
    with pool.using("fake", "f2") as other:
        assert id(other) not in seen and other.target_name == "f2"
    pool.close()


def test_beyond_per_target_a_caller_waits_for_a_free_instance_then_times_out(tmp_path: Path) -> None:
    pool = _pool(tmp_path, per_target=1, wait=0.3)
    with pool.using("fake", "f1") as held:
        t0 = time.monotonic()
        with pytest.raises(Timeout, match="All 1 connections to target 'f1' stayed busy"):
            with pool.using("fake", "f1"):
                pass
        assert time.monotonic() - t0 >= 0.3
    got: list[Any] = []

    def later() -> None:
        with pool.using("fake", "f1") as conn:
            got.append(conn)

    with pool.using("fake", "f1") as held2:
        t = threading.Thread(target=later)
        t.start()
        time.sleep(0.1)
        assert got == []  # waiting for the one held here
    t.join(5)
    assert got == [held2] and held2 is held


def test_a_target_of_another_connector_is_a_configuration_error(tmp_path: Path) -> None:
    pool = _pool(tmp_path)
    with pytest.raises(ConfigError, match="is a fake target, not ldap"):
        with pool.using("ldap", "f1"):
            pass
