"""``runner.vetting.read_lock`` keeps its parse only while ``vetted.lock`` is unchanged: an
approval written or withdrawn a moment ago counts at the next submit and claim."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from runner import filememo, vetting
from runner.errors import ConfigError


def _write(folder: Path, sha: str) -> None:
    entry = {"sha256": sha, "approved_by": "lead", "approved_at": "2026-12-01T08:55:00+00:00"}
    (folder / vetting.LOCK_NAME).write_text(json.dumps({"runbooks": {"unlock": entry}}), encoding="utf-8")


def test_a_change_of_the_same_size_in_the_same_second_is_read(tmp_path: Path) -> None:
    _write(tmp_path, "a" * 64)
    lock = tmp_path / vetting.LOCK_NAME
    stamp = lock.stat().st_mtime_ns
    assert vetting.read_lock(tmp_path)["unlock"].sha256 == "a" * 64
    _write(tmp_path, "b" * 64)  # same length
    os.utime(lock, ns=(stamp, stamp))  # and the same modification time: the change time still moves
    assert vetting.read_lock(tmp_path)["unlock"].sha256 == "b" * 64


def test_a_replaced_or_removed_file_is_seen(tmp_path: Path) -> None:
    _write(tmp_path, "a" * 64)
    assert "unlock" in vetting.read_lock(tmp_path)
    other = tmp_path / "next.lock"
    other.write_text(json.dumps({"runbooks": {}}), encoding="utf-8")
    other.replace(tmp_path / vetting.LOCK_NAME)  # an atomic rename, as write_approval does
    assert vetting.read_lock(tmp_path) == {}
    (tmp_path / vetting.LOCK_NAME).unlink()
    assert vetting.read_lock(tmp_path) == {}


def test_an_unchanged_file_is_not_parsed_again_and_callers_get_their_own_dict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "a" * 64)
    later = time.time_ns() + filememo.RACY_NS  # the file has settled by now
    monkeypatch.setattr(filememo, "_now_ns", lambda: later)
    first = vetting.read_lock(tmp_path)
    first.pop("unlock")  # a caller's change stays its own
    monkeypatch.setattr(vetting, "_parse_lock", lambda path: pytest.fail("parsed again"))
    assert vetting.read_lock(tmp_path)["unlock"].sha256 == "a" * 64


def test_a_file_changed_moments_ago_is_parsed_at_every_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two writes inside one tick of the file system's clock can leave the same identity, so a
    # lock file younger than RACY_NS is never taken from what was kept.
    _write(tmp_path, "a" * 64)
    parses: list[Path] = []
    parse = vetting._parse_lock
    monkeypatch.setattr(vetting, "_parse_lock", lambda path: parses.append(path) or parse(path))
    for _ in range(3):
        assert vetting.read_lock(tmp_path)["unlock"].sha256 == "a" * 64
    assert len(parses) == 3


def test_a_malformed_file_is_refused_every_time(tmp_path: Path) -> None:
    (tmp_path / vetting.LOCK_NAME).write_text('{"runbooks": {"x": {"sha256": "a"}}}', encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ConfigError, match="malformed"):
            vetting.read_lock(tmp_path)
