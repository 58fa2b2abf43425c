"""An internal error (exit 3) names the log file it was really written to, taken from the
settings (``FIRSTLINE_DATA_DIR`` / ``FIRSTLINE_LOG_FILE``); it always said
``var/log/firstline.log`` unless ``FIRSTLINE_LOG_FILE`` was set, and still claimed a log when
none could be written."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import cli, oplog
from runner.settings import get_settings


@pytest.fixture
def crashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "app", boom)
    monkeypatch.setattr(sys, "argv", ["firstline", "tickets", "list"])
    monkeypatch.setenv("FIRSTLINE_ENVIRONMENT", "test")
    monkeypatch.delenv("FIRSTLINE_LOG_FILE", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    oplog.configure(None)


def _main(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        cli.main()
    captured = capsys.readouterr()
    return int(info.value.code or 0), " ".join((captured.out + captured.err).split())


def test_the_message_names_the_data_dirs_log_file(
    crashing: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIRSTLINE_DATA_DIR", str(tmp_path / "data"))
    code, text = _main(capsys)
    log = tmp_path / "data" / "log" / "firstline.log"
    assert code == 3 and "Traceback" not in text
    assert f"details are in the log file {log}" in text
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert any(e.get("event") == "cli.crashed" for e in events)


def test_no_usable_log_file_is_said_as_such(
    crashing: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIRSTLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FIRSTLINE_LOG_FILE", "")  # turned off
    code, text = _main(capsys)
    assert code == 3 and "no log file could be written" in text and "var/log" not in text
