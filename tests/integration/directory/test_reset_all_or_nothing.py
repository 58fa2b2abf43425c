"""A password reset is applied whole or not at all, and never reported as "nothing changed"
when it changed the password.

On the lab Samba DC the service account is denied writing ``pwdLastSet`` on one account (an
explicit deny ACE, as a delegation gap looks in a real domain). Before: the reset wrote
``unicodePwd`` and then ``pwdLastSet`` as two modifies; the second was refused, the run
escalated "The service account is not allowed to do this on that account", the audit said
``failure`` (nothing applied) — and the account's password had been replaced by a generated
one that nobody was given. Now both travel in one modify, which the DC refuses whole.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from ldap3 import BASE, MODIFY_REPLACE
from ldap3.protocol.microsoft import security_descriptor_control
from sqlalchemy import select

from connectors.ldap_protect import sid_to_str
from runner.ledger.tables import audit_event
from runner.service import Firstline
from tests.integration.directory.helpers import Directory

SVC = "CN=svc-firstline,CN=Users,DC=example,DC=test"
PWD_LAST_SET = "bf967a0a-0de6-11d0-a285-00aa003049e2"  # schemaIDGUID of pwdLastSet
DACL = 0x04

# Samba's own Python bindings (the lab DC's package) turn SDDL into the binary descriptor.
_ADD_DENY_ACE = r"""
import sys
from samba.dcerpc import security
from samba.ndr import ndr_pack, ndr_unpack
sd = ndr_unpack(security.descriptor, bytes.fromhex(sys.argv[1]))
domain = security.dom_sid(sys.argv[2].rsplit("-", 1)[0])
text = sd.as_sddl(domain)
start = text.index("(", text.index("D:"))
text = text[:start] + sys.argv[3] + text[start:]
print(ndr_pack(security.descriptor.from_sddl(text, domain)).hex())
"""


def deny_service_writing_pwd_last_set(ad: Directory, user: str) -> None:
    ad.admin.search(SVC, "(objectClass=*)", BASE, attributes=["objectSid"])
    sid = sid_to_str(ad.admin.entries[0].objectSid.raw_values[0])
    dn = ad.dn(user)
    sd_flags = security_descriptor_control(sdflags=DACL)
    ad.admin.search(dn, "(objectClass=*)", BASE, attributes=["nTSecurityDescriptor"], controls=sd_flags)
    current = ad.admin.entries[0].nTSecurityDescriptor.raw_values[0]
    ace = f"(OD;;WP;{PWD_LAST_SET};;{sid})"
    packed = subprocess.run(
        ["/usr/bin/python3", "-c", _ADD_DENY_ACE, current.hex(), sid, ace],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    ok = ad.admin.modify(dn, {"nTSecurityDescriptor": [(MODIFY_REPLACE, [bytes.fromhex(packed)])]}, controls=sd_flags)
    assert ok, ad.admin.result


def _events(app: Firstline, ticket: str, action: str) -> list[dict[str, Any]]:
    with app.engine.connect() as c:
        rows = c.execute(
            select(audit_event)
            .where(audit_event.c.ticket == ticket, audit_event.c.action == action)
            .order_by(audit_event.c.seq)
        )
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows.mappings()]


def test_a_reset_the_directory_refuses_in_part_changes_nothing_and_says_so(ad: Directory, lab_app: Firstline) -> None:
    user, pw = ad.create_user()
    deny_service_writing_pwd_last_set(ad, user)
    before = ad.state_attrs(user)
    for must_change in (True, False):
        out = lab_app.run(
            "password-reset",
            {"user": user, "directory": "ad", "must_change": must_change},
            requester=user,
            actor_id="agent-7",
        )
        assert out.state == "escalated", out.message
        assert out.reason == "insufficient_access", (out.reason, out.message)
        assert not out.secrets  # no temporary password: none was set
        (event,) = _events(lab_app, out.ticket_number, "ldap.reset_password")
        assert event["outcome"] == "failure", event
        # nothing about the account changed: password (pwdLastSet moves with every password
        # write), must-change state, lock, flags (whenChanged also moves with a sign-in)
        after = ad.state_attrs(user)
        assert {k: v for k, v in after.items() if k != "whenChanged"} == {
            k: v for k, v in before.items() if k != "whenChanged"
        }
        assert ad.bind_ok(user, pw)
