"""Input the CLI reads is bounded: a ``--secret`` read from standard input is one line of at
most 65,536 characters, an inventory file at most 4 MiB. Larger input (or a stream with no
end, /dev/zero) is refused with exit 2 and a sentence, never read whole into memory.
Run as subprocesses under an address-space limit, as an operator would meet it."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path
from typing import IO

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")
LIMIT_BYTES = 1024 * 1024 * 1024  # far more than firstline needs, far less than an endless read


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def fl(
    tmp_path: Path, *args: str, stdin: str | IO[bytes] = "", inventory: Path | None = None, lang: str = "en"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_") and k != "LANG"}
    env.update(
        FIRSTLINE_ENVIRONMENT="test",
        FIRSTLINE_DATA_DIR=str(tmp_path / "data"),
        FIRSTLINE_INVENTORY=str(inventory or REPO / "lab" / "inventory.yaml"),
        FIRSTLINE_RUNBOOKS_DIR=str(REPO / "runbooks"),
        FIRSTLINE_LANG=lang,
    )
    kwargs: dict[str, object] = {"input": stdin} if isinstance(stdin, str) else {"stdin": stdin}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]  # input or stdin, as given
        [FIRSTLINE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_limit,  # the limit must apply before exec (the test process is single-threaded)
        **kwargs,
    )


RESET = ("run", "password-reset", "-p", "user=alice", "--secret", "new_password", "--dry-run")


@pytest.mark.parametrize("length", [65_537, 1_000_000])
def test_a_secret_line_over_the_limit_is_refused(tmp_path: Path, length: int) -> None:
    r = fl(tmp_path, *RESET, stdin="x" * length + "\n")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("error: invalid value for --secret: the value for secret 'new_password' on standard")
    assert "too long: one line of at most 65536 characters" in r.stderr and "xxxx" not in r.stderr


def test_a_secret_at_the_limit_is_read_and_checked_by_the_runbook(tmp_path: Path) -> None:
    r = fl(tmp_path, *RESET, stdin="x" * 65_536 + "\n")
    assert r.returncode == 2 and "too long (at most 1024 characters)" in r.stderr, r.stderr  # the parameter's rule


def test_an_endless_secret_stream_is_refused_not_read_whole(tmp_path: Path) -> None:
    with open("/dev/zero", "rb") as zero:
        r = fl(tmp_path, *RESET, stdin=zero, lang="nl")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "op standaardinvoer is te lang: één regel van hoogstens 65536 tekens" in r.stderr, r.stderr


def test_an_inventory_over_4_mib_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "inventory.yaml"
    big.write_text((REPO / "lab" / "inventory.yaml").read_text() + ("# padding\n" * 420_000))
    checked = fl(tmp_path, "inventory", "check", inventory=big)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert checked.stderr.startswith(f"{big}: too large (an inventory is at most 4 MiB)"), checked.stderr
    ran = fl(tmp_path, "run", "account-status", "-p", "user=alice", "--dry-run", inventory=big)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert ran.stderr.strip() == f"error: inventory {big} is too large (an inventory is at most 4 MiB)"


def test_an_inventory_path_that_never_ends_is_refused(tmp_path: Path) -> None:
    checked = fl(tmp_path, "inventory", "check", inventory=Path("/dev/zero"))
    assert checked.returncode == 2 and "/dev/zero: too large" in checked.stderr, checked.stdout + checked.stderr
    ran = fl(tmp_path, "run", "account-status", "-p", "user=alice", "--dry-run", inventory=Path("/dev/zero"))
    assert ran.returncode == 2 and "inventory /dev/zero is too large" in ran.stderr, ran.stdout + ran.stderr
