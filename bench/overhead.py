"""Firstline overhead on an OpenLDAP unlock: raw ldap3 vs a full `firstline` run.

Both measured in this one run, against the same lab slapd (lab/slapd.sh), N times each:

  raw-modify   the bare unlock: one ldap3 modify (delete pwdAccountLockedTime) on a
               persistent LDAPS connection with TCP_NODELAY
  raw-unlock   what a careful script does: find the DN (escaped filter), read its lock
               state, check admin-group membership, modify, re-read to confirm (5 requests)
  connector    LdapConnector.unlock_account on its pooled connection: the same LDAP work
               with every issue-7 check (nested admin groups, every admin group exists,
               bind account by DN and entryUUID, the exact lock value) in 4 requests —
               find+read, privilege, modify, re-read (docs/directory.md "Round trips")
  full-run     Firstline.run() of a one-step unlock runbook: policy + vetting + parameter
               validation + ticket + step row + audit events + the connector call

Locking each account before an iteration is not timed. Prints medians, p90 and the
ratios against raw-unlock and raw-modify, then the peak RSS of a `firstline run` CLI
process. Usage: .venv/bin/python bench/overhead.py [N]
"""

from __future__ import annotations

import json
import os
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, SUBTREE, Connection, Server, Tls
from ldap3.utils.conv import escape_filter_chars

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connectors.ldap_controls import matched_values  # noqa: E402
from connectors.ldap_flavors import OpenLdap  # noqa: E402
from runner.api import open_app  # noqa: E402
from runner.settings import Settings  # noqa: E402

SECRETS = REPO / "var" / "lab" / "slapd" / "secrets"
CA = REPO / "var" / "lab" / "ca" / "ca.crt"
PEOPLE = "ou=people,dc=example,dc=org"
ADMIN_GROUP = "cn=it-admins,ou=groups,dc=example,dc=org"
RUNBOOK = """\
schema_version: 1
name: bench-unlock
title: {en: Unlock (benchmark)}
category: identity/account
type: incident
audience: [agent]
parameters:
  - {name: user, type: account}
steps:
  - id: unlock
    connector: ldap
    action: unlock_account
    with: {user: "{{ params.user }}"}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "Account {{ params.user }} unlocked."}
"""


def connect(dn: str, password: str) -> Connection:
    server = Server("127.0.0.1", port=6636, use_ssl=True, tls=Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(CA)))
    conn = Connection(server, dn, password)
    conn.open()
    conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert conn.bind(), conn.result
    return conn


# -- raw ldap3 doing the same directory work as Firstline (bench/agent_unlock.py, bench/burst.py)
# What the connector asks for (connectors/ldap.py, ldap_flavors.py, ldap_protect.py; seen by
# logging ldap3 during portal unlocks and resets on 2026-12-01; checked again 2026-12-02).
READ = [
    "uid",
    "mail",
    "givenName",
    "sn",
    # the flavor's account attributes, taken from the connector so that the mirror cannot
    # fall behind it (pwdLastSuccess was missing from 2026-12-01 to 2026-12-02)
    *(a for a in OpenLdap.attributes if a not in ("uid", "mail", "givenName", "sn")),
]
BASE_DN = "dc=example,dc=org"


def same_find(svc: Connection, user: str) -> tuple[str, dict[str, Any]]:
    svc.search(
        PEOPLE,
        f"(&(objectClass=person)(uid={escape_filter_chars(user)}))",
        SUBTREE,
        attributes=[*READ, "entryUUID"],
        size_limit=2,
        dereference_aliases="NEVER",
    )
    (entry,) = svc.response
    return entry["dn"], entry["attributes"]


