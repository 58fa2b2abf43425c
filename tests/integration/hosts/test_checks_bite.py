"""Host-connector checks that no other test would miss (issue 7, "tests that must be able to fail").

Each test here was written for a check that could be deleted with the whole suite still
green (found by mutating the check, see ``docs/testing.md``); each asserts on the lab host's
file system afterwards.
"""

from __future__ import annotations

import os
import pwd
import time
import uuid

from connectors.ssh import SshConnector
from tests.integration.hosts.helpers import SVC_LAB, SVC_USER


def _age(path: os.PathLike[str], days: int) -> None:
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    owner = pwd.getpwnam(SVC_USER)
    os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)


def test_disk_cleanup_removes_only_regular_files_not_old_links_or_directories(ssh: SshConnector) -> None:
    """An old symlink (its own time, not its target's), an old empty directory: only regular
    files are cleanup's to delete (``find -type f``); the others stay, and so does the link's target."""
    cache, keep = SVC_LAB / "cache", SVC_LAB / "keep"
    tag = uuid.uuid4().hex[:8]
    old_file, old_dir, old_link = cache / f"bite-{tag}.log", cache / f"bite-dir-{tag}", cache / f"bite-link-{tag}"
    target = keep / f"bite-target-{tag}.log"
    try:
        for path, body in ((old_file, b"x" * 10), (target, b"y" * 20)):
            path.write_bytes(body)
            _age(path, 30)
        old_dir.mkdir()
        _age(old_dir, 30)
        old_link.symlink_to(target)
        _age(old_link, 30)

        result = ssh.run("disk_cleanup", {"path": str(cache)}, timeout=30)

        assert not old_file.exists()
        assert old_dir.is_dir() and old_link.is_symlink() and target.exists()
        assert result["files_removed"] >= 1
    finally:
        for path in (old_file, old_link, target):
            if path.is_symlink() or path.exists():
                path.unlink()
        if old_dir.is_dir():
            old_dir.rmdir()
