"""``runner.filememo``: what was read from a file is reused only while the file is unchanged
and settled, so an edit is always seen (runbooks, ``vetted.lock``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from runner import filememo
from runner.catalogue import Catalogue
from runner.errors import NotFoundError
from runner.filememo import RACY_NS, FileMemo
from runner.settings import Settings
from tests.fakes import FakeConnector
from tests.unit.core.conftest import UNLOCK


def test_a_settled_file_is_kept_and_a_fresh_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    memo: FileMemo[str] = FileMemo()
    seen = memo.look(path)
    memo.keep(path, seen, "fresh")  # changed a moment ago: not kept
    assert memo.known(path, seen) is None
    settled = (seen[0], max(seen[0].st_mtime_ns, seen[0].st_ctime_ns) + RACY_NS)
    memo.keep(path, settled, "settled")
    assert memo.known(path, settled) == "settled"


def test_any_change_of_identity_misses(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    memo: FileMemo[str] = FileMemo()
    st, _ = memo.look(path)
    memo.keep(path, (st, st.st_ctime_ns + RACY_NS), "v")
    path.write_text("y")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same modification time: the change time moves
    assert memo.known(path, memo.look(path)) is None
    other = tmp_path / "g"
    other.write_text("x")
    other.replace(path)  # replaced: another inode
    assert memo.known(path, memo.look(path)) is None


def _catalogue(folder: Path) -> Catalogue:
    return Catalogue(Settings(environment="test", runbooks_dir=folder), {"fake": FakeConnector})


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock RACY_NS ahead: every file written so far counts as settled."""
    later = time.time_ns() + RACY_NS + 60_000_000_000  # files written by the test too
    monkeypatch.setattr(filememo, "_now_ns", lambda: later)


def test_an_unchanged_runbook_is_not_read_again(tmp_path: Path, settled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake-unlock.yaml").write_text(UNLOCK, encoding="utf-8")
    catalogue = _catalogue(tmp_path)
    first = catalogue.runbook("fake-unlock")
    monkeypatch.setattr("runner.catalogue.read_runbook_file", lambda path: pytest.fail("read again"))
    assert catalogue.runbook("fake-unlock") is first


def test_an_edited_runbook_is_seen_at_once(tmp_path: Path, settled: None) -> None:
    path = tmp_path / "fake-unlock.yaml"
    path.write_text(UNLOCK, encoding="utf-8")
    catalogue = _catalogue(tmp_path)
    before = catalogue.runbook("fake-unlock")
    st = path.stat()
    edited = UNLOCK.replace("retries: 2", "retries: 3")  # the same size
    path.write_text(edited, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same modification time
    after = catalogue.runbook("fake-unlock")
    assert after.sha256 != before.sha256
    assert after.steps[1].spec.retries == 3


def test_a_runbook_written_moments_ago_is_read_at_every_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake-unlock.yaml").write_text(UNLOCK, encoding="utf-8")
    catalogue = _catalogue(tmp_path)
    reads: list[Path] = []
    from runner import catalogue as module

    read = module.read_runbook_file
    monkeypatch.setattr(module, "read_runbook_file", lambda path: reads.append(path) or read(path))
    for _ in range(3):
        catalogue.runbook("fake-unlock")
    assert len(reads) == 3


def test_a_removed_runbook_is_not_found_after_it_was_kept(tmp_path: Path, settled: None) -> None:
    path = tmp_path / "fake-unlock.yaml"
    path.write_text(UNLOCK, encoding="utf-8")
    catalogue = _catalogue(tmp_path)
    catalogue.runbook("fake-unlock")
    path.unlink()
    with pytest.raises(NotFoundError):
        catalogue.runbook("fake-unlock")
