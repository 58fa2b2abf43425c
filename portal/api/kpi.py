"""``GET /api/v1/kpi``: the KPI figures as JSON (everyone signed in; definitions in docs/kpi.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from portal.api.audit import Reader
from portal.deps import allow
from runner.auth import Principal

router = APIRouter(tags=["kpi"])
Employee = Annotated[Principal, Depends(allow("employee"))]
TIME = "2026-11-01, 2026-11-01T08:00+01:00, ...Z; no offset means UTC"


@router.get("/kpi")
def kpi(
    user: Employee,
    reader: Reader,
    since: Annotated[
        str | None, Query(max_length=64, description="Inclusive; default: 30 days before until. " + TIME)
    ] = None,
    until: Annotated[str | None, Query(max_length=64, description="Exclusive; default: now. " + TIME)] = None,
) -> dict[str, Any]:
    """Tickets per day; FCR, self-service share, escalation rate and time to resolve, overall,
    per runbook and per category, for tickets opened in [since, until)."""
    return reader.kpi(since, until).as_dict()
