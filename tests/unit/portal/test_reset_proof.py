"""The runner's own rule on resets (``RunService.account_rules``), whatever the portal offers.

Checked through ``plan`` (the same ``prepare`` as submit; nothing is contacted, no ticket):
an employee resets only with a ``selfservice`` or ``operator`` proof; an agent never resets
or unlocks their own account (any spelling that routes to it) and must name the account.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.api import open_app
from runner.errors import ParameterError, PolicyDenied
from runner.runs import PROOF_OPERATOR, PROOF_SELFSERVICE
from runner.service import Firstline
from runner.settings import Settings

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firstline]:
    tmp = tmp_path_factory.mktemp("proof")
    a = open_app(
        Settings(
            environment="test",
            database_url=f"sqlite:///{tmp / 'db.sqlite'}",
            runbooks_dir=REPO / "runbooks",
            inventory=REPO / "lab" / "inventory.yaml",
            audit_key_file=tmp / "audit.key",
            log_file=tmp / "log",
        )
    )
    yield a
    a.close()


@pytest.mark.parametrize("params", [{}, {"new_password": "Qx-a-new-one 2026! lantern"}, {"must_change": False}])
def test_an_employee_session_cannot_reset(app: Firstline, params: dict[str, object]) -> None:
    with pytest.raises(PolicyDenied, match="one-time code"):
        app.plan("password-reset", params, requester="ann@example.org", roles={"employee"}, proof=None)
    for proof in (PROOF_SELFSERVICE, PROOF_OPERATOR):
        assert app.plan("password-reset", params, requester="ann@example.org", roles={"employee"}, proof=proof)
    with pytest.raises(PolicyDenied):  # a made-up proof is no proof
        app.plan("password-reset", params, requester="ann@example.org", roles={"employee"}, proof="session")
    # unlocking and changing (with the old password) stay self-service
    assert app.plan("account-unlock", {}, requester="ann@example.org", roles={"employee"}, proof=None)


@pytest.mark.parametrize("runbook", ["password-reset", "account-unlock"])
@pytest.mark.parametrize(
    ("actor", "user"),
    [
        ("demo-agent@example.org", "demo-agent"),
        ("demo-agent@example.org", "DEMO-AGENT"),
        ("demo-agent@example.org", "demo-agent@example.org"),
        ("demo-agent@example.org", "Demo-Agent@Example.ORG"),
        ("demo-agent@example.org", "EXAMPLE-ORG\\demo-agent"),
        ("EXAMPLE\\bob", "bob@example.test"),
        ("bob@example.test", "example\\BOB"),
    ],
)
def test_an_agent_never_resets_or_unlocks_their_own_account(
    app: Firstline, runbook: str, actor: str, user: str
) -> None:
    with pytest.raises(PolicyDenied, match="their own account"):
        app.plan(runbook, {"user": user}, requester=user, roles={"agent"}, actor_id=actor, proof=None)


@pytest.mark.parametrize("runbook", ["password-reset", "account-unlock"])
def test_an_agent_names_the_account_and_may_act_on_others(app: Firstline, runbook: str) -> None:
    for params in ({}, {"user": ""}):
        with pytest.raises(ParameterError, match="never defaults to you"):
            app.plan(
                runbook,
                params,
                requester="demo-agent@example.org",
                roles={"agent"},
                actor_id="demo-agent@example.org",
                proof=None,
            )
    # the same name in the other directory is another person's account
    assert app.plan(
        runbook,
        {"user": "demo-agent@example.test"},
        requester="x",
        roles={"agent"},
        actor_id="demo-agent@example.org",
        proof=None,
    )
    assert app.plan(
        runbook, {"user": "alice"}, requester="alice", roles={"agent"}, actor_id="demo-agent@example.org", proof=None
    )
    # the operator's tool (CLI) keeps its behaviour
    assert app.plan(
        runbook,
        {"user": "demo-agent"},
        requester="demo-agent",
        roles={"agent"},
        actor_id="demo-agent@example.org",
        proof=PROOF_OPERATOR,
    )
