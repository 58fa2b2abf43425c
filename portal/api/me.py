"""``GET /api/v1/me``: who the caller is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from portal.deps import allow
from runner.auth import Principal

router = APIRouter(tags=["me"])


class Me(BaseModel):
    account: str
    directory: str
    username: str
    display_name: str
    roles: list[str]
    via: str


@router.get("/me")
def me(user: Annotated[Principal, Depends(allow("employee"))]) -> Me:
    """The signed-in caller: account, directory, roles, and whether by session or token."""
    return Me(
        account=user.account,
        directory=user.directory,
        username=user.username,
        display_name=user.display_name,
        roles=sorted(user.roles),
        via=user.via,
    )
