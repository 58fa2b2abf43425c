"""A redeemed code whose run is refused before a ticket exists is given back.

``POST /api/v1/reset/confirm`` (and the code page) redeemed the code, then started the run;
when the run was refused before a ticket was written (the runbook changed since it was
vetted: 409; every worker busy: 503 "try again in a minute"), the code was used up and no
ticket said so: trying again as told answered "This code is not valid". Now the code is
live again (audited as ``selfservice.code_restored``) and the retry works once the run can
start.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.integration.portal.test_selfservice import Anon, address, good_password, wait_for_code
from tests.portal_support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]


def _runbooks(tmp_path: Path) -> Path:
    copy = tmp_path / "runbooks"
    shutil.copytree(REPO / "runbooks", copy)
    return copy


@pytest.mark.parametrize("channel", ["api", "page"])
def test_a_code_whose_run_is_refused_before_a_ticket_stays_usable(
    portal_with: Any, ldap_users: Any, tmp_path: Path, channel: str
) -> None:
    runbooks = _runbooks(tmp_path)
    server = portal_with(runbooks_dir=runbooks)
    user, old = ldap_users.create_user()
    a = Anon(server, address())
    headers = {"X-CSRF-Token": a.csrf}
    if channel == "api":
        assert a.client.post("/api/v1/reset/request", json={"login": user}, headers=headers).status_code == 202
    else:
        assert a.request_code(user).status_code == 303
    code = wait_for_code(user)
    vetted = (runbooks / "password-reset.yaml").read_bytes()
    (runbooks / "password-reset.yaml").write_bytes(vetted + b"\n# changed after vetting\n")
    new = good_password()
    body = {"login": user, "code": code, "new_password": new}
    if channel == "api":
        r = a.client.post("/api/v1/reset/confirm", json=body, headers=headers)
        assert r.status_code == 409 and r.json()["error"]["code"] == "not_vetted", r.text
    else:
        r = a.confirm(user, code, new)
        assert r.status_code == 409, (r.status_code, r.text[-400:])
    assert server.query("SELECT COUNT(*) FROM ticket WHERE subject = :u", u=user) == [(0,)]
    assert ldap_users.bind_ok(user, old)
    # the runbook is vetted again: the same code now sets the password
    (runbooks / "password-reset.yaml").write_bytes(vetted)
    if channel == "api":
        r = a.client.post("/api/v1/reset/confirm", json=body, headers=headers)
        assert r.status_code == 200 and r.json()["state"] == "resolved", r.text
    else:
        assert a.confirm(user, code, new).status_code == 303
    assert ldap_users.bind_ok(user, new)
    restored = server.query(
        "SELECT reason FROM audit_event WHERE action = 'selfservice.code_restored' AND target = :t", t=f"corp:{user}"
    )
    assert restored == [("not_vetted",)]
    # and it is used up now
    if channel == "api":
        assert a.client.post("/api/v1/reset/confirm", json=body, headers=headers).status_code == 400
    a.close()
