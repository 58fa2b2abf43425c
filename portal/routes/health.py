"""Operations endpoints: liveness, readiness, metrics and the API reference page.

``/healthz`` and ``/readyz`` are open (they tell only "ok" or which part is not ready).
``/metrics`` names routes, runbooks and counts, so it is not: with
``FIRSTLINE_METRICS_TOKEN`` set it needs ``Authorization: Bearer <that token>`` from
every client (401 otherwise); without it only a loopback client gets it (403 otherwise).
The client is the proxy-aware address of the security middleware (``X-Forwarded-For``
counts only from a trusted proxy). Refusals are JSON (``portal.deps.scraper``).
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import text

from portal import runs
from portal.deps import PortalContext, portal_context, public, scraper
from portal.metrics import QUEUE_DEPTH, exposition
from portal.rendering import render
from runner.ledger.store import HEAD_REVISION, reading

router = APIRouter(tags=["operations"])


@router.get("/healthz", dependencies=[Depends(public)])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[Depends(public)])
def readyz(ctx: Annotated[PortalContext, Depends(portal_context)]) -> JSONResponse:
    """Readiness: the database answers at the current schema and runs can be dispatched; 503 naming what is not."""
    checks: dict[str, str] = {}
    try:
        with reading(ctx.firstline.engine) as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        checks["database"] = "ok" if version == HEAD_REVISION else "not ready (schema is not at the current revision)"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        checks["database"] = f"not ready ({type(exc).__name__})"
    problem = runs.ready(ctx)
    checks["dispatcher"] = problem or "ok"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", dependencies=[Depends(scraper)])
def metrics(ctx: Annotated[PortalContext, Depends(portal_context)]) -> Response:
    """Prometheus text exposition; the queue depth is read at each scrape.

    Needs ``Authorization: Bearer`` with ``FIRSTLINE_METRICS_TOKEN`` when that is set, else
    a client on this machine (``portal.deps.scraper``)."""
    with contextlib.suppress(Exception):  # a metrics scrape never fails for want of the database
        QUEUE_DEPTH.set(runs.queue_depth(ctx))
    body, content_type = exposition()
    return PlainTextResponse(body, media_type=content_type)


@router.get("/docs", dependencies=[Depends(public)], include_in_schema=False)
def api_docs(request: Request) -> Response:
    """The API reference, rendered on the server from the OpenAPI document."""
    schema: dict[str, Any] = request.app.openapi()
    operations = []
    for path, methods in sorted(schema.get("paths", {}).items()):
        for method, op in methods.items():
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                }
            )
    return render(request, "docs.html", {"operations": operations})
