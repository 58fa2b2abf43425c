from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.api import open_app
from runner.service import Firstline
from runner.settings import Settings
from tests.databases import MakeDatabaseUrl
from tests.fakes import FakeConnector

UNLOCK = """\
schema_version: 1
name: fake-unlock
title: {en: Unlock an account, nl: Account ontgrendelen}
category: identity/account
type: incident
audience: [self_service, agent]
parameters:
  - {name: user, type: account, default: "{{ requester }}"}
steps:
  - id: check
    connector: fake
    action: account_status
    with: {user: "{{ params.user }}"}
  - id: unlock
    connector: fake
    action: unlock_account
    with: {user: "{{ params.user }}"}
    when: "{{ steps.check.locked }}"
    retries: 2
verify: {connector: fake, action: account_status, with: {user: "{{ params.user }}"}, expect: {locked: false}}
on_failure: {escalate_to: service-desk-l2}
resolution: {code: solved_by_automation, note: "Account {{ params.user }} unlocked."}
"""

RESET = """\
schema_version: 1
name: fake-reset
title: {en: Reset a password}
category: identity/password
audience: [agent, self_service]
parameters:
  - {name: user, type: account}
  - {name: new_password, type: secret, required: false}
steps:
  - id: reset
    connector: fake
    action: reset_password
    with: {user: "{{ params.user }}", new_password: "{{ params.new_password }}"}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "Password of {{ params.user }} reset."}
"""


@pytest.fixture(autouse=True)
def _reset_fake() -> Iterator[None]:
    FakeConnector.script = {}
    FakeConnector.calls = []
    yield


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "fake-unlock.yaml").write_text(UNLOCK)
    (tmp_path / "runbooks" / "fake-reset.yaml").write_text(RESET)
    (tmp_path / "inventory.yaml").write_text(
        textwrap.dedent("""\
        defaults: {fake: f1}
        targets:
          f1: {connector: fake, label: one}
          f2: {connector: fake}
        choices:
          printers:
            office-1: {label: Office 1, target: f2, queue: office-1}
        """)
    )
    return tmp_path


@pytest.fixture
def settings(workdir: Path, make_database_url: MakeDatabaseUrl) -> Settings:
    """SQLite ``<workdir>/fl.db``; a fresh PostgreSQL database in ``both_databases`` modules."""
    return Settings(
        environment="test",
        database_url=make_database_url(workdir / "fl.db"),
        runbooks_dir=workdir / "runbooks",
        inventory=workdir / "inventory.yaml",
        audit_key_file=workdir / "audit.key",
        log_file=workdir / "fl.log",
        checkpoint_every=5,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Firstline]:
    fl = open_app(settings, connectors={"fake": FakeConnector})
    fl.vet("fake-unlock", "reviewer")
    fl.vet("fake-reset", "reviewer")
    yield fl
    fl.close()
