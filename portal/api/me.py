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
    password_change_required: bool  # signed in with a temporary password: only changing it works


@router.get("/me")
def me(user: Annotated[Principal, Depends(allow("employee", temporary=True))]) -> Me:
    """The signed-in caller: account, directory, roles, whether by session or token, and
    whether the password must be changed before anything else."""
    return Me(
        account=user.account,
        directory=user.directory,
        username=user.username,
        display_name=user.display_name,
        roles=sorted(user.roles),
        via=user.via,
        password_change_required=user.must_change,
    )
