"""A burst of account unlocks and password resets: Celery, the embedded default, raw ldap3 (issue 9).

Measured in this one run, against the same lab slapd, with the same client concurrency C
(threads; each sends a request and waits for its answer, then the next):

  raw-ldap3        raw ldap3 doing the same directory work as the API requests below (the
                   issue's baseline), one persistent LDAPS connection per thread (TCP_NODELAY,
                   bound as Firstline's service account), the requests with the filters,
                   attributes and controls the connector sends: unlock = the agent's
                   look-up (find+read, admin-group search with the group-existence proof
                   and the matched-values control), the unlock's fresh find+read and
                   admin-group search, the modify deleting the exact lock value read, the
                   re-read (6 requests); reset = the look-up (2), the reset's fresh
                   find+read and admin-group search, RFC 3062 password modify with a
                   generated 20-character password, pwdReset TRUE (6 requests)
  raw-simple       (with --raw-simple) what a simpler script does: unlock = find, read,
                   membership of the one admin group by a plain filter, delete
                   pwdAccountLockedTime, re-read (5); reset = find, read, membership,
                   password modify, pwdReset, re-read (6) — without Firstline's checks
  embedded         ``POST /api/v1/fixes/account-unlock`` / ``password-reset`` with a reason,
                   signed in as the demo agent, on ``firstline serve`` with its defaults:
                   SQLite, in-process pool (FIRSTLINE_RUN_WORKERS, 4)
  celery-pg        the same requests on ``firstline serve --workers S`` with
                   FIRSTLINE_BROKER_URL = Redis (a database number of its own; with
                   ``--broker amqp`` a RabbitMQ virtual host of its own) and
                   FIRSTLINE_DATABASE_URL = a PostgreSQL database made (and dropped) here,
                   and 2 ``firstline worker --pool P --concurrency K`` processes
  celery-sqlite    the same with the SQLite file shared by portal and workers
                   (``--celery-db`` chooses; both by default)

The API answers when the ticket is final (``portal.runs.run`` waits for it), so the
request time is the request-to-resolved latency. The API clients are the standard
library's ``http.client``, one keep-alive connection per thread (httpx costs about 0.8 ms
of client CPU per request here, on the same two cores as the servers). Each request gets its own bench account
(``uid=burstNNN``; an unlock's account is locked beforehand, untimed), so no two requests
of a round touch the same account and per-target serialisation never makes one wait for
another. The N requests of a configuration are split in R rounds (the same 70/30 plan for
every configuration in a round); rounds alternate the configurations, the starting one
rotating, so load from other processes hits all alike.

Prints per configuration: throughput (runs/s over the timed rounds), the median of the
per-round ratios to raw-ldap3 (target >= 0.3), p50/p99 latency (target p99 < 1 s), lost
(HTTP errors, answers that are not final, requests not answered within --bound seconds,
tickets in the ledger that are not final afterwards; target 0), the ticket states and
escalation reasons, and resident memory (VmRSS) of the workers and the portal, the
maximum of samples taken every 0.5 s while the configuration ran (target < 200 MB per
worker). Every process started here is stopped by its pid (process group), the Redis
database flushed, the PostgreSQL database dropped and the bench accounts deleted, also on
Ctrl-C, SIGTERM or a failure.

Needs the lab's slapd (``bash lab/up.sh``), Redis on 127.0.0.1:6379 and PostgreSQL on
127.0.0.1:5432 (trust, user postgres); with ``--broker amqp`` RabbitMQ on 127.0.0.1:5672 (guest, and
``/usr/sbin/rabbitmqctl`` to make the virtual host). The accounts have no mail address, so the runbooks'
mail step is skipped (``--mail`` gives them one: then the lab SMTP sink is needed too).
Usage: .venv/bin/python bench/burst.py [--n 1000] [--concurrency 16] [--rounds 5]
       [--worker-concurrency 8] [--pool threads|prefork] [--serve-workers 2]
       [--celery-db postgresql,sqlite] [--broker redis|amqp] [--unlock-share 0.7] [--bound 60] [--mail]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import redis
from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from overhead import ADMIN_GROUP, PEOPLE, SECRETS, connect, raw_same_unlock, same_checked  # noqa: E402

from connectors.ldap import generate_password  # noqa: E402
from tests.integration.conftest import start_lab  # noqa: E402
from tests.portal_support import AGENT_GROUP, AUDITOR_GROUP, PortalServer, free_port, sign_in  # noqa: E402

FIRSTLINE = Path(sys.executable).with_name("firstline")
STATE = ["uid", "mail", "givenName", "sn", "pwdAccountLockedTime", "pwdPolicySubentry", "pwdReset", "pwdChangedTime"]
FINAL = ("resolved", "escalated", "closed")
REDIS = ("127.0.0.1", 6379)
PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
PREFIX = "burst"
RUNBOOK = {"unlock": "account-unlock", "reset": "password-reset"}


# -- processes: every one started here, stopped by its pid (its own process group) ------------
class Processes:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args, env=env, cwd=str(cwd), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the group this script created for it
                except ProcessLookupError:
                    continue
        for proc in reversed(self.started):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
            try:  # children left in the group (a prefork pool, uvicorn's processes)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.started.clear()


# -- memory: VmRSS of process trees, sampled every 0.5 s --------------------------------------
def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


TICK = os.sysconf("SC_CLK_TCK")
SLAPD_PID = REPO / "var" / "lab" / "slapd" / "run" / "slapd.pid"


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) *pid* has used, 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _matching(word: str) -> list[int]:
    """Processes whose command line holds *word* (a PostgreSQL backend names its database)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if word.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    out.append(int(entry))
            except OSError:
                continue
    return out


