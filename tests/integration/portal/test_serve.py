"""`firstline serve` refuses bad settings before listening (exit 2, naming the setting,
never its value). (Time to the first page is measured in bench/, not asserted here.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.portal_support import REPO, free_port

pytestmark = pytest.mark.integration

FIRSTLINE = str(Path(sys.executable).with_name("firstline"))


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        # every settings error names the variable a person sets (runner.settings), not the field
        ("FIRSTLINE_TRUSTED_PROXIES", '["10.0.0.0/8", "proxy.internal"]', "FIRSTLINE_TRUSTED_PROXIES"),
        ("FIRSTLINE_TRUSTED_PROXIES", "10.0.0.1", "FIRSTLINE_TRUSTED_PROXIES"),  # not JSON
        ("FIRSTLINE_AGENT_GROUPS", '["cn=agents"]', "FIRSTLINE_AGENT_GROUPS"),  # a list, not a mapping
        ("FIRSTLINE_SESSION_IDLE_MINUTES", "0", "FIRSTLINE_SESSION_IDLE_MINUTES"),
        ("FIRSTLINE_PUBLIC_BASE_URL", "javascript:alert(1)", "FIRSTLINE_PUBLIC_BASE_URL"),
        ("FIRSTLINE_MAX_BODY_BYTES", "12", "FIRSTLINE_MAX_BODY_BYTES"),
    ],
)
def test_bad_portal_settings_exit_2_before_listening(tmp_path: Path, name: str, value: str, named: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update(
        FIRSTLINE_ENVIRONMENT="test",
        FIRSTLINE_DATA_DIR=str(tmp_path),
        FIRSTLINE_INVENTORY=str(REPO / "lab" / "inventory.yaml"),
        FIRSTLINE_RUNBOOKS_DIR=str(REPO / "runbooks"),
    )
    env[name] = value
    proc = subprocess.run(
        [FIRSTLINE, "serve", "--port", str(port)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert named in proc.stderr
    assert "Traceback" not in proc.stderr
    assert value not in proc.stderr or len(value) < 3
