"""SSH disk clean-up totals come from the whole stream find prints, split anywhere (no network).

One line per removed file: its link count and allocated 512-byte blocks (``%n %b``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.base import Rejected
from connectors.ssh import SshConnector, SshTargetConfig
from connectors.ssh_exec import ExecResult

CFG: dict[str, Any] = {
    "connector": "ssh",
    "address": "192.0.2.1",  # TEST-NET: never contacted
    "username": "svc-firstline",
    "private_key": {"env": "UNUSED"},
    "known_hosts": {"env": "UNUSED"},
    "cleanup_paths": ["/srv/cache"],
}


def scripted(stdout: bytes, chunk: int, status: int = 0, stderr: str = "") -> SshConnector:
    conn = SshConnector("print-01", SshTargetConfig.model_validate(CFG), lambda ref: "unused")

    def run(
        argv: list[str],
        *,
        timeout: float,
        max_output: int | None = None,
        on_stdout: Callable[[bytes], None] | None = None,
    ) -> ExecResult:
        if argv[0] == "realpath":
            return ExecResult(0, "/srv/cache\n", "")
        assert argv[0] == "find" and on_stdout is not None, "the sizes are streamed, never captured"
        for i in range(0, len(stdout), chunk):
            on_stdout(stdout[i : i + chunk])
        return ExecResult(status, "", stderr)

    conn.pool.run = run  # type: ignore[method-assign]
    return conn


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4096])
def test_lines_split_across_chunks_are_counted_once(chunk: int) -> None:
    blocks = [0, 8, 24, 99, 1_000_000_000_000, 7] * 50
    out = b"".join(b"1 %d\n" % b for b in blocks)
    result = scripted(out, chunk).run("disk_cleanup", {"path": "/srv/cache"}, timeout=10)
    assert result["files_removed"] == len(blocks) and result["freed_bytes"] == 512 * sum(blocks)


def test_a_file_with_another_hard_link_frees_nothing() -> None:
    result = scripted(b"1 8\n2 24\n3 8\n1 16\n", 5).run("disk_cleanup", {"path": "/srv/cache"}, timeout=10)
    assert (result["files_removed"], result["freed_bytes"]) == (4, 512 * 24)


def test_a_last_line_without_newline_still_counts() -> None:
    result = scripted(b"1 10\n1 20", 3).run("disk_cleanup", {"path": "/srv/cache"}, timeout=10)
    assert (result["files_removed"], result["freed_bytes"]) == (2, 512 * 30)


def test_a_size_line_not_understood_is_not_a_total() -> None:
    with pytest.raises(Rejected) as info:
        scripted(b"1 10\n1 ten\n20\n", 4).run("disk_cleanup", {"path": "/srv/cache"}, timeout=10)
    assert info.value.reason == "unexpected_output" and info.value.outcome_unknown is True
    assert "removed 3 file(s)" in str(info.value)


def test_an_incomplete_cleanup_names_the_true_totals() -> None:
    conn = scripted(b"1 10\n1 20\n", 1, status=1, stderr="find: cannot delete 'x': Permission denied\n")
    with pytest.raises(Rejected) as info:
        conn.run("disk_cleanup", {"path": "/srv/cache"}, timeout=10)
    assert info.value.reason == "cleanup_incomplete" and info.value.outcome_unknown is True
    assert "removed 2 file(s) (15360 bytes freed)" in str(info.value)
