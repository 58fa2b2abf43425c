"""Self-service reset / unlock over JSON: ``/api/v1/reset/*`` (no sign-in).

``GET /reset/policy`` → the password rules shown while typing, and the CSRF token that
goes with the pre-session cookie this answer sets (send it as ``X-CSRF-Token``).
``POST /reset/request`` ``{"login", "purpose": "reset"|"unlock"}`` → always 202 with the
same body. ``POST /reset/confirm`` ``{"login", "code", "purpose", "new_password"?}`` →
200 with the ticket, 400 ``code_invalid``, 422 ``password_refused`` (also when the directory
refuses the new password as it is written — the current one, one in its history: nothing
changed, the code stays usable), 422 ``invalid_input`` for a code that is not 8 digits once
read (``runner.selfservice.normalize_code``; no try spent). Rules and guarantees:
``runner.selfservice``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from portal import i18n, runs
from portal.api import StrictBody
from portal.deps import ClientInfo, PortalContext, client_info, portal_context, public
from portal.errors import PortalError
from portal.routes.selfservice import refusal_text, selfservice_of
from runner.auth import DirectoryUnavailable, Principal
from runner.mytickets import effect_of, outcome
from runner.runs import PROOF_SELFSERVICE, RunOutcome
from runner.selfservice import CodeInvalid, CodeMalformed, PasswordRefused, Proof, ProofOfWorkRequired, params_for

router = APIRouter(tags=["self-service"])
Anyone = Annotated[Principal | None, Depends(public)]
Ctx = Annotated[PortalContext, Depends(portal_context)]
Client = Annotated[ClientInfo, Depends(client_info)]
ACCEPTED = (
    "If the user name belongs to an account that can use this service, a code is on its way to the "
    "e-mail address on file."
)


class Policy(BaseModel):
    min_length: int
    max_length: int
    blocklist: bool
    personal_info: bool
    csrf_token: str = Field(description="Send as X-CSRF-Token with the pre-session cookie of this answer")
    pow_challenge: str | None = Field(
        default=None,
        description="Set when this client address must solve a puzzle first: find a decimal nonce such that "
        "SHA-256(pow_challenge + ':' + nonce) starts with pow_bits zero bits; send both with /reset/request",
    )
    pow_bits: int | None = None


class CodeRequest(StrictBody):
    login: str = Field(min_length=1, max_length=320)
    purpose: Literal["reset", "unlock"] = "reset"
    pow_challenge: str | None = Field(default=None, max_length=128)
    pow_nonce: str | None = Field(default=None, max_length=32)


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    message: str


class CodeConfirm(StrictBody):
    login: str = Field(min_length=1, max_length=320)
    code: str = Field(min_length=1, max_length=64)
    purpose: Literal["reset", "unlock"] = "reset"
    new_password: str | None = Field(default=None, max_length=1024)


class Done(BaseModel):
    ticket: str
    state: str
    outcome: dict[str, str]
    message: str


@router.get("/reset/policy")
def policy(request: Request, _user: Anyone, ctx: Ctx, client: Client) -> Policy:
    """The password rules (for a strength display; the server checks on confirm), and a
    proof-of-work challenge when this client address has to solve one before ``/reset/request``."""
    request.state.issue_pre_cookie = True  # the csrf_token below is bound to it (JSON answers set none otherwise)
    service = selfservice_of(ctx)
    challenge = service.challenge_for(client.address)
    return Policy(
        **service.policy(),
        csrf_token=request.state.csrf_token,
        pow_challenge=challenge.token if challenge else None,
        pow_bits=challenge.bits if challenge else None,
    )


@router.post("/reset/request", status_code=202)
def request_code(body: CodeRequest, _user: Anyone, ctx: Ctx, client: Client) -> Accepted:
    """Ask for a one-time code; the answer is the same whatever the login.

    429 ``proof_of_work_required`` (the same for every login) when this client address must
    solve a puzzle: take ``pow_challenge`` from ``GET /reset/policy`` and send the solution.
    """
    try:
        selfservice_of(ctx).request_code(
            body.login,
            body.purpose,
            client_ip=client.address,
            user_agent=client.user_agent,
            pow_challenge=body.pow_challenge,
            pow_nonce=body.pow_nonce,
        )
    except ProofOfWorkRequired as exc:
        raise PortalError(429, "proof_of_work_required", i18n.error_text(exc)) from None
    return Accepted(message=i18n.gettext(ACCEPTED))


@router.post("/reset/confirm")
def confirm(request: Request, body: CodeConfirm, _user: Anyone, ctx: Ctx, client: Client) -> Done:
    """Redeem a code: set the new password (``reset``) or unlock (``unlock``). No session is created."""
    if body.purpose == "reset" and not body.new_password:
        # a malformed request, answered before the code is looked at (no try of the code spent)
        raise PortalError(422, "invalid_input", i18n.gettext("new_password: type the new password."))

    def start(proof: Proof) -> RunOutcome:
        return runs.run(
            ctx,
            proof.runbook,
            params_for(proof, body.new_password),
            user=proof.principal(),
            client=client,
            channel="api",
            proof=PROOF_SELFSERVICE,  # the code was redeemed just before: the only place this is set
        )

    try:  # a run refused before its ticket (busy, not vetted) gives the code back
        result = selfservice_of(ctx).redeem_and_start(
            body.login,
            body.code,
            body.purpose,
            start,
            new_password=body.new_password,
            client_ip=client.address,
            user_agent=client.user_agent,
        )
    except CodeMalformed as exc:  # not a code's form: refused before the code was looked at
        raise PortalError(422, "invalid_input", i18n.error_text(exc)) from None
    except CodeInvalid as exc:
        raise PortalError(400, "code_invalid", i18n.error_text(exc)) from None
    except PasswordRefused as exc:  # refused before the code was used, or given back: it stays usable
        code = "invalid_input" if exc.reason in ("invalid_characters", "not_for_unlock") else "password_refused"
        raise PortalError(422, code, refusal_text(exc, ctx, request.state.lang)) from None
    except DirectoryUnavailable as exc:
        raise PortalError(503, "directory_unavailable", i18n.error_text(exc)) from None
    return Done(
        ticket=result.ticket_number,
        state=result.state,
        outcome=outcome(
            result.state,
            None,
            request.state.lang,
            effect=effect_of(ctx.firstline, result.steps) if result.state == "resolved" else None,
        ),
        message=result.message,
    )
