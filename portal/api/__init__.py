"""The JSON API under ``/api/v1``. Every request body model derives from ``StrictBody``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictBody(BaseModel):
    """A JSON request body: a field the model does not declare is refused with 422 (naming it
    when it is a near miss, ``portal.errors``), never ignored; nothing runs and no ticket opens."""

    model_config = ConfigDict(extra="forbid")