def same_admin_groups(svc: Connection, dn: str, uid: str) -> None:
    d = escape_filter_chars(dn)
    kinds = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
    member = f"(|(member={d})(uniqueMember={d})(uniqueMember~={d}))"
    # RFC 2307 groups; memberUid matched without case, as connectors.ldap_protect._posix_holds asks
    posix = f"(&(objectClass=posixGroup)(|(memberUid:caseIgnoreIA5Match:={escape_filter_chars(uid)})))"
    svc.search(
        BASE_DN,
        f"(|(&{kinds}{member}){posix}(entryDN={ADMIN_GROUP}))",
        SUBTREE,
        attributes=["member", "uniqueMember", "objectClass", "memberUid"],
        dereference_aliases="NEVER",
        controls=[
            matched_values(
                [("member", dn), ("uniqueMember", dn), ("objectClass", "groupOfUniqueNames"), ("memberUid", uid)],
                {"memberUid": "caseIgnoreIA5Match"},
            )
        ],
    )
    groups = [e for e in svc.response if e["type"] == "searchResEntry"]
    if len(groups) != 1 or groups[0]["attributes"]["member"]:
        raise RuntimeError(f"{dn}: privileged, or the admin group is missing")


def same_checked(svc: Connection, user: str) -> tuple[str, dict[str, Any]]:
    """The agent's look-up, then the action's own fresh checks (4 requests)."""
    dn, _ = same_find(svc, user)
    same_admin_groups(svc, dn, user)
    dn, attrs = same_find(svc, user)
    same_admin_groups(svc, dn, user)
    return dn, attrs


def raw_same_unlock(svc: Connection, user: str) -> str:
    dn, attrs = same_checked(svc, user)
    locked = attrs["pwdAccountLockedTime"]
    if not locked:
        raise RuntimeError(f"{user} is not locked")
    value = locked[0] if isinstance(locked, list) else locked
    stamp = value.strftime("%Y%m%d%H%M%SZ") if isinstance(value, datetime) else str(value)
    if not svc.modify(dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [stamp])]}):
        raise RuntimeError(f"unlock of {user}: {svc.result}")
    svc.search(dn, "(objectClass=*)", BASE, attributes=READ, dereference_aliases="NEVER")
    if svc.response[0]["attributes"]["pwdAccountLockedTime"]:
        raise RuntimeError(f"{user} still locked")
    return "resolved"


