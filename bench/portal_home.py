"""The signed-in home page beside a bare FastAPI + Jinja2 page; start-up time; memory (issue 8).

Measured in this one run, by the same client, on loopback:

  portal-home  ``GET /`` signed in as the demo employee on a real ``firstline serve``
               (uvicorn subprocess, SQLite, in-process workers, lab inventory): session
               look-up in the database, CSRF, security headers, language, the catalogue
               of runbooks the employee may run, rendered with Jinja2
  bare-home    ``GET /`` of bench/bare_home.py (uvicorn subprocess): FastAPI + Jinja2, no
               middleware, a page padded to the portal home page's size

Rounds alternate the two (R rounds of N requests each, C concurrent clients), so load
from other processes hits both alike. Prints per server requests per second (median
over rounds) and p50/p99 latency over all requests, the ratio of portal to bare rps
(median of the per-round ratios; target >= 0.5), the time from starting
``firstline serve`` to the first answered page (``GET /signin``; fresh data directory,
so migrations included; median of S starts; target < 3 s), and the portal's resident
memory (VmRSS) after the run (target < 250 MB).

Needs the lab's slapd and SMTP sink (``bash lab/up.sh``) for the sign-in.
Usage: .venv/bin/python bench/portal_home.py [--rounds R] [--requests N] [--clients C] [--starts S]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.conftest import start_lab  # noqa: E402
from tests.portal_support import PortalServer, free_port, sign_in  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def burst(url: str, cookies: dict[str, str], n: int, clients: int) -> tuple[float, list[float]]:
    """*n* GETs of *url* from *clients* threads (keep-alive); (requests per second, latencies in ms)."""
    lat: list[float] = []
    lock = threading.Lock()
    per = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    pool = [httpx.Client(cookies=cookies, timeout=30) for _ in range(clients)]
    for c in pool:  # warm the connection
        c.get(url).raise_for_status()

    def work(c: httpx.Client, count: int) -> None:
        mine = []
        for _ in range(count):
            t = time.perf_counter()
            r = c.get(url)
            mine.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{url}: {r.status_code}")
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=work, args=(c, k)) for c, k in zip(pool, per, strict=True)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    for c in pool:
        c.close()
    if len(lat) != n:
        raise RuntimeError(f"{url}: only {len(lat)} of {n} requests answered")
    return n / took, lat


def start_bare(size: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ, BARE_BYTES=str(size), PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_home:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--no-server-header",
        ],
        env=env,
        cwd=str(REPO),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the bare app did not start")


def time_to_first_page(server: PortalServer, work: Path) -> float:
    """Seconds from starting ``firstline serve`` (fresh data directory) to a 200 on /signin."""
    port = free_port()
    data = work / f"start{port}"
    data.mkdir()
    env = dict(server.env)
    env["FIRSTLINE_DATA_DIR"] = str(data)
    env["FIRSTLINE_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    firstline = Path(sys.executable).with_name("firstline")
    url = f"http://127.0.0.1:{port}/signin"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(firstline), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=str(data),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("firstline serve exited")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            if time.perf_counter() - start > 60:
                raise RuntimeError("no page within 60 s")
            time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(10)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--starts", type=int, default=3)
    args = ap.parse_args()
    start_lab("slapd", "smtp")
    with tempfile.TemporaryDirectory(prefix="fl-bench-home-") as tmp:
        work = Path(tmp)
        server = PortalServer.start(work / "portal")
        bare = None
        try:
            employee = sign_in(server, "employee")
            cookies = {employee.cookie_name: employee.cookie_value}
            home = employee.client.get("/")
            size = len(home.content)
            bare, bare_url = start_bare(size)
            bare_size = len(httpx.get(bare_url).content)
            print(f"page sizes: portal home {size} B, bare page {bare_size} B")
            results: dict[str, list[float]] = {"portal": [], "bare": []}
            lats: dict[str, list[float]] = {"portal": [], "bare": []}
            ratios = []
            for r in range(args.rounds):
                order = [("portal", server.base_url + "/", cookies), ("bare", bare_url, {})]
                if r % 2:
                    order.reverse()
                got = {}
                for name, url, jar in order:
                    rps, lat = burst(url, jar, args.requests, args.clients)
                    got[name] = rps
                    results[name].append(rps)
                    lats[name].extend(lat)
                ratios.append(got["portal"] / got["bare"])
            for name in ("portal", "bare"):
                print(
                    f"{name + '-home':12} rps median {statistics.median(results[name]):8.1f}   "
                    f"p50 {pct(lats[name], 0.50):6.2f} ms   p99 {pct(lats[name], 0.99):6.2f} ms   "
                    f"({len(lats[name])} requests, {args.clients} clients)"
                )
            ratio = statistics.median(ratios)
            print(f"ratio portal/bare rps (median of {args.rounds} rounds): {ratio:.2f}  (target >= 0.5)")
            rss = rss_mb(server.proc.pid)
            starts = [time_to_first_page(server, work) for _ in range(args.starts)]
            first = statistics.median(starts)
            print(
                f"firstline serve -> first page: median {first:.2f} s over {args.starts} starts "
                f"({', '.join(f'{s:.2f}' for s in starts)})  (target < 3 s)"
            )
            print(f"portal resident memory after the run: {rss:.0f} MB  (target < 250 MB)")
            ok = ratio >= 0.5 and first < 3 and rss < 250
            print("targets met" if ok else "targets NOT all met")
            employee.client.close()
        finally:
            if bare is not None:
                bare.terminate()
                bare.wait(10)
            server.stop()


if __name__ == "__main__":
    main()