def _slapd_pid() -> int | None:
    try:
        return int(SLAPD_PID.read_text().strip())
    except (OSError, ValueError):
        return None


def cpu_now(cfg: Config) -> dict[str, float]:
    """CPU seconds so far: this bench process (the clients; raw-ldap3's whole work), the
    configuration's own processes (portal, workers), slapd, and its PostgreSQL backends."""
    times = os.times()
    slapd_pid = _slapd_pid()
    slapd = _cpu(slapd_pid) if slapd_pid else 0.0
    by_role = {name: sum(_cpu(p) for p in _tree(root)) for name, root in cfg.memory.items()}
    return {
        "client": times.user + times.system,
        "firstline": sum(by_role.values()),
        # the part of it in the portal process tree (with Celery: the rest in the workers)
        "of which portal": by_role.get("portal", 0.0) if len(by_role) > 1 else 0.0,
        "slapd": slapd,
        "postgresql": sum(_cpu(p) for p in _matching(cfg.database)) if cfg.database else 0.0,
    }


@dataclass
class Peak:
    process_kb: int = 0  # the largest single process of the tree
    tree_kb: int = 0  # the whole tree (prefork children and uvicorn processes share pages: an upper bound)
    processes: int = 0

    def take(self, root: int) -> None:
        pids = _tree(root)
        sizes = [_rss_kb(p) for p in pids]
        self.process_kb = max(self.process_kb, max(sizes, default=0))
        self.tree_kb = max(self.tree_kb, sum(sizes))
        self.processes = max(self.processes, len(pids))

    def text(self) -> str:
        mb = self.process_kb / 1024
        if self.processes <= 1:
            return f"{mb:6.1f}"
        return f"{mb:6.1f} (tree {self.tree_kb / 1024:.0f}, {self.processes} proc)"


