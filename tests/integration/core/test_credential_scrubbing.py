"""Connector credentials never reach a store (issue 7, item 19), against the real lab slapd.

A test-only connector resolves its credential through the inventory's ``{file: ...}``
reference, binds to the real directory with it, and then echoes it — in the error when
the directory refuses the bind, in its outputs (plain, nested, repr, URL-encoded) when
the bind succeeds, the way a careless library or plugin might. Every store Firstline
writes (database + WAL, log, audit checkpoints, JSONL and CSV export) and the outcome
shown to the requester must hold neither credential in any spelling.
"""

from __future__ import annotations

import secrets
import ssl
import textwrap
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ldap3 import Connection, Server, Tls

from connectors.base import ActionSpec, Connector, InputSpec, Rejected, TargetConfig
from connectors.registry import registry
from runner.api import open_app
from runner.redaction import REDACTED, WITHHELD, spellings
from runner.service import Firstline
from runner.settings import Settings
from tests.databases import MakeDatabaseUrl
from tests.integration.conftest import REPO, start_lab, store_bytes

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
CA = REPO / "var" / "lab" / "ca" / "ca.crt"
PEOPLE = "ou=people,dc=example,dc=org"


class EchoBindConfig(TargetConfig):
    bind_dn: str
    password: dict[str, str]


class EchoBindConnector(Connector):
    """Test only: binds to the lab slapd with its credential, then repeats the credential."""

    name = "echo_bind"
    config_model = EchoBindConfig
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "bind": ActionSpec("bind", (InputSpec("user"),), outputs=frozenset({"said", "nested", "whoami"})),
    }

    def bind(self, *, timeout: float, user: str) -> dict[str, Any]:
        assert isinstance(self.config, EchoBindConfig)
        password = self._secrets(self.config.password)
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(CA))
        server = Server("127.0.0.1", port=6636, use_ssl=True, tls=tls, connect_timeout=5)
        conn = Connection(server, self.config.bind_dn, password)
        try:
            if not conn.bind():
                raise Rejected(
                    f"bind as {self.config.bind_dn} with password {password} ({password!r}) failed: "
                    f"{conn.result.get('description')}"
                )
            who = conn.extend.standard.who_am_i()
        finally:
            conn.unbind()
        return {
            "said": f"bound for {user} with {password}",
            "nested": {"url": f"ldap://x/?pw={urllib.parse.quote(password, safe='')}", "list": [password]},
            "whoami": str(who),
        }


RUNBOOK = """\
schema_version: 1
name: echo-bind
title: {en: Bind and echo}
category: identity/account
audience: [agent]
parameters:
  - {name: user, type: account}
  - {name: where, type: string, default: good}
steps:
  - id: bind
    connector: echo_bind
    target: "{{ params.where }}"
    action: bind
    with: {user: "{{ params.user }}"}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "{{ steps.bind.said }} as {{ steps.bind.whoami }}"}
"""


@pytest.fixture
def account(tmp_path: Path) -> Iterator[tuple[str, str]]:
    start_lab("slapd")
    admin_pw = (REPO / "var" / "lab" / "slapd" / "secrets" / "admin").read_text().strip()
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(CA))
    admin = Connection(
        Server("127.0.0.1", port=6636, use_ssl=True, tls=tls), "cn=admin,dc=example,dc=org", admin_pw, auto_bind=True
    )
    uid = f"scrub{secrets.token_hex(3)}"
    password = f"Echo-Ünï-{secrets.token_hex(4)}-'q'\"&+/ x"
    dn = f"uid={uid},{PEOPLE}"
    assert admin.add(dn, ["inetOrgPerson"], {"uid": uid, "cn": uid, "sn": "Scrub", "userPassword": password})
    yield dn, password
    admin.delete(dn)
    admin.unbind()


@pytest.fixture
def app(tmp_path: Path, account: tuple[str, str], make_database_url: MakeDatabaseUrl) -> Iterator[Firstline]:
    dn, password = account
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "echo-bind.yaml").write_text(RUNBOOK)
    (tmp_path / "good").write_text(password + "\n", encoding="utf-8")
    (tmp_path / "bad").write_text(f"Wrong-{password}-Wrong\n", encoding="utf-8")
    (tmp_path / "inventory.yaml").write_text(
        textwrap.dedent(f"""\
        targets:
          good: {{connector: echo_bind, bind_dn: "{dn}", password: {{file: good}}}}
          bad: {{connector: echo_bind, bind_dn: "{dn}", password: {{file: bad}}}}
        """)
    )
    settings = Settings(
        environment="test",
        database_url=make_database_url(tmp_path / "ledger.db"),
        runbooks_dir=tmp_path / "runbooks",
        inventory=tmp_path / "inventory.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "firstline.log",
        checkpoint_every=1,
    )
    fl = open_app(settings, connectors={**registry(), "echo_bind": EchoBindConnector})
    fl.vet("echo-bind", "tester")
    yield fl
    fl.close()


def _absent(blob: bytes, secret: str) -> None:
    for form in spellings(secret):
        assert form.encode("utf-8") not in blob, f"credential spelling {form!r} reached a store"


def test_a_credential_the_directory_refused_and_a_plugin_echoed_is_in_no_store(
    app: Firstline, account: tuple[str, str]
) -> None:
    _, password = account
    wrong = f"Wrong-{password}-Wrong"
    out = app.run("echo-bind", {"user": "alice", "where": "bad"}, requester="alice", roles={"agent"})
    # the plugin's message quoted the refused credential: withheld whole (the log has the detail)
    assert out.state == "escalated" and out.reason == "rejected", out.message
    assert wrong not in out.message and out.message == WITHHELD["en"]  # the whole message, no partial mask
    _absent(store_bytes(app), wrong)
    _absent(store_bytes(app), password)


def test_a_credential_echoed_in_outputs_and_the_note_is_in_no_store(app: Firstline, account: tuple[str, str]) -> None:
    _dn, password = account
    out = app.run("echo-bind", {"user": "alice", "where": "good"}, requester="alice", roles={"agent"})
    assert out.state == "resolved", out.message
    assert out.message == WITHHELD["en"]  # the real bind happened; the note held the password
    step = app.ticket(out.ticket_number)["steps"][0]
    assert step["outputs"]["nested"] == {"url": WITHHELD["en"], "list": [REDACTED]}
    _absent(store_bytes(app), password)