def stats(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s), s[int(len(s) * 0.9) - 1]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    subprocess.run(["bash", str(REPO / "lab" / "slapd.sh"), "start"], check=True, capture_output=True)
    admin = connect("cn=admin,dc=example,dc=org", (SECRETS / "admin").read_text().strip())
    svc = connect("cn=firstline,ou=services,dc=example,dc=org", (SECRETS / "firstline").read_text().strip())
    users = [f"bench{i}" for i in range(8)]
    for u in users:
        admin.add(
            f"uid={u},{PEOPLE}", ["inetOrgPerson"], {"uid": u, "cn": u, "sn": "Bench", "mail": f"{u}@example.org"}
        )

    def lock(u: str) -> None:
        # a lockout as ppolicy writes it after too many failures (000001010000Z would mean "disabled")
        stamp = time.strftime("%Y%m%d%H%M%SZ", time.gmtime())
        admin.modify(f"uid={u},{PEOPLE}", {"pwdAccountLockedTime": [(MODIFY_ADD, [stamp])]})

    def raw_modify(u: str) -> None:
        assert svc.modify(f"uid={u},{PEOPLE}", {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]}), svc.result

    def raw_unlock(u: str) -> None:
        svc.search(
            PEOPLE,
            f"(&(objectClass=inetOrgPerson)(uid={escape_filter_chars(u)}))",
            SUBTREE,
            attributes=["uid"],
            size_limit=2,
        )
        dn = svc.response[0]["dn"]
        svc.search(
            dn,
            "(objectClass=*)",
            BASE,
            attributes=[
                "uid",
                "mail",
                "givenName",
                "sn",
                "pwdAccountLockedTime",
                "pwdPolicySubentry",
                "pwdReset",
                "pwdChangedTime",
            ],
        )
        assert svc.response[0]["attributes"]["pwdAccountLockedTime"]
        svc.search(
            ADMIN_GROUP,
            f"(|(member={escape_filter_chars(dn)})(uniqueMember={escape_filter_chars(dn)}))",
            BASE,
            attributes=["cn"],
        )
        assert svc.modify(dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]}), svc.result
        svc.search(dn, "(objectClass=*)", BASE, attributes=["pwdAccountLockedTime"])
        assert not svc.response[0]["attributes"]["pwdAccountLockedTime"]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "runbooks").mkdir()
        (work / "runbooks" / "bench-unlock.yaml").write_text(RUNBOOK)
        env_settings = {
            "FIRSTLINE_DATABASE_URL": f"sqlite:///{work / 'ledger.db'}",
            "FIRSTLINE_RUNBOOKS_DIR": str(work / "runbooks"),
            "FIRSTLINE_INVENTORY": str(REPO / "lab" / "inventory.yaml"),
            "FIRSTLINE_AUDIT_KEY_FILE": str(work / "audit.key"),
            "FIRSTLINE_LOG_FILE": str(work / "firstline.log"),
        }
        settings = Settings(
            environment="test",
            database_url=env_settings["FIRSTLINE_DATABASE_URL"],
            runbooks_dir=work / "runbooks",
            inventory=REPO / "lab" / "inventory.yaml",
            audit_key_file=work / "audit.key",
            log_file=work / "firstline.log",
        )
        app = open_app(settings)
        app.vet("bench-unlock", "bench")

        def connector(u: str) -> None:
            with app.pool.using("ldap", "corp") as conn:
                assert conn.run("unlock_account", {"user": u}, timeout=10)["unlocked"] is True

        def full(u: str) -> None:
            out = app.run("bench-unlock", {"user": u}, requester="bench", roles={"agent"})
            assert out.state == "resolved", (out.reason, out.message)

        cases: dict[str, Callable[[str], None]] = {
            "raw-modify": raw_modify,
            "raw-unlock": raw_unlock,
            "connector": connector,
            "full-run": full,
        }
        for fn in cases.values():  # warm-up: connections, caches, first-run imports
            for u in users[:2]:
                lock(u)
                fn(u)
        timings: dict[str, list[float]] = {k: [] for k in cases}
        for i in range(n):
            for name, fn in cases.items():  # interleaved, so machine noise hits all cases alike
                u = users[i % len(users)]
                lock(u)
                t0 = time.perf_counter()
                fn(u)
                timings[name].append((time.perf_counter() - t0) * 1000)
        report = app.verify_audit()
        app.close()

        print(f"OpenLDAP unlock, N={n} each, interleaved (ms per operation)")
        base_unlock = statistics.median(timings["raw-unlock"])
        base_modify = statistics.median(timings["raw-modify"])
        for name, samples in timings.items():
            med, p90 = stats(samples)
            print(
                f"  {name:11} median {med:7.3f}  p90 {p90:7.3f}   x raw-unlock {med / base_unlock:5.2f}"
                f"   x raw-modify {med / base_modify:5.2f}"
            )
        print(f"  audit chain after the run: {'ok' if report.ok else 'BROKEN'} ({report.events} events)")

        # Peak resident memory of one real CLI run (a separate process).
        for u in users[:1]:
            lock(u)
        env = {**os.environ, **env_settings}
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run(
            [str(REPO / ".venv" / "bin" / "firstline"), "run", "bench-unlock", "-p", f"user={users[0]}", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        state = json.loads(proc.stdout)["state"] if proc.stdout.strip().startswith("{") else proc.stderr.strip()
        print(
            f"  CLI `firstline run bench-unlock`: peak RSS {rss_mb:.1f} MB (children max; before {before / 1024:.1f}),"
            f" outcome {state}"
        )
    for u in users:
        admin.delete(f"uid={u},{PEOPLE}")


if __name__ == "__main__":
    main()
