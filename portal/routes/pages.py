"""Home ("What's wrong?"), about me and my API tokens (pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from portal.deps import ClientInfo, PortalContext, allow, client_info, fields_once, portal_context, public
from portal.errors import PortalError
from portal.rendering import render
from runner.auth import Principal

router = APIRouter(tags=["pages"])

Employee = Annotated[Principal, Depends(allow("employee"))]


@router.get("/favicon.ico", include_in_schema=False)
async def favicon(_user: Annotated[Principal | None, Depends(public)]) -> Response:
    """Browsers ask for /favicon.ico on their own; the icon is /static/favicon.svg (linked
    from every page), so this answers with a permanent redirect to it instead of a 404."""
    return RedirectResponse("/static/favicon.svg", status_code=308)


@router.get("/")
async def home(request: Request, user: Employee, q: str = "") -> Response:
    """What's wrong? — the catalogue of fixes, searchable with ``?q=``.
    \f
    (For developers, cut from the OpenAPI text by the form feed: portal/routes/fixes.py;
    async, as everything here is in memory — cached catalogue and list fragment — no thread hop.)"""
    from portal.routes.fixes import home_page

    return home_page(request, user, q)


@router.get("/me")
def about_me(request: Request, user: Employee) -> Response:
    """Who I am (account, directory, roles) and links to my tickets and API tokens."""
    return render(request, "me.html", {})


@router.get("/me/tokens")
def my_tokens(request: Request, user: Employee, ctx: Annotated[PortalContext, Depends(portal_context)]) -> Response:
    return render(request, "tokens.html", {"tokens": ctx.auth.list_tokens(user), "new_token": None})


@router.post("/me/tokens", dependencies=[Depends(fields_once)])
def create_token(
    request: Request,
    user: Employee,
    ctx: Annotated[PortalContext, Depends(portal_context)],
    client: Annotated[ClientInfo, Depends(client_info)],
    label: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    _id, token = ctx.auth.create_token(user, label, client_ip=client.address, user_agent=client.user_agent)
    return render(request, "tokens.html", {"tokens": ctx.auth.list_tokens(user), "new_token": token}, status_code=201)


@router.post("/me/tokens/{token_id}/revoke")
def revoke_token(
    user: Employee,
    ctx: Annotated[PortalContext, Depends(portal_context)],
    client: Annotated[ClientInfo, Depends(client_info)],
    token_id: int,
) -> Response:
    if not ctx.auth.revoke_token(user, token_id, client_ip=client.address, user_agent=client.user_agent):
        raise PortalError(404, "not_found", "You have no active token with that number.")
    return RedirectResponse("/me/tokens", status_code=303)
