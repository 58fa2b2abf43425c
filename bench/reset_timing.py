"""Timing of ``POST /reset`` for an existing vs a non-existing login (security.md item 2).

A benchmark, not an assertion: it starts the real portal (uvicorn, like the integration
tests) over the lab slapd and SMTP sink, and sends N interleaved requests for a known
account with a mail address, a locked one, a privileged one and a login that does not
exist, each from its own client address (X-Forwarded-For from the trusted loopback proxy)
with a fresh login per request so that the account throttles never answer instead.
The directory look-up and the mail go to the background pool, so the medians should
differ by far less than the 25 ms of item 2. Prints median, p90 and p99 per kind and the
difference of the medians against "unknown".

Usage: .venv/bin/python bench/reset_timing.py [N]   (default 200 per kind; lab must be up)
"""

from __future__ import annotations

import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.directory.helpers import FLAVORS, Directory, _admin, connector  # noqa: E402
from tests.portal_support import PortalServer, start_anonymous  # noqa: E402


def main(n: int) -> None:
    admin, server = _admin("openldap")
    d = Directory("openldap", "corp", connector("corp"), admin, server, FLAVORS["openldap"][1], "uid")
    with tempfile.TemporaryDirectory() as tmp:
        # limits high enough that no request of the run is throttled
        portal = PortalServer.start(
            Path(tmp),
            reset_per_address_hour=10**6,
            reset_global_day=10**6,
        )
        try:
            kinds = {"known": [], "locked": [], "privileged": [], "unknown": []}  # type: dict[str, list[float]]
            known = [d.create_user()[0] for _ in range(n)]  # one request per account: never throttled
            locked = [d.create_user()[0] for _ in range(n)]
            for user in locked:
                d.lock(user)
            client, csrf = start_anonymous(portal)
            for _ in range(10):  # warm up
                client.post("/reset", data={"csrf_token": csrf, "login": "warmup"})
            for i in range(n):
                order = list(kinds)
                secrets.SystemRandom().shuffle(order)
                for kind in order:
                    login = {
                        "known": known[i % len(known)],
                        "locked": locked[i % len(locked)],
                        "privileged": "root-admin",
                        "unknown": f"nobody{secrets.token_hex(5)}",
                    }[kind]
                    headers = {"X-Forwarded-For": f"10.{i % 250}.{len(kind)}.{secrets.randbelow(250) + 1}"}
                    started = time.perf_counter()
                    r = client.post("/reset", data={"csrf_token": csrf, "login": login}, headers=headers)
                    kinds[kind].append((time.perf_counter() - started) * 1000)
                    assert r.status_code == 200, r.status_code
            client.close()
        finally:
            portal.stop()
            d.cleanup()
            admin.unbind()
    base = statistics.median(kinds["unknown"])
    print(f"POST /reset, {n} interleaved requests per kind (ms); the answer is the same page for all")
    print(f"{'kind':<11}{'median':>9}{'p90':>9}{'p99':>9}{'Δ median vs unknown':>22}")
    for kind, values in kinds.items():
        q = statistics.quantiles(values, n=100)
        med = statistics.median(values)
        print(f"{kind:<11}{med:9.2f}{q[89]:9.2f}{q[98]:9.2f}{med - base:+22.2f}")
    print("privileged: one account asked N times, so after its 3rd request the throttle answers (same page).")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
