"""The self-service background pool ends with the portal (app shutdown), not at interpreter exit."""

from __future__ import annotations

import warnings
from pathlib import Path

from portal.app import create_app
from portal.routes.selfservice import selfservice_of
from runner.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[3]


def test_app_shutdown_closes_the_selfservice_pool(tmp_path: Path) -> None:
    settings = Settings(
        environment="test", data_dir=tmp_path, runbooks_dir=REPO / "runbooks", inventory=REPO / "lab" / "inventory.yaml"
    )
    app = create_app(settings)
    ctx = app.state.portal
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/reset").status_code == 200
        service = selfservice_of(ctx)
        assert not service._pool._shutdown  # type: ignore[attr-defined]
    assert service._pool._shutdown  # type: ignore[attr-defined]
    assert "selfservice" not in ctx.extras
    assert not [t for t in service._pool._threads if t.is_alive()]  # type: ignore[attr-defined]
