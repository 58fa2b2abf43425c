"""disk_cleanup says "does not exist" only for a cleanup path that does not exist.

The connector checks the allow-listed path with ``realpath -e`` first and read every failure as
"does not exist": a path the service user may not reach (a root-only directory on the way)
was reported as missing although it is there - untrue, and the wrong hint for the service desk.
Now ``No such file or directory`` is ``not_found``, ``Permission denied`` is ``access_denied``,
anything else a failure with realpath's words. On the lab sshd, in folders of the test's own.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.base import ConnectorError, NotFound
from tests.integration.hosts.helpers import SVC_LAB, ssh_connector


@pytest.fixture
def folder(lab_hosts: None) -> Iterator[Path]:
    path = SVC_LAB / "tmp" / f"fl-cleanup-path-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _cleanup(path: Path) -> ConnectorError:
    conn = ssh_connector(cleanup_paths=[str(path)])
    try:
        with pytest.raises(ConnectorError) as info:
            conn.run("disk_cleanup", {"path": str(path)}, timeout=20)
    finally:
        conn.close()
    return info.value


def test_a_path_behind_a_root_only_directory_is_access_denied_not_missing(folder: Path) -> None:
    target = folder / "locked" / "cache"
    target.mkdir(parents=True)
    os.chmod(folder / "locked", 0o700)  # root's: svc-firstline cannot enter it
    error = _cleanup(target)
    assert not isinstance(error, NotFound), error  # before: "does not exist"
    assert (error.reason, error.outcome_unknown) == ("access_denied", False), error
    assert "Permission denied" in str(error)


def test_a_missing_path_is_still_not_found(folder: Path) -> None:
    error = _cleanup(folder / "gone")
    assert isinstance(error, NotFound) and "does not exist" in str(error)
    assert error.outcome_unknown is False
