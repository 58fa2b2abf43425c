"""Start the real portal for tests and sign in as the demo people.

``PortalServer.start(tmp_path, **settings)`` runs ``firstline serve`` (uvicorn) as a
subprocess on a free loopback port with an isolated ``FIRSTLINE_*`` environment: its
own data directory and SQLite database (or ``database_url=`` another: the fixtures pass a
fresh PostgreSQL database in ``both_databases`` modules), the lab inventory and the repo's runbooks,
``environment=test`` (so cookies are ``Secure`` and ``__Host-`` prefixed, as in
production), the lab's agent / auditor groups, and ``127.0.0.1`` as a trusted proxy so
a test can give each of its requests a client address with ``X-Forwarded-For``.

``sign_in(server, "employee"|"agent"|"auditor")`` returns a ``SignedIn`` httpx client
carrying the session cookie (set by hand: httpx never sends a ``Secure`` cookie over
http) and the page's CSRF token as ``.csrf``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from tests.databases import database_bytes, engine_for

REPO = Path(__file__).resolve().parents[1]
DEMO_SECRETS = REPO / "var" / "lab" / "slapd" / "secrets" / "portal-demo.json"
AGENT_GROUP = "cn=service-desk-agents,ou=groups,dc=example,dc=org"
AUDITOR_GROUP = "cn=auditors,ou=groups,dc=example,dc=org"
DEMO = {"employee": "demo-employee", "agent": "demo-agent", "auditor": "demo-auditor"}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]{64})">')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def demo_password(login: str) -> str:
    data: dict[str, str] = json.loads(DEMO_SECRETS.read_text())
    return data[login]


def _env_value(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class PortalServer:
    base_url: str
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def database_url(self) -> str:
        """The portal's FIRSTLINE_DATABASE_URL (default: SQLite ``<data dir>/firstline.db``)."""
        return self.env.get("FIRSTLINE_DATABASE_URL") or f"sqlite:///{self.data_dir / 'firstline.db'}"

    @property
    def db_path(self) -> Path:
        """The SQLite file (only when the portal runs on SQLite)."""
        url = self.database_url
        assert url.startswith("sqlite:///"), "db_path: this portal does not run on SQLite; use database_url"
        return Path(url.removeprefix("sqlite:///"))

    @classmethod
    def start(cls, data_dir: Path, **settings: Any) -> PortalServer:
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
        values: dict[str, Any] = {
            "environment": "test",
            "data_dir": data_dir,
            "inventory": REPO / "lab" / "inventory.yaml",
            "runbooks_dir": REPO / "runbooks",
            "public_base_url": f"http://127.0.0.1:{port}",
            "agent_groups": {"corp": [AGENT_GROUP]},
            "auditor_groups": {"corp": [AUDITOR_GROUP]},
            "trusted_proxies": ["127.0.0.1/32"],
            "signin_min_seconds": 0.05,
        }
        values.update(settings)
        for key, value in values.items():
            if value is not None:
                env[f"FIRSTLINE_{key.upper()}"] = _env_value(value)
        log = data_dir / "serve.out"
        firstline = Path(sys.executable).with_name("firstline")
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(firstline), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=str(data_dir),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = cls(f"http://127.0.0.1:{port}", data_dir, env, proc, log)
        server._wait_ready()
        return server

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the portal exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the portal did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def client(self, address: str | None = None, **kwargs: Any) -> httpx.Client:
        """A fresh client (no cookies); *address* is sent as X-Forwarded-For (127.0.0.1 is trusted)."""
        headers = dict(kwargs.pop("headers", {}))
        if address:
            headers["X-Forwarded-For"] = address
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of *sql* (SQLAlchemy ``text``: named parameters, ``:name``) on the portal's
        database, SQLite or PostgreSQL, as plain tuples."""
        engine = engine_for(self.database_url)
        try:
            with engine.connect() as c:
                return [tuple(row) for row in c.execute(text(sql), params)]
        finally:
            engine.dispose()

    def execute(self, sql: str, **params: Any) -> None:
        """Run *sql* (named parameters, ``:name``) on the portal's database and commit."""
        engine = engine_for(self.database_url)
        try:
            with engine.begin() as c:
                c.execute(text(sql), params)
        finally:
            engine.dispose()

    def stored_bytes(self) -> bytes:
        """Everything the portal process persisted: the database (SQLite: its file and WAL;
        PostgreSQL: every row of every table), log files, audit checkpoints."""
        blob = b""
        for path in sorted(self.data_dir.rglob("*")):
            if path.is_file() and path.name != "audit.key":
                blob += path.read_bytes()
        if not self.database_url.startswith("sqlite:///"):
            blob += database_bytes(self.database_url)
        return blob


@dataclass
class SignedIn:
    client: httpx.Client
    csrf: str
    cookie_name: str
    cookie_value: str
    login: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:  # delegate get/post/... to the client
        return getattr(self.client, name)


def set_cookie_values(response: httpx.Response) -> dict[str, str]:
    """name → raw Set-Cookie header, for every cookie the response sets."""
    out = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        out[name] = header
    return out


def cookie_value(header: str) -> str:
    return header.split("=", 1)[1].split(";", 1)[0]


def csrf_from(html: str) -> str:
    found = CSRF_META.search(html) or CSRF_FIELD.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def start_anonymous(server: PortalServer, address: str | None = None) -> tuple[httpx.Client, str]:
    """A client holding a pre-session cookie and the sign-in form's CSRF token."""
    client = server.client(address)
    page = client.get("/signin")
    assert page.status_code == 200, page.text
    for name, header in set_cookie_values(page).items():
        if name.endswith("fl_pre"):
            client.cookies.set(name, cookie_value(header))
    return client, csrf_from(page.text)


def post_signin(server: PortalServer, login: str, password: str, *, address: str | None = None) -> httpx.Response:
    client, csrf = start_anonymous(server, address)
    with closing(client):
        return client.post("/signin", data={"csrf_token": csrf, "username": login, "password": password, "next": "/"})


def sign_in(
    server: PortalServer, role_or_login: str, password: str | None = None, *, address: str | None = None
) -> SignedIn:
    login = DEMO.get(role_or_login, role_or_login)
    password = password if password is not None else demo_password(login)
    client, csrf = start_anonymous(server, address)
    response = client.post("/signin", data={"csrf_token": csrf, "username": login, "password": password, "next": "/"})
    assert response.status_code == 303, (response.status_code, response.text[:500])
    cookies = set_cookie_values(response)
    name = next(n for n in cookies if n.endswith("fl_session"))
    value = cookie_value(cookies[name])
    client.cookies.clear()
    client.cookies.set(name, value)
    home = client.get("/")
    assert home.status_code == 200, home.text[:500]
    return SignedIn(client, csrf_from(home.text), name, value, login, {"set_cookie": cookies[name]})