class Sampler(threading.Thread):
    """Every 0.5 s, while a configuration's round runs, the VmRSS of its processes."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.active: dict[str, int] | None = None  # label -> root pid
        self.peaks: dict[str, Peak] = {}
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def watch(self, roots: dict[str, int] | None) -> None:
        with self.lock:
            self.active = roots
        if roots:
            self.sample()

    def sample(self) -> None:
        with self.lock:
            for label, root in (self.active or {}).items():
                self.peaks.setdefault(label, Peak()).take(root)

    def run(self) -> None:
        while not self.halt.wait(0.5):
            self.sample()


# -- the directory: bench accounts ------------------------------------------------------------
def account(i: int) -> str:
    return f"{PREFIX}{i:03d}"


class Admin:
    """The lab's directory administrator (accounts, locks): reconnects (for up to a minute)
    when the connection was lost (a lab slapd restarted by someone else)."""

    def __init__(self) -> None:
        self.password = (SECRETS / "admin").read_text().strip()
        self.conn = connect("cn=admin,dc=example,dc=org", self.password)

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + 60  # the lab slapd may be restarting (someone's fault test)
        while True:
            try:
                return getattr(self.conn, method)(*args, **kwargs), self.conn
            except LDAPException:
                if time.monotonic() > deadline:
                    raise
                try:
                    self.conn.unbind()
                except LDAPException:
                    pass
                time.sleep(1)
                try:
                    self.conn = connect("cn=admin,dc=example,dc=org", self.password)
                except LDAPException:
                    continue

    def close(self) -> None:
        try:
            self.conn.unbind()
        except LDAPException:
            pass


def delete_bench_accounts(admin: Admin) -> int:
    removed = 0
    while True:
        _, conn = admin("search", PEOPLE, f"(uid={PREFIX}*)", SUBTREE, attributes=["uid"], paged_size=500)
        dns = [e["dn"] for e in conn.response if e.get("type") == "searchResEntry"]
        if not dns:
            return removed
        for dn in dns:
            admin("delete", dn)
        removed += len(dns)


def lock(admin: Admin, user: str) -> None:
    stamp = time.strftime("%Y%m%d%H%M%SZ", time.gmtime())
    dn = f"uid={user},{PEOPLE}"
    admin("modify", dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]})  # noSuchAttribute when unlocked: fine
    ok, conn = admin("modify", dn, {"pwdAccountLockedTime": [(MODIFY_ADD, [stamp])]})
    assert ok, conn.result


def unlocked(admin: Admin, user: str) -> None:
    admin("modify", f"uid={user},{PEOPLE}", {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]})


# -- raw ldap3 --------------------------------------------------------------------------------
def _find(svc: Connection, user: str) -> str:
    svc.search(PEOPLE, f"(&(objectClass=inetOrgPerson)(uid={escape_filter_chars(user)}))", SUBTREE, attributes=["uid"])
    dn: str = svc.response[0]["dn"]
    svc.search(dn, "(objectClass=*)", BASE, attributes=STATE)
    member = escape_filter_chars(dn)
    svc.search(ADMIN_GROUP, f"(|(member={member})(uniqueMember={member}))", BASE, attributes=["cn"])
    if svc.response and svc.response[0].get("type") == "searchResEntry":
        raise RuntimeError(f"{user} is privileged")
    return dn


def raw_unlock(svc: Connection, user: str) -> str:
    svc.search(PEOPLE, f"(&(objectClass=inetOrgPerson)(uid={escape_filter_chars(user)}))", SUBTREE, attributes=["uid"])
    dn: str = svc.response[0]["dn"]
    svc.search(dn, "(objectClass=*)", BASE, attributes=STATE)
    if not svc.response[0]["attributes"]["pwdAccountLockedTime"]:
        raise RuntimeError(f"{user} is not locked")
    member = escape_filter_chars(dn)
    svc.search(ADMIN_GROUP, f"(|(member={member})(uniqueMember={member}))", BASE, attributes=["cn"])
    if svc.response and svc.response[0].get("type") == "searchResEntry":
        raise RuntimeError(f"{user} is privileged")
    if not svc.modify(dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]}):
        raise RuntimeError(f"unlock of {user}: {svc.result}")
    svc.search(dn, "(objectClass=*)", BASE, attributes=["pwdAccountLockedTime"])
    if svc.response[0]["attributes"]["pwdAccountLockedTime"]:
        raise RuntimeError(f"{user} still locked")
    return "resolved"


def raw_reset(svc: Connection, user: str) -> str:
    dn = _find(svc, user)
    password = generate_password(20)
    if svc.extend.standard.modify_password(user=dn, new_password=password.encode()) is not True:
        raise RuntimeError(f"reset of {user}: {svc.result}")
    if not svc.modify(dn, {"pwdReset": [(MODIFY_REPLACE, ["TRUE"])]}):
        raise RuntimeError(f"pwdReset of {user}: {svc.result}")
    svc.search(dn, "(objectClass=*)", BASE, attributes=["pwdReset", "pwdChangedTime"])
    if svc.response[0]["attributes"]["pwdReset"] is not True:
        raise RuntimeError(f"{user}: pwdReset not set")
    return "resolved"


def raw_same_reset(svc: Connection, user: str) -> str:
    dn, _attrs = same_checked(svc, user)
    password = generate_password(20)
    if svc.extend.standard.modify_password(user=dn, new_password=password.encode()) is not True:
        raise RuntimeError(f"reset of {user}: {svc.result}")
    if not svc.modify(dn, {"pwdReset": [(MODIFY_REPLACE, ["TRUE"])]}):
        raise RuntimeError(f"pwdReset of {user}: {svc.result}")
    return "resolved"


# -- results ----------------------------------------------------------------------------------
@dataclass
class Result:
    label: str
    describe: str
    latencies: list[float] = field(default_factory=list)  # ms
    by_op: dict[str, list[float]] = field(default_factory=lambda: {"unlock": [], "reset": []})
    round_rates: list[float] = field(default_factory=list)  # runs/s per round
    busy: float = 0.0  # seconds of timed rounds
    done: int = 0
    lost: int = 0
    lost_why: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    ledger_note: str = ""
    memory: dict[str, Peak] = field(default_factory=dict)
    cpu: Counter[str] = field(default_factory=Counter)  # CPU seconds over the timed rounds, by part

    def record(self, op: str, ms: float, state: str | None, reason: str | None, lost: str | None) -> None:
        self.done += 1
        self.latencies.append(ms)
        self.by_op[op].append(ms)
        if lost is not None:
            self.lost += 1
            self.lost_why[lost] += 1
            return
        self.states[state or "?"] += 1
        if state == "escalated":
            self.reasons[reason or "?"] += 1


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


# -- configurations ---------------------------------------------------------------------------
Op = Callable[[Any, str, str], tuple[str | None, str | None, str | None]]  # (state, reason, lost)


@dataclass
class Config:
    label: str
    describe: str
    make_client: Callable[[], Any]  # one per thread, made before the rounds
    op: Op
    close_client: Callable[[Any], None]
    memory: dict[str, int] = field(default_factory=dict)  # label -> root pid
    server: PortalServer | None = None
    database: str = ""  # PostgreSQL database name (its backends' CPU is counted)
    sent: int = 0  # requests including warm-up (tickets the ledger should hold)


@dataclass
class ApiClient:
    """One thread's keep-alive HTTP connection to the portal, signed in as the demo agent."""

    host: str
    port: int
    headers: dict[str, str]
    bound: float
    conn: http.client.HTTPConnection | None = None
    used: float = 0.0  # time.monotonic() of the last answer

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST *body* as JSON; (status, JSON answer). A connection idle longer than the
        server keeps one (uvicorn: 5 s, e.g. while the other configurations ran their round)
        is replaced first; one the server closed anyway is replaced once when sending fails,
        which means the request was not sent (as urllib3 and httpx do)."""
        if self.conn is not None and time.monotonic() - self.used > 4.0:
            self.close()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.bound)
            try:
                self.conn.request("POST", path, body=json.dumps(body), headers=self.headers)
            except (BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
                continue
            try:
                r = self.conn.getresponse()
                answer = json.loads(r.read() or b"{}")
            except BaseException:
                self.close()
                raise
            self.used = time.monotonic()
            return r.status, answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def api_op(bound: float) -> Op:
    def op(client: ApiClient, kind: str, user: str) -> tuple[str | None, str | None, str | None]:
        try:
            status, body = client.post(
                f"/api/v1/fixes/{RUNBOOK[kind]}", {"reason": "burst benchmark", "user": user, "directory": "corp"}
            )
        except TimeoutError:
            return None, None, "timeout"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, None, type(exc).__name__
        if status != 200:
            return None, None, f"http {status}"
        if body.get("state") not in FINAL:
            return None, None, f"not final ({body.get('state')})"
        return str(body["state"]), body.get("reason"), None

    return op


@dataclass
class RawClient:
    """One thread's persistent connection; reopened after a failure (as a careful script
    would), the failed request counted lost."""

    password: str
    conn: Connection | None = None

    def get(self) -> Connection:
        if self.conn is None:
            self.conn = connect("cn=firstline,ou=services,dc=example,dc=org", self.password)
        return self.conn

    def drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.unbind()
            except Exception:
                pass
        self.conn = None


def raw_op_of(unlock: Callable[[Connection, str], str], reset: Callable[[Connection, str], str]) -> Op:
    def op(client: RawClient, kind: str, user: str) -> tuple[str | None, str | None, str | None]:
        try:
            return (unlock if kind == "unlock" else reset)(client.get(), user), None, None
        except Exception as exc:
            if isinstance(exc, LDAPException | OSError):
                client.drop()
            return None, None, f"{type(exc).__name__}: {exc}"[:80]

    return op


def api_clients(server: PortalServer, bound: float) -> tuple[Callable[[], ApiClient], Callable[[Any], None]]:
    for attempt in range(10):  # the lab directory may be restarting (someone's fault test): try again
        try:
            agent = sign_in(server, "agent")
            break
        except AssertionError:
            if attempt == 9:
                raise
            time.sleep(2)
    agent.client.close()
    host, port = server.base_url.split("//", 1)[1].rsplit(":", 1)
    headers = {
        "Content-Type": "application/json",
        "X-CSRF-Token": agent.csrf,
        "Cookie": f"{agent.cookie_name}={agent.cookie_value}",
    }

    def make() -> ApiClient:
        return ApiClient(host, int(port), headers, bound)

    return make, lambda c: c.close()


def start_portal(
    procs: Processes, data_dir: Path, serve_workers: int, env_extra: dict[str, str]
) -> tuple[PortalServer, dict[str, str]]:
    """``firstline serve`` (``--workers serve_workers``) as PortalServer.start sets it up."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update(
        {
            "FIRSTLINE_ENVIRONMENT": "test",
            "FIRSTLINE_DATA_DIR": str(data_dir),
            "FIRSTLINE_INVENTORY": str(REPO / "lab" / "inventory.yaml"),
            "FIRSTLINE_RUNBOOKS_DIR": str(REPO / "runbooks"),
            "FIRSTLINE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "FIRSTLINE_AGENT_GROUPS": f'{{"corp": ["{AGENT_GROUP}"]}}',
            "FIRSTLINE_AUDITOR_GROUPS": f'{{"corp": ["{AUDITOR_GROUP}"]}}',
            "FIRSTLINE_TRUSTED_PROXIES": '["127.0.0.1/32"]',
            "FIRSTLINE_SIGNIN_MIN_SECONDS": "0.05",
            "PYTHONPATH": str(REPO),
            **env_extra,
        }
    )
    if "FIRSTLINE_DATABASE_URL" in env and not env["FIRSTLINE_DATABASE_URL"].startswith("sqlite"):
        up = subprocess.run(
            [str(FIRSTLINE), "db", "upgrade"], env=env, cwd=str(data_dir), capture_output=True, text=True, check=False
        )
        if up.returncode != 0:
            raise RuntimeError(f"firstline db upgrade: {up.stdout} {up.stderr}")
    log = data_dir / "serve.out"
    args = [str(FIRSTLINE), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if serve_workers > 1:
        args += ["--workers", str(serve_workers)]
    proc = procs.spawn(args, env, data_dir, log)
    server = PortalServer(f"http://127.0.0.1:{port}", data_dir, env, proc, log)
    server._wait_ready(timeout=60)
    return server, env


def start_worker(procs: Processes, env: dict[str, str], data_dir: Path, n: int, args: list[str]) -> int:
    log = data_dir / f"worker{n}.out"
    proc = procs.spawn([str(FIRSTLINE), "worker", "--name", f"burst{n}@bench", *args], env, data_dir, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"firstline worker exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        if "firstline worker ready" in log.read_text(errors="replace"):
            return proc.pid
        time.sleep(0.1)
    raise RuntimeError(f"firstline worker not ready within 60 s:\n{log.read_text()[-2000:]}")


@contextmanager
def redis_database() -> Iterator[str]:
    marker = f"burst-{uuid.uuid4().hex}"
    for number in random.sample(range(4, 16), 12):
        db = redis.Redis(*REDIS, db=number)
        try:
            if db.dbsize() == 0 and db.set("firstline-bench-claim", marker, nx=True):
                break
        finally:
            db.close()
    else:
        raise RuntimeError("no free Redis database number (4-15)")
    try:
        yield f"redis://{REDIS[0]}:{REDIS[1]}/{number}"
    finally:
        db = redis.Redis(*REDIS, db=number)
        db.flushdb()
        db.close()


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of its own (the machine's broker on loopback), deleted afterwards."""
    vhost = f"fl-burst-{uuid.uuid4().hex[:10]}"

    def ctl(*args: str) -> None:
        subprocess.run(["/usr/sbin/rabbitmqctl", *args], capture_output=True, timeout=60, check=True)

    ctl("add_vhost", vhost)
    try:
        ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        ctl("delete_vhost", vhost)


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"fl_burst_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(**PG_ADMIN)  # type: ignore[arg-type]
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        conn = psycopg2.connect(**PG_ADMIN)  # type: ignore[arg-type]
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


# -- the burst --------------------------------------------------------------------------------
def run_round(cfg: Config, clients: list[Any], plan: list[tuple[str, str]], result: Result, sampler: Sampler) -> None:
    """Send *plan* ((op, account) pairs) from one thread per client; each thread takes the next."""
    position = iter(range(len(plan)))
    take = threading.Lock()
    failures: list[BaseException] = []

    def work(client: Any) -> None:
        try:
            while True:
                with take:
                    i = next(position, None)
                if i is None:
                    return
                kind, user = plan[i]
                t0 = time.perf_counter()
                state, reason, lost = cfg.op(client, kind, user)
                ms = (time.perf_counter() - t0) * 1000
                with take:
                    result.record(kind, ms, state, reason, lost)
        except BaseException as exc:  # the bench itself broke: stop, never count it as a result
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    sampler.watch({f"{k}@{cfg.label}": pid for k, pid in cfg.memory.items()})
    cpu_before = cpu_now(cfg)
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)  # wakes up for Ctrl-C
    took = time.perf_counter() - start
    for part, used in cpu_now(cfg).items():
        result.cpu[part] += max(0.0, used - cpu_before[part])
    sampler.watch(None)
    if failures:
        raise failures[0]
    cfg.sent += len(plan)
    result.busy += took
    result.round_rates.append(len(plan) / took)


def ledger_check(cfg: Config, result: Result) -> None:
    """Every request a ticket, every ticket final (read from the portal's database)."""
    if cfg.server is None:
        return
    rows = dict(cfg.server.query("SELECT state, count(*) FROM ticket GROUP BY state"))
    total = sum(int(v) for v in rows.values())
    open_ = sum(int(v) for k, v in rows.items() if k not in FINAL)
    result.ledger_note = f"ledger: {total} tickets for {cfg.sent} requests, {open_} not final"
    if open_:
        result.lost += open_
        result.lost_why["ticket not final in the ledger"] += open_
    if total != cfg.sent:
        result.lost += abs(cfg.sent - total)
        result.lost_why["tickets != requests"] += abs(cfg.sent - total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=1000, help="requests per configuration")
    ap.add_argument("--concurrency", type=int, default=16, help="client threads")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--worker-concurrency", type=int, default=8, help="run slots per firstline worker")
    ap.add_argument("--pool", choices=["threads", "prefork"], default="threads")
    ap.add_argument("--serve-workers", type=int, default=2, help="portal processes with Celery")
    ap.add_argument("--celery-db", default="postgresql,sqlite", help="postgresql, sqlite or both; '' for none")
    ap.add_argument("--broker", choices=("redis", "amqp"), default="redis", help="the Celery broker: Redis or RabbitMQ")
    ap.add_argument("--no-embedded", action="store_true")
    ap.add_argument("--unlock-share", type=float, default=0.7)
    ap.add_argument("--bound", type=float, default=60.0, help="seconds a request may take before it counts lost")
    ap.add_argument("--mail", action="store_true", help="accounts with a mail address (runbooks send mail)")
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--raw-simple", action="store_true", help="also a simpler raw script (fewer checks)")
    opts = ap.parse_args()
    rounds = max(1, min(opts.rounds, opts.n))
    per_round = math.ceil(opts.n / rounds)
    celery_dbs = [d for d in opts.celery_db.split(",") if d]

    def on_term(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    start_lab("slapd", *(["smtp"] if opts.mail else []))
    load_before = os.getloadavg()
    slapd_before = _slapd_pid()
    procs = Processes()
    sampler = Sampler()
    sampler.start()
    admin = Admin()
    svc_password = (SECRETS / "firstline").read_text().strip()
    results: dict[str, Result] = {}
    raw_clients: list[RawClient] = []
    try:
        with tempfile.TemporaryDirectory(prefix="burst-") as tmp, ExitStack() as resources:
            try:
                work = Path(tmp)
                delete_bench_accounts(admin)  # a killed earlier run's leftovers
                for i in range(per_round):
                    u = account(i)
                    attrs = {"uid": u, "cn": u, "sn": "Burst", **({"mail": f"{u}@example.org"} if opts.mail else {})}
                    ok, conn = admin("add", f"uid={u},{PEOPLE}", ["inetOrgPerson"], attrs)
                    assert ok, conn.result
                configs = make_configs(opts, procs, resources, work, celery_dbs, svc_password, raw_clients)
                for cfg in configs:
                    results[cfg.label] = Result(cfg.label, cfg.describe)
                clients = {cfg.label: [cfg.make_client() for _ in range(opts.concurrency)] for cfg in configs}

                # warm-up (untimed): each thread one unlock and one reset on an account of its own
                warm_users = [account(i) for i in range(min(opts.concurrency, per_round))]
                for cfg in configs:
                    for u in warm_users:
                        lock(admin, u)
                    run_round(cfg, clients[cfg.label], [("unlock", u) for u in warm_users], Result("warm", ""), sampler)
                    run_round(cfg, clients[cfg.label], [("reset", u) for u in warm_users], Result("warm", ""), sampler)

                rng = random.Random(opts.seed)
                left = opts.n
                for r in range(rounds):
                    size = min(per_round, left)
                    left -= size
                    kinds = ["unlock"] * round(size * opts.unlock_share)
                    kinds += ["reset"] * (size - len(kinds))
                    rng.shuffle(kinds)
                    plan = [(k, account(i)) for i, k in enumerate(kinds)]
                    for cfg in configs[r % len(configs) :] + configs[: r % len(configs)]:
                        for kind, user in plan:  # untimed: each unlock finds its account locked
                            (lock if kind == "unlock" else unlocked)(admin, user)
                        res = results[cfg.label]
                        run_round(cfg, clients[cfg.label], plan, res, sampler)
                        print(f"  round {r + 1}/{rounds} {cfg.label:13} {res.round_rates[-1]:7.1f} runs/s", flush=True)
                sampler.watch(None)
                for cfg in configs:
                    for c in clients[cfg.label]:
                        cfg.close_client(c)
                    ledger_check(cfg, results[cfg.label])
                    results[cfg.label].memory = {k: sampler.peaks.get(k + "@" + cfg.label, Peak()) for k in cfg.memory}
            finally:
                procs.stop_all()  # before their Redis and PostgreSQL databases go
    finally:
        sampler.halt.set()
        procs.stop_all()
        for c in raw_clients:
            c.drop()
        removed = delete_bench_accounts(admin)
        admin.close()
        print(f"cleanup: started processes stopped, {removed} bench accounts deleted, Redis and PostgreSQL released")
    report(opts, rounds, per_round, load_before, results)
    if _slapd_pid() != slapd_before:
        print("WARNING: the lab slapd was restarted during the run (someone else's test?): the figures are disturbed")


def make_configs(
    opts: argparse.Namespace,
    procs: Processes,
    resources: ExitStack,
    work: Path,
    celery_dbs: list[str],
    svc_password: str,
    raw_clients: list[RawClient],
) -> list[Config]:
    """raw-ldap3, then the portals (and workers) started, each ready and signed in."""

    def raw_client() -> RawClient:
        c = RawClient(svc_password)
        c.get()
        raw_clients.append(c)
        return c

    configs = [
        Config(
            "raw-ldap3",
            "ldap3, one LDAPS connection per thread, the same directory work as the API",
            raw_client,
            raw_op_of(raw_same_unlock, raw_same_reset),
            RawClient.drop,
        )
    ]
    if opts.raw_simple:
        configs.append(
            Config(
                "raw-simple",
                "ldap3, one LDAPS connection per thread, a simpler script (fewer checks)",
                raw_client,
                raw_op_of(raw_unlock, raw_reset),
                RawClient.drop,
            )
        )
    op = api_op(opts.bound)
    if not opts.no_embedded:
        server, _ = start_portal(procs, work / "embedded", 1, {})
        make, close = api_clients(server, opts.bound)
        configs.append(
            Config(
                "embedded",
                "firstline serve, SQLite, in-process pool (FIRSTLINE_RUN_WORKERS 4)",
                make,
                op,
                close,
                {"portal": server.proc.pid},
                server,
            )
        )
    from cryptography.fernet import Fernet

    for kind in celery_dbs:
        if kind not in ("postgresql", "sqlite"):
            raise SystemExit(f"--celery-db: postgresql or sqlite, not {kind!r}")
        data = work / f"celery-{kind}"
        extra = {
            "FIRSTLINE_BROKER_URL": resources.enter_context(
                redis_database() if opts.broker == "redis" else rabbitmq_vhost()
            ),
            "FIRSTLINE_RUN_KEY": Fernet.generate_key().decode(),
        }
        if kind == "postgresql":
            extra["FIRSTLINE_DATABASE_URL"] = resources.enter_context(postgres_database())
        server, env = start_portal(procs, data, opts.serve_workers, extra)
        wargs = ["--pool", opts.pool, "--concurrency", str(opts.worker_concurrency)]
        w1 = start_worker(procs, env, data, 1, wargs)
        w2 = start_worker(procs, env, data, 2, wargs)
        make, close = api_clients(server, opts.bound)
        configs.append(
            Config(
                f"celery-{'pg' if kind == 'postgresql' else 'sqlite'}",
                f"{'Redis' if opts.broker == 'redis' else 'RabbitMQ'}, firstline serve --workers {opts.serve_workers}, "
                f"2 x firstline worker --pool {opts.pool} "
                f"--concurrency {opts.worker_concurrency}, {'PostgreSQL' if kind == 'postgresql' else 'SQLite'}",
                make,
                op,
                close,
                {"portal": server.proc.pid, "worker1": w1, "worker2": w2},
                server,
                env.get("FIRSTLINE_DATABASE_URL", "/").rsplit("/", 1)[1] if kind == "postgresql" else "",
            )
        )
    return configs


def report(
    opts: argparse.Namespace, rounds: int, per_round: int, load: tuple[float, ...], results: dict[str, Result]
) -> None:
    raw = results["raw-ldap3"]
    raw_rate = raw.done / raw.busy
    print()
    print(
        f"Burst: N={opts.n} per configuration ({opts.unlock_share:.0%} account-unlock, "
        f"{1 - opts.unlock_share:.0%} password-reset), C={opts.concurrency} client threads, "
        f"{rounds} interleaved rounds of {per_round} (accounts {account(0)}..{account(per_round - 1)})"
    )
    print(f"machine: {os.cpu_count()} cores, load average before the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"{'configuration':14} {'runs/s':>7} {'x raw':>6} {'p50 ms':>8} {'p99 ms':>8} {'unlock p50':>10} "
        f"{'reset p50':>9} {'lost':>5}  states"
    )
    for res in results.values():
        rate = res.done / res.busy if res.busy else 0.0
        ratios = [a / b for a, b in zip(res.round_rates, raw.round_rates, strict=False)]
        ratio = statistics.median(ratios) if ratios else float("nan")
        states = ", ".join(f"{k} {v}" for k, v in sorted(res.states.items()))
        print(
            f"{res.label:14} {rate:7.1f} {ratio:6.2f} {pct(res.latencies, 0.5):8.1f} {pct(res.latencies, 0.99):8.1f} "
            f"{pct(res.by_op['unlock'], 0.5):10.1f} {pct(res.by_op['reset'], 0.5):9.1f} {res.lost:5d}  {states}"
        )
    print("  x raw = median over rounds of (runs/s / raw-ldap3 runs/s in the same round)")
    for res in results.values():
        print(f"{res.label}: {res.describe}")
        if res.ledger_note:
            print(f"  {res.ledger_note}")
        if res.reasons:
            print("  escalated: " + ", ".join(f"{k} {v}" for k, v in res.reasons.most_common()))
        if res.lost_why:
            print("  lost: " + ", ".join(f"{k} {v}" for k, v in res.lost_why.most_common()))
        for name, peak in res.memory.items():
            print(f"  VmRSS max {name}: {peak.text()} MB")
        if res.done:
            parts = ", ".join(f"{k} {v * 1000 / res.done:.1f}" for k, v in res.cpu.items() if v or k == "client")
            total = sum(v for k, v in res.cpu.items() if not k.startswith("of which"))
            print(f"  CPU ms per run: {parts}; total {total * 1000 / res.done:.1f}")
    print(f"raw-ldap3 throughput {raw_rate:.1f} runs/s")
    print("targets (API configurations): >= 0.3x raw throughput, p99 < 1000 ms, lost 0, worker VmRSS < 200 MB")
    for res in results.values():
        if res.label.startswith("raw-"):
            continue
        ratios = [a / b for a, b in zip(res.round_rates, raw.round_rates, strict=False)]
        ratio = statistics.median(ratios) if ratios else 0.0
        workers = [p.process_kb / 1024 for k, p in res.memory.items() if k.startswith("worker")] or [
            res.memory["portal"].process_kb / 1024 if "portal" in res.memory else 0.0
        ]
        checks = {
            "throughput": ratio >= 0.3,
            "p99": pct(res.latencies, 0.99) < 1000,
            "lost": res.lost == 0,
            "memory": max(workers) < 200,
        }
        missed = [k for k, ok in checks.items() if not ok]
        print(f"  {res.label:14} {'all met' if not missed else 'NOT met: ' + ', '.join(missed)}")


if __name__ == "__main__":
    main()
