"""A one-click unlock through the portal's API beside a raw ldap3 unlock (issue 8 benchmark).

All measured in this one run against the same lab slapd, N times each, interleaved:

  raw-same    raw ldap3 doing the same directory work as the API unlock below (the issue's
              baseline: "a raw ldap3 unlock doing the same directory work"), on a persistent
              LDAPS connection (TCP_NODELAY): the same 6 requests with the same filters,
              attributes and controls — find+read, admin-group search (with the proof that
              the admin group exists and the RFC 3876 matched-values control), both again
              (the unlock's fresh checks), the modify deleting the exact lock value read,
              the re-read; with mail (the default) it then sends the owner a notification
              with smtplib on a persistent SMTP session, as the runbook does
  raw-unlock  a simpler script for comparison: find the DN, read the lock state, check
              membership of the one admin group by a plain filter, delete
              pwdAccountLockedTime, re-read — 5 requests, without the checks Firstline makes
              (nesting, the group's existence, the exact value), and the same mail
  api-unlock  ``POST /api/v1/fixes/account-unlock`` with a reason, signed in as the demo
              agent with a real session, on a real ``firstline serve`` (uvicorn subprocess,
              SQLite, in-process workers). Directory work: the agent desk's look-up
              (``account_status``: 2 requests — find+read with entryUUID, then the
              admin-group search that also proves every admin group exists), which the
              runbook's ``check`` step then uses instead of asking again (the same read
              moments before: ``runner.engine.Prefetched``), and ``unlock`` (4: find+read,
              privilege, the modify deleting the exact lock value read, the re-read) — 6
              requests, every issue-7 check of the unlock made fresh. Besides: session and
              CSRF checks, policy, vetting, a queued ticket, a run lease and a target lock,
              step rows and audit events in the ledger, and the mail to the owner through
              the lab SMTP sink. Timed from the request until the answer, which comes when
              the ticket is final (resolved): the run executes in the request's thread.

The API client is the standard library's ``http.client`` on one keep-alive connection (the
session cookie and CSRF header set by hand), so the figure is the portal's time and not
an HTTP client library's (httpx adds about 0.8 ms per request here). Locking each account
before an iteration is not timed. Prints medians, p90 and the ratios (target: api-unlock
<= 2x raw-same), then the CPU each side used per unlock: the portal process's (from
/proc, over the whole interleaved loop, during which it idles but for the API case) and
this process's for raw-same. Needs the lab's slapd and SMTP sink
(``bash lab/up.sh``). Usage: .venv/bin/python bench/agent_unlock.py [N] [--no-mail]
(``--no-mail``: accounts without an address, so the runbook's mail step is skipped and the
raw side sends none).
"""

from __future__ import annotations

import http.client
import json
import os
import smtplib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, SUBTREE, Connection
from ldap3.utils.conv import escape_filter_chars

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from overhead import ADMIN_GROUP, PEOPLE, SECRETS, connect, raw_same_unlock, stats  # noqa: E402

from tests.integration.conftest import start_lab  # noqa: E402
from tests.portal_support import PortalServer, sign_in  # noqa: E402

STATE = ["uid", "mail", "givenName", "sn", "pwdAccountLockedTime", "pwdPolicySubentry", "pwdReset", "pwdChangedTime"]


