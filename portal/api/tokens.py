"""Personal API tokens: create (shown once), list, revoke. ``/api/v1/tokens``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from portal.api import StrictBody
from portal.deps import ClientInfo, PortalContext, allow, client_info, portal_context
from portal.errors import PortalError
from runner.auth import Principal

router = APIRouter(tags=["tokens"])
Employee = Annotated[Principal, Depends(allow("employee"))]


class NewToken(StrictBody):
    label: str = Field(min_length=1, max_length=64, description="A name to tell your tokens apart")


class CreatedToken(BaseModel):
    id: int
    label: str
    token: str = Field(description="Shown this once; only its SHA-256 is stored")


class TokenInfo(BaseModel):
    id: int
    label: str
    prefix: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None = Field(description="From this instant (UTC) the token no longer works (api_token_days)")
    expired: bool
    revoked: bool


@router.get("/tokens")
def list_tokens(user: Employee, ctx: Annotated[PortalContext, Depends(portal_context)]) -> list[TokenInfo]:
    """Your API tokens (never the token values)."""
    return [TokenInfo(**t) for t in ctx.auth.list_tokens(user)]


@router.post("/tokens", status_code=201)
def create_token(
    body: NewToken,
    user: Employee,
    ctx: Annotated[PortalContext, Depends(portal_context)],
    client: Annotated[ClientInfo, Depends(client_info)],
) -> CreatedToken:
    """A new token acting as you, with your current roles. Keep it: it is shown only now.

    Only a signed-in person (session) may create one: a token cannot mint more tokens (403).
    """
    if user.via != "session":
        raise PortalError(403, "forbidden", "API tokens are created after signing in, not with another token.")
    token_id, token = ctx.auth.create_token(user, body.label, client_ip=client.address, user_agent=client.user_agent)
    return CreatedToken(id=token_id, label=body.label.strip(), token=token)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: int,
    user: Employee,
    ctx: Annotated[PortalContext, Depends(portal_context)],
    client: Annotated[ClientInfo, Depends(client_info)],
) -> Response:
    """Revoke one of your tokens; it stops working at once."""
    if not ctx.auth.revoke_token(user, token_id, client_ip=client.address, user_agent=client.user_agent):
        raise PortalError(404, "not_found", "You have no active token with that number.")
    return Response(status_code=204)
