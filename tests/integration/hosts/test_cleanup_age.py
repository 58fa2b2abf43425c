"""Disk clean-up over SSH removes every file older than ``cleanup_older_than_days``, to the hour.

The command was ``find ... -mtime +7``: find drops the fraction of a file's age in days, so
``+7`` matches files 8 days old and more. A file 7 days and 20 hours old stayed on the disk
while the ticket said "file(s) older than 7 days removed" (and the WinRM connector, which
compares the exact time, removed it). Now ``-mmin +10080``: older than 7 × 24 hours.
Run against the lab sshd, in the allow-listed ``~/lab/cache``.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from connectors.ssh import SshConnector
from tests.integration.hosts.helpers import SVC_LAB


def _make_file(path: Path, size: int, age_hours: float) -> None:
    if not path.parent.exists():
        path.parent.mkdir(parents=True)
        shutil.chown(path.parent, "svc-firstline", "svc-firstline")
    path.write_bytes(b"x" * size)
    stamp = time.time() - age_hours * 3600
    os.utime(path, (stamp, stamp))
    shutil.chown(path, "svc-firstline", "svc-firstline")


def test_files_older_than_the_days_are_removed_to_the_hour(ssh: SshConnector) -> None:
    cache = SVC_LAB / "cache"
    days = ssh.config.cleanup_older_than_days
    assert days == 7
    folder = cache / f"age-{uuid.uuid4().hex[:8]}"
    older = [folder / "7d-01h.log", folder / "7d-12h.log", folder / "7d-23h.log", folder / "9d.log"]
    younger = [folder / "6d-23h.log", folder / "1h.log"]
    for path, hours in zip(older, (7 * 24 + 1, 7 * 24 + 12, 7 * 24 + 23, 9 * 24), strict=True):
        _make_file(path, 100, hours)
    for path, hours in zip(younger, (6 * 24 + 23, 1), strict=True):
        _make_file(path, 10, hours)
    try:
        result = ssh.run("disk_cleanup", {"path": str(cache)}, timeout=30)
        gone = [p.name for p in older if not p.exists()]
        assert gone == [p.name for p in older]  # before: only 9d.log
        assert all(p.exists() for p in younger)
        assert result["older_than_days"] == 7
        assert result["files_removed"] >= len(older) and result["freed_bytes"] >= 100 * len(older)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