def raw_unlock(svc: Connection, u: str) -> None:
    """The same steps as bench/overhead.py's raw-unlock."""
    svc.search(PEOPLE, f"(&(objectClass=inetOrgPerson)(uid={escape_filter_chars(u)}))", SUBTREE, attributes=["uid"])
    dn = svc.response[0]["dn"]
    svc.search(dn, "(objectClass=*)", BASE, attributes=STATE)
    assert svc.response[0]["attributes"]["pwdAccountLockedTime"]
    member = escape_filter_chars(dn)
    svc.search(ADMIN_GROUP, f"(|(member={member})(uniqueMember={member}))", BASE, attributes=["cn"])
    assert svc.modify(dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]}), svc.result
    svc.search(dn, "(objectClass=*)", BASE, attributes=["pwdAccountLockedTime"])
    assert not svc.response[0]["attributes"]["pwdAccountLockedTime"]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100
    start_lab("slapd", "smtp")
    admin = connect("cn=admin,dc=example,dc=org", (SECRETS / "admin").read_text().strip())
    svc = connect("cn=firstline,ou=services,dc=example,dc=org", (SECRETS / "firstline").read_text().strip())
    users = [f"benchapi{i}" for i in range(8)]
    for u in users:
        attrs = {"uid": u, "cn": u, "sn": "Bench", **({} if "--no-mail" in sys.argv else {"mail": f"{u}@example.org"})}
        admin.add(f"uid={u},{PEOPLE}", ["inetOrgPerson"], attrs)

    def lock(u: str) -> None:
        stamp = time.strftime("%Y%m%d%H%M%SZ", time.gmtime())
        admin.modify(f"uid={u},{PEOPLE}", {"pwdAccountLockedTime": [(MODIFY_ADD, [stamp])]})

    with tempfile.TemporaryDirectory() as tmp:
        server = PortalServer.start(Path(tmp) / "portal")
        agent = sign_in(server, "agent")
        host, port = server.base_url.split("//", 1)[1].rsplit(":", 1)
        api = http.client.HTTPConnection(host, int(port))
        try:
            headers = {
                "Content-Type": "application/json",
                "X-CSRF-Token": agent.csrf,
                "Cookie": f"{agent.cookie_name}={agent.cookie_value}",
            }

            def api_unlock(u: str) -> None:
                body = json.dumps({"reason": "benchmark", "user": u, "directory": "corp"})
                api.request("POST", "/api/v1/fixes/account-unlock", body=body, headers=headers)
                r = api.getresponse()
                answer = r.read()
                assert r.status == 200 and json.loads(answer)["state"] == "resolved", answer

            smtp = None if "--no-mail" in sys.argv else smtplib.SMTP("127.0.0.1", 8025, local_hostname="bench")

            def mail(u: str) -> None:
                if smtp is not None:
                    msg = EmailMessage()
                    msg["From"], msg["To"], msg["Subject"] = "servicedesk@example.org", f"{u}@example.org", "Unlocked"
                    msg["Message-ID"] = make_msgid(domain="example.org")
                    msg.set_content(f"Your account {u} was unlocked.")
                    smtp.send_message(msg)

            def same(u: str) -> None:
                raw_same_unlock(svc, u)
                mail(u)

            def simple(u: str) -> None:
                raw_unlock(svc, u)
                mail(u)

            cases: dict[str, Callable[[str], None]] = {"raw-same": same, "raw-unlock": simple, "api-unlock": api_unlock}
            for fn in cases.values():  # warm-up
                for u in users[:2]:
                    lock(u)
                    fn(u)
            timings: dict[str, list[float]] = {k: [] for k in cases}
            cpu = {k: 0.0 for k in cases}  # this process's CPU (thread time) per case, s
            serve_cpu = _process_cpu(server.proc.pid)
            for i in range(n):
                for name, fn in cases.items():  # interleaved, so machine noise hits all alike
                    u = users[i % len(users)]
                    lock(u)
                    t0, c0 = time.perf_counter(), time.thread_time()
                    fn(u)
                    cpu[name] += time.thread_time() - c0
                    timings[name].append((time.perf_counter() - t0) * 1000)
            serve_cpu = _process_cpu(server.proc.pid) - serve_cpu  # the portal idles during the raw cases
        finally:
            api.close()
            agent.client.close()
            server.stop()
            for u in users:
                admin.delete(f"uid={u},{PEOPLE}")

    same = statistics.median(timings["raw-same"])
    simple = statistics.median(timings["raw-unlock"])
    print(f"OpenLDAP unlock, N={n} each, interleaved (ms per unlock)")
    for name, samples in timings.items():
        med, p90 = stats(samples)
        print(
            f"  {name:10} median {med:8.3f}  p90 {p90:8.3f}   x raw-same {med / same:5.2f}"
            f"   x raw-unlock {med / simple:5.2f}"
        )
    ratio = statistics.median(timings["api-unlock"]) / same
    print(f"  target api-unlock <= 2x raw-same: {'met' if ratio <= 2 else 'NOT met'} ({ratio:.2f}x)")
    raw_cpu = cpu["raw-same"] / n * 1000
    api_cpu = serve_cpu / n * 1000
    print(
        f"  CPU per unlock (mean): firstline serve {api_cpu:.2f} ms, raw-same {raw_cpu:.2f} ms in this process"
        f" ({api_cpu / raw_cpu:.2f}x); both sides are mostly CPU, not waiting for slapd"
    )


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process *pid* so far (``/proc/<pid>/stat``, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
