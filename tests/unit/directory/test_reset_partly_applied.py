"""An OpenLDAP reset is two operations (RFC 3062 password modify, then ``pwdReset``): when the
second is refused the password is already replaced, so the reset must not be reported as a
refusal that changed nothing (audit ``failure``) — it is ``reset_incomplete`` with outcome
unknown, and no temporary password is handed out. (AD sends both in one modify: see
tests/integration/directory/test_reset_all_or_nothing.py, on the lab DC.) The lab slapd grants
the service account ``pwdReset`` everywhere it may reset, so this branch has no lab trigger.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from connectors.base import Rejected
from connectors.ldap import LdapConnector, LdapTarget
from connectors.ldap_flavors import OpenLdap, PartlyApplied, PwdPolicy
from tests.unit.directory.test_ldap_units import BASE

CONFIG = BASE  # the lab slapd's ldap target settings (never contacted here)
DN = "uid=alice,ou=people,dc=example,dc=org"


class FlagRefused:
    """A connection whose password modify succeeds and whose next modify is refused."""

    def __init__(self) -> None:
        self.result: dict[str, Any] = {}
        self.passwords: list[bytes] = []
        self.extend = SimpleNamespace(standard=SimpleNamespace(modify_password=self._modify_password))

    def _modify_password(self, *, user: str, new_password: bytes, controls: Any) -> bool:
        self.passwords.append(new_password)
        self.result = {"result": 0}
        return True

    def modify(self, dn: str, changes: Any) -> bool:
        self.result = {"result": 50, "description": "insufficientAccessRights", "message": ""}
        return False


@pytest.mark.parametrize("must_change", [True, False])
def test_the_flavour_says_the_password_was_replaced(must_change: bool) -> None:
    conn = FlagRefused()
    with pytest.raises(PartlyApplied) as err:
        OpenLdap(lambda _dn: None).reset(conn, DN, "Zq-new-password-1", must_change)  # type: ignore[arg-type]
    assert conn.passwords == [b"Zq-new-password-1"] and err.value.result["result"] == 50


@pytest.mark.parametrize("generated", [True, False])
def test_the_connector_reports_it_as_possibly_applied_and_hands_nothing_out(
    generated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = LdapConnector("corp", LdapTarget.model_validate(CONFIG), lambda ref: "secret")
    conn = FlagRefused()
    status = {"dn": DN, "given_name": "", "surname": "", "mail": "", "_attrs": {}}
    monkeypatch.setattr(connector, "_target", lambda user, timeout: dict(status))
    monkeypatch.setattr(connector, "_service", lambda timeout: conn)
    monkeypatch.setattr(connector, "_require_tls", lambda c: None)
    # a policy that enforces must-change (an unknown one is refused before any write)
    monkeypatch.setattr(connector._flavor, "_policy", lambda dn: PwdPolicy(must_change=True))
    inputs: dict[str, Any] = {"user": "alice"}
    if not generated:
        inputs["new_password"] = "Zq-bcdfg-2689 Kv-hjkm!"
    with pytest.raises(Rejected) as err:
        connector.reset_password(timeout=5, **inputs)
    assert err.value.reason == "reset_incomplete" and err.value.outcome_unknown is True
    assert "password was replaced" in str(err.value)
    assert conn.passwords and conn.passwords[0].decode() not in str(err.value)
