"""Disk clean-up over SSH reports the true number of files removed and bytes freed.

``find ... -delete -printf`` prints one line per file it removed, and the connector
summed that list as it had been captured; the capture is cut at the output limit, so with
more lines than fit, the files removed and the bytes freed were under-reported while every
file was gone, and the resolution note stated the lower numbers as fact ("N file(s) ...
removed, B bytes freed"). The totals are now counted from the whole stream, as it arrives.

Run against the lab sshd with a few thousand old files in a cleanup folder of our own; the
output limit is lowered to 2 KiB for the test (the real limit, 64 MiB, needs millions of
files), which is what a list longer than the limit looks like to the connector.
"""

from __future__ import annotations

import os
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Rejected
from connectors.ssh import SshConnector
from tests.integration.hosts.helpers import SVC_LAB, ssh_connector

pytestmark = pytest.mark.integration

CAP = 2048
OWNER = "svc-firstline"


def _own(path: Path) -> None:
    shutil.chown(path, OWNER, OWNER)


@pytest.fixture
def folder(lab_hosts: None) -> Iterator[Path]:
    path = SVC_LAB / "cache" / f"totals-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    _own(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _old_files(folder: Path, count: int, *, seed: int) -> int:
    """*count* files older than 30 days, of varied sizes, in two levels; the disk space they hold."""
    rng = random.Random(seed)
    stamp = time.time() - 30 * 86400
    total = 0
    for i in range(count):
        sub = folder / f"d{i % 7}"
        if not sub.exists():
            sub.mkdir()
            _own(sub)
        size = rng.randrange(0, 5000)
        path = sub / f"old-{i}.log"
        path.write_bytes(b"x" * size)
        os.utime(path, (stamp, stamp))
        _own(path)
        total += path.stat().st_blocks * 512
    return total


@pytest.fixture
def small_cap_conn(folder: Path) -> Iterator[SshConnector]:
    """The lab connector on a cleanup path of its own, every command's output capped at CAP bytes."""
    conn = ssh_connector(cleanup_paths=[str(folder)])
    real = conn.pool.run

    def capped(argv: Any, *, timeout: float, max_output: int | None = None, **kw: Any) -> Any:
        return real(argv, timeout=timeout, max_output=min(max_output or CAP, CAP), **kw)

    conn.pool.run = capped  # type: ignore[method-assign]
    yield conn
    conn.close()


def test_thousands_of_removed_files_are_all_counted(small_cap_conn: SshConnector, folder: Path) -> None:
    count = 3000  # about 13 KiB of size lines: far over the cap
    total = _old_files(folder, count, seed=1)
    young = folder / "young.log"
    young.write_bytes(b"y" * 10)
    _own(young)
    result = small_cap_conn.run("disk_cleanup", {"path": str(folder)}, timeout=60)
    left = sorted(p.name for p in folder.rglob("*") if p.is_file())
    assert left == ["young.log"], "every old file is gone"
    # before: about 500 files and a fraction of the bytes (what fitted in the cap)
    assert result["files_removed"] == count
    assert result["freed_bytes"] == total
    assert result["changed"] is True


def test_an_incomplete_cleanup_counts_every_file_it_removed(small_cap_conn: SshConnector, folder: Path) -> None:
    count = 2000
    total = _old_files(folder, count, seed=2)
    locked = folder / "zz-locked"
    locked.mkdir()
    stuck = locked / "stuck.log"
    stuck.write_bytes(b"s" * 10)
    stamp = time.time() - 30 * 86400
    os.utime(stuck, (stamp, stamp))  # root's folder and file: svc-firstline cannot delete it
    with pytest.raises(Rejected) as info:
        small_cap_conn.run("disk_cleanup", {"path": str(folder)}, timeout=60)
    assert info.value.reason == "cleanup_incomplete" and info.value.outcome_unknown is True
    assert stuck.exists()
    assert f"removed {count} file(s) ({total} bytes freed)" in str(info.value)  # before: the count of what fitted


def test_only_space_really_given_back_counts_as_freed(folder: Path) -> None:
    """A file with another hard link frees nothing; a sparse file frees only its allocated blocks.

    ``freed_bytes`` was the sum of the files' sizes: here 10 MiB + 20,000 bytes "freed" while
    the disk got back only the plain file's blocks.
    """
    stamp = time.time() - 30 * 86400
    plain, linked, sparse = folder / "plain.log", folder / "linked.log", folder / "sparse.img"
    plain.write_bytes(b"p" * 20_000)
    linked.write_bytes(b"l" * 20_000)
    keep = SVC_LAB / "keep" / f"hardlink-{uuid.uuid4().hex[:8]}"
    os.link(linked, keep)  # same file system, outside the cleanup path: its data stays
    with sparse.open("wb") as fh:
        fh.truncate(10 * 1_048_576)
    for path in (plain, linked, sparse):
        os.utime(path, (stamp, stamp))
        _own(path)
    freed = plain.stat().st_blocks * 512 + sparse.stat().st_blocks * 512
    assert sparse.stat().st_blocks * 512 < 10 * 1_048_576
    conn = ssh_connector(cleanup_paths=[str(folder)])
    try:
        result = conn.run("disk_cleanup", {"path": str(folder)}, timeout=30)
    finally:
        conn.close()
        keep_size = keep.stat().st_size if keep.exists() else None
        keep.unlink(missing_ok=True)
    assert not plain.exists() and not linked.exists() and not sparse.exists()
    assert keep_size == 20_000, "the other link still holds the data"
    assert result["files_removed"] == 3
    assert result["freed_bytes"] == freed  # before: 10,525,760 (sizes)
