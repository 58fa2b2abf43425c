"""portal.runs._gives_secrets: the portal asks the ledger for a worker's sealed once-only
outputs only for runbooks that have one (a write transaction per run otherwise)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from portal.runs import _gives_secrets
from runner.api import open_app
from runner.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def test_only_runbooks_with_a_secret_output_are_asked_about(tmp_path: Path) -> None:
    app = open_app(
        Settings(
            environment="test",
            data_dir=tmp_path,
            runbooks_dir=REPO / "runbooks",
            inventory=REPO / "lab" / "inventory.yaml",
        )
    )
    try:
        ctx = SimpleNamespace(firstline=app)
        assert _gives_secrets(ctx, "password-reset") is True  # type: ignore[arg-type]  # the temporary password
        assert _gives_secrets(ctx, "account-unlock") is False  # type: ignore[arg-type]
        assert _gives_secrets(ctx, "no-such-runbook") is True  # type: ignore[arg-type]  # cannot tell: ask
    finally:
        app.close()
