"""My tickets (pages): the list, one ticket with live progress, and its event stream.

``GET /me/tickets``: the signed-in person's tickets with the outcome in plain words.
``GET /me/tickets/{number}``: one ticket; while it is open the page refreshes itself
every few seconds (``<meta http-equiv="refresh">``, the fallback without JavaScript) and
``/static/progress.js`` follows ``GET /me/tickets/{number}/events`` instead
(server-sent events: one ``step`` event per step row written after the position in
``Last-Event-ID`` / ``?after=``, then ``done`` with the outcome). Someone else's ticket
is answered like a ticket that does not exist (404).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from portal.deps import PortalContext, allow, portal_context
from portal.rendering import render
from runner import mytickets
from runner.auth import Principal

router = APIRouter(tags=["my tickets"])
# temporary=True: a session with a temporary password follows its password change here
Employee = Annotated[Principal, Depends(allow("employee", temporary=True))]
Ctx = Annotated[PortalContext, Depends(portal_context)]

POLL_SECONDS = 0.5  # how often the stream reads the ledger
STREAM_SECONDS = 300  # a stream ends after this; the browser reconnects with Last-Event-ID
REFRESH_SECONDS = 3  # the meta refresh of an open ticket's page (no JavaScript)


@router.get("/me/tickets")
def my_tickets(request: Request, user: Employee, ctx: Ctx) -> Response:
    rows = mytickets.mine(ctx.firstline, user.account, request.state.lang)
    return render(request, "mytickets/list.html", {"tickets": rows})


@router.get("/me/tickets/{number}")
def my_ticket(request: Request, user: Employee, ctx: Ctx, number: str) -> Response:
    found = mytickets.one(ctx.firstline, user.account, number[:32], request.state.lang)
    return render(request, "mytickets/ticket.html", {"t": found, "refresh": REFRESH_SECONDS})


def _after(request: Request, after: int) -> int:
    header = request.headers.get("last-event-id", "")
    if header.isascii() and header.isdigit() and len(header) < 12:
        return max(after, int(header))
    return max(0, after)


async def event_stream(
    request: Request, ctx: PortalContext, account: str, number: str, after: int
) -> AsyncIterator[str]:
    """``text/event-stream`` lines: ``step`` events (id = position), then one ``done``."""
    lang = request.state.lang
    position = after
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + STREAM_SECONDS
    yield "retry: 2000\n\n"
    while True:
        followed = await run_in_threadpool(mytickets.follow, ctx.firstline, account, number, position, lang)
        for step in followed.steps:
            yield f"id: {step['position']}\nevent: step\ndata: {json.dumps(step, ensure_ascii=False)}\n\n"
        position = followed.last_seq
        if followed.done:
            data = {"state": followed.state, "outcome": followed.outcome, "message": followed.message}
            yield f"id: {position}\nevent: done\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            return
        if loop.time() > stop_at or await request.is_disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)


@router.get("/me/tickets/{number}/events")
def my_ticket_events(request: Request, user: Employee, ctx: Ctx, number: str, after: int = 0) -> Response:
    number = number[:32]
    mytickets.follow(ctx.firstline, user.account, number, 0, request.state.lang)  # 404 before streaming
    return StreamingResponse(
        event_stream(request, ctx, user.account, number, _after(request, after)),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )
