"""Fixtures for the host tests: the real lab sshd + CUPS and the WinRM emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.ssh import SshConnector
from connectors.winrm import WinrmConnector
from tests.integration.conftest import start_lab
from tests.integration.hosts.helpers import Emulator, ssh_connector, winrm_connector


@pytest.fixture(scope="session")
def lab_hosts() -> None:
    start_lab("sshd", "cups", "winrm")


@pytest.fixture
def ssh(lab_hosts: None) -> Iterator[SshConnector]:
    conn = ssh_connector()
    yield conn
    conn.close()


@pytest.fixture
def emulator(lab_hosts: None) -> Emulator:
    emu = Emulator()
    emu.reset()
    return emu


@pytest.fixture
def winrm(emulator: Emulator) -> Iterator[WinrmConnector]:
    conn = winrm_connector()
    yield conn
    conn.close()


@pytest.fixture
def sentinel() -> Iterator[Path]:
    """A file that a hostile value would create if anything executed it; it must never appear."""
    path = Path(f"/tmp/fl-sentinel-{uuid.uuid4().hex}")
    yield path
    assert not path.exists(), f"hostile input executed: {path} exists"
