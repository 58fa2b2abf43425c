"""Your own tickets over JSON: ``GET /api/v1/tickets/mine``, ``GET /api/v1/tickets/{number}/events``.

``events?after=N`` returns the step rows written after position N (poll with the
returned ``last_seq``) — the polling twin of the page's server-sent events. Someone
else's ticket answers 404, like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from portal.deps import PortalContext, allow, portal_context
from runner import mytickets
from runner.auth import Principal

router = APIRouter(tags=["my tickets"])
# temporary=True: a session with a temporary password follows its password change here
Employee = Annotated[Principal, Depends(allow("employee", temporary=True))]
Ctx = Annotated[PortalContext, Depends(portal_context)]


@router.get("/tickets/mine")
def mine(
    request: Request, user: Employee, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[dict[str, Any]]:
    """Your tickets, newest first, with the outcome in plain words and what to do next."""
    return mytickets.mine(ctx.firstline, user.account, request.state.lang, limit)


@router.get("/tickets/mine/{number}")
def one(request: Request, user: Employee, ctx: Ctx, number: str) -> dict[str, Any]:
    """One of your tickets with its steps so far."""
    return mytickets.one(ctx.firstline, user.account, number[:32], request.state.lang)


@router.get("/tickets/{number}/events")
def events(
    request: Request, user: Employee, ctx: Ctx, number: str, after: Annotated[int, Query(ge=0)] = 0
) -> dict[str, Any]:
    """Steps of your ticket written after position *after*, the outcome now, and ``last_seq``."""
    return mytickets.follow(ctx.firstline, user.account, number[:32], after, request.state.lang).as_dict()
