"""No secret in any store (issue 7, items 19 and 20), with the unit fakes.

* every credential the secret store resolves is masked in tickets, step logs, audit
  events and the operator log — also when a connector echoes it in an error message,
  a result or in another spelling (repr, JSON, URL-encoded, one line of a key);
* the log writer itself masks (these tests fail if ``runner.oplog``'s masking goes);
* pydantic and YAML errors are rendered without input values;
* every file Firstline creates is 0600 (directories 0700) even with umask 022.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import textwrap
import unicodedata
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import structlog
from pydantic import BaseModel, ValidationError

from connectors.base import ActionSpec, Connector, InputSpec, Rejected, TargetConfig
from runner import oplog
from runner.api import open_app
from runner.errors import ConfigError
from runner.inventory import load_inventory
from runner.redaction import REDACTED, WITHHELD, Scrubber, describe_validation_error, spellings
from runner.secrets import SecretStore
from runner.service import Firstline
from runner.settings import Settings

CREDENTIAL = 'Cr3d-Ünïcode ² ‮-"quoted"-4711'  # non-ASCII, a right-to-left override, quotes


class EchoConfig(TargetConfig):
    password: dict[str, str]
    mode: str = "error"


class EchoConnector(Connector):
    """Resolves its credential and then echoes it back, the way a careless library might."""

    name = "echo"
    config_model = EchoConfig
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "probe": ActionSpec("probe", (InputSpec("user"),), outputs=frozenset({"said", "nested"})),
    }

    def probe(self, *, timeout: float, user: str) -> dict[str, Any]:
        assert isinstance(self.config, EchoConfig)
        password = self._secrets(self.config.password)
        if self.config.mode == "error":
            raise Rejected(f"login for {user} with password {password} refused")
        if self.config.mode == "repr":
            raise Rejected(f"server said: {password.encode()!r} / {password!r} / {json.dumps(password)}")
        if self.config.mode == "url":
            raise Rejected(f"GET /login?pw={urllib.parse.quote(password, safe='')} failed")
        return {"said": f"hello {password}", "nested": {"items": [password, {"deep": password}]}}


PROBE = """\
schema_version: 1
name: echo-probe
title: {en: Probe}
category: identity/account
audience: [agent]
parameters:
  - {name: user, type: account}
  - {name: target, type: string, default: e-error}
steps:
  - id: probe
    connector: echo
    target: "{{ params.target }}"
    action: probe
    with: {user: "{{ params.user }}"}
on_failure: {escalate_to: service-desk-l2}
resolution: {note: "Probed: {{ steps.probe.said }}"}
"""


@pytest.fixture
def echo_app(tmp_path: Path) -> Iterator[Firstline]:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "echo-probe.yaml").write_text(PROBE)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "cred").write_text(CREDENTIAL + "\n")
    (tmp_path / "inventory.yaml").write_text(
        textwrap.dedent("""\
        defaults: {echo: e-error}
        targets:
          e-error: {connector: echo, password: {file: secrets/cred}, mode: error}
          e-repr: {connector: echo, password: {file: secrets/cred}, mode: repr}
          e-url: {connector: echo, password: {file: secrets/cred}, mode: url}
          e-ok: {connector: echo, password: {file: secrets/cred}, mode: ok}
        """)
    )
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'fl.db'}",
        runbooks_dir=tmp_path / "runbooks",
        inventory=tmp_path / "inventory.yaml",
        audit_key_file=tmp_path / "audit.key",
        log_file=tmp_path / "fl.log",
        checkpoint_every=1,
    )
    app = open_app(settings, connectors={"echo": EchoConnector})
    app.vet("echo-probe", "reviewer")
    yield app
    app.close()


def _stores(app: Firstline) -> bytes:
    s = app.settings
    db = Path(s.database_url.removeprefix("sqlite:///"))
    paths = [db, db.with_name(db.name + "-wal"), s.audit_key_file.parent / "audit-checkpoints.jsonl"]
    assert s.log_file is not None
    paths.append(s.log_file)
    blob = b"".join(p.read_bytes() for p in paths if p.exists())
    return blob + "".join(app.export_audit("jsonl")).encode() + "".join(app.export_audit("csv")).encode()


def _assert_absent(blob: bytes, secret: str) -> None:
    for form in spellings(secret):
        assert form.encode() not in blob, f"credential spelling {form!r} leaked"
    assert secret.encode("utf-8") not in blob
    assert json.dumps(secret).encode() not in blob


@pytest.mark.parametrize("target", ["e-error", "e-repr", "e-url"])
def test_a_credential_echoed_in_a_connector_error_never_reaches_a_store(echo_app: Firstline, target: str) -> None:
    out = echo_app.run("echo-probe", {"user": "alice", "target": target}, requester="alice", roles={"agent"})
    assert out.state == "escalated"
    assert out.message == WITHHELD["en"] and CREDENTIAL not in out.message
    ticket = echo_app.ticket(out.ticket_number)
    assert CREDENTIAL not in json.dumps(ticket, ensure_ascii=False)
    _assert_absent(_stores(echo_app), CREDENTIAL)


def test_a_credential_echoed_in_outputs_and_the_note_never_reaches_a_store(echo_app: Firstline) -> None:
    out = echo_app.run("echo-probe", {"user": "alice", "target": "e-ok"}, requester="alice", roles={"agent"})
    assert out.state == "resolved", out.message
    assert out.message == WITHHELD["en"]  # the note held the credential: withheld as a whole
    step = echo_app.ticket(out.ticket_number)["steps"][0]
    assert step["outputs"] == {"said": WITHHELD["en"], "nested": {"items": [REDACTED, {"deep": REDACTED}]}}
    _assert_absent(_stores(echo_app), CREDENTIAL)


def test_the_secret_store_feeds_the_log_masker_and_live_scrubbers(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("-----BEGIN KEY-----\nAAAABBBBCCCCDDDD1234\nEEEEFFFF5678\n-----END KEY-----\n")
    store = SecretStore(tmp_path)
    scrub = Scrubber()
    scrub.follow(store.values)
    assert scrub.text("line AAAABBBBCCCCDDDD1234 here") == "line AAAABBBBCCCCDDDD1234 here"  # not resolved yet
    store({"file": "k"})
    assert scrub.text("line AAAABBBBCCCCDDDD1234 here") == f"line {REDACTED} here"  # one line of a key
    assert oplog.scrub_text("x EEEEFFFF5678 y") == f"x {REDACTED} y"


@pytest.mark.parametrize(
    "shown",
    [
        CREDENTIAL,
        repr(CREDENTIAL)[1:-1],
        repr(CREDENTIAL.encode())[2:-1],
        json.dumps(CREDENTIAL)[1:-1],
        urllib.parse.quote(CREDENTIAL, safe=""),
        urllib.parse.quote_plus(CREDENTIAL),
        unicodedata.normalize("NFKC", CREDENTIAL),
        unicodedata.normalize("NFD", CREDENTIAL),
    ],
    ids=["plain", "repr", "bytes-repr", "json", "url", "url-plus", "nfkc", "nfd"],
)
def test_the_scrubber_masks_every_spelling(shown: str) -> None:
    assert Scrubber([CREDENTIAL]).text(f"<{shown}>") == f"<{REDACTED}>"


# -- the log writer ------------------------------------------------------------------------


@pytest.fixture
def log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # a process-wide scrubber of its own: secrets other tests remembered (a typed "password")
    # would mask words these tests look for
    monkeypatch.setattr(oplog, "_GLOBAL_SCRUB", oplog._Remembered())
    path = tmp_path / "log" / "fl.log"
    oplog.configure(path)
    yield path
    oplog.configure(None)
    structlog.reset_defaults()


def test_log_masking_masks_remembered_secrets_through_the_real_logger(log_file: Path) -> None:
    secret = "Log-Secret-Ωmega-5521"
    oplog.remember_secret(secret)
    log = oplog.get_logger()
    log.info("step.retry", message=f"server said {secret}", nested={"list": [secret]}, quoted=repr(secret))
    try:
        raise RuntimeError(f"boom with {secret}")
    except RuntimeError:
        log.exception("run.crashed")
    log.info("login", password="not-remembered-but-under-a-secret-key")
    text = log_file.read_text(encoding="utf-8")
    assert secret not in text and json.dumps(secret)[1:-1] not in text
    assert "not-remembered-but-under-a-secret-key" not in text
    assert text.count(REDACTED) >= 5
    assert "run.crashed" in text and "RuntimeError" in text


class _Target(BaseModel):
    port: int
    password: dict[str, str]


def test_logged_tracebacks_carry_no_locals_and_no_validation_input(log_file: Path) -> None:
    inline = "Inline-Pässwörd-in-YAML-9"

    def load() -> None:
        password = inline  # a local variable holding a secret: never rendered
        try:
            _Target.model_validate({"port": password, "password": password})
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, "targets.corp")) from exc

    try:
        load()
    except ConfigError:
        oplog.get_logger().exception("run.crashed")
    text = log_file.read_text(encoding="utf-8")
    assert inline not in text and json.dumps(inline)[1:-1] not in text
    assert "targets.corp.password" in text and "ValidationError" in text


@pytest.mark.parametrize(
    "value",
    [
        "S3cret-inline",
        "Z" * 5000,
        "пароль-密码-🔑-Ⅻ",
        ["S3cret-in-a-list"],
        {"nested": {"deeper": "S3cret-nested"}},
        {"inline": "S3cret-in-a-dict"},
    ],
    ids=["plain", "very-long", "unicode", "list", "nested-dict", "dict"],
)
def test_inventory_errors_name_the_field_and_never_the_value(tmp_path: Path, value: Any) -> None:
    leaf = value
    while not isinstance(leaf, str):
        leaf = next(iter(leaf.values())) if isinstance(leaf, dict) else leaf[0]
    inventory = {
        "targets": {
            "corp": {"connector": "echo", "password": value},
            "other": {"connector": "echo", "password": {"file": "x"}, "mode": value},
        }
    }
    path = tmp_path / "inventory.yaml"
    path.write_text(json.dumps(inventory, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_inventory(path, {"echo": EchoConnector})
    message = str(info.value)
    assert leaf not in message and leaf[:12] not in message
    if not isinstance(value, dict) or "inline" not in value:
        assert "targets.corp.password" in message
        assert "{env: NAME} or {file: PATH}" in message


def test_yaml_errors_do_not_quote_the_offending_line(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text('targets:\n  corp: {connector: echo, password: "Unterminated-S3cret\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_inventory(path, {"echo": EchoConnector})
    assert "Unterminated-S3cret" not in str(info.value) and "line " in str(info.value)


def test_validation_messages_that_quote_the_input_hide_it() -> None:
    from typing import Literal

    from pydantic import Field

    class A(BaseModel):
        kind: Literal["a"]

    class B(BaseModel):
        kind: Literal["b"]

    class M(BaseModel):
        x: A | B = Field(discriminator="kind")

    with pytest.raises(ValidationError) as info:
        M.model_validate({"x": {"kind": "Tag-S3cret-77"}})
    assert "Tag-S3cret-77" in str(info.value)  # pydantic's own text quotes it...
    assert "Tag-S3cret-77" not in describe_validation_error(info.value)  # ...ours does not


# -- file modes ----------------------------------------------------------------------------


def test_every_file_firstline_creates_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        data = tmp_path / "data"
        settings = Settings(
            environment="dev",
            data_dir=data,
            runbooks_dir=tmp_path / "runbooks",
            inventory=tmp_path / "inventory.yaml",
            checkpoint_every=1,
        )
        (tmp_path / "runbooks").mkdir()
        app = open_app(settings, connectors={})
        try:
            app.vet  # noqa: B018 - the app is open: database, key, log exist
            with app.engine.begin() as conn:  # a write creates the -wal / -shm files
                conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (x)")
            oplog.get_logger().info("probe")
            files = [
                data / "firstline.db",
                data / "firstline.db-wal",
                data / "firstline.db-shm",
                data / "audit.key",
                data / "audit-checkpoints.jsonl",
                data / "log" / "firstline.log",
            ]
            for f in files:
                assert f.exists(), f
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))
            for d in (data, data / "log"):
                assert stat.S_IMODE(d.stat().st_mode) == 0o700, (d, oct(d.stat().st_mode))
        finally:
            app.close()
    finally:
        os.umask(old)
        oplog.configure(None)


def test_plain_logging_records_are_masked_too(log_file: Path) -> None:
    secret = "Plain-Logging-S3cret-88"
    oplog.remember_secret(secret)
    logging.getLogger("firstline.connectors.ssh").warning("ssh: cannot use %s", secret)
    try:
        raise OSError(f"socket said {secret}")
    except OSError:
        logging.getLogger("firstline.connectors.winrm").exception("winrm failed")
    logging.getLogger("paramiko.transport").warning("library said %r", secret)
    for h in logging.getLogger().handlers:
        h.flush()
    text = log_file.read_text(encoding="utf-8")
    assert secret not in text and "cannot use [REDACTED]" in text
    assert "library said" in text and "winrm failed" in text and "OSError" in text
    for line in text.splitlines():
        json.loads(line)  # every line is one JSON object


@pytest.mark.parametrize("path", ["/", "//", "/.."])
def test_a_short_value_in_an_inventory_error_does_not_garble_the_rule(tmp_path: Path, path: str) -> None:
    """``cleanup_paths: [/]`` said "(no '..', '.', '(value not shown)(value not shown)',
    trailing '(value not shown)')": every "/" of the rule was masked as the value. A value
    too short to be a credential is left as it is."""
    from connectors.ssh import SshConnector

    (tmp_path / "key").write_text("x")
    host = {"connector": "ssh", "host": "h", "username": "u", "private_key": {"file": "key"}}
    inventory = {"targets": {"t": {**host, "known_hosts": {"file": "key"}, "cleanup_paths": [path]}}}
    target = tmp_path / "inventory.yaml"
    target.write_text(json.dumps(inventory), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_inventory(target, {"ssh": SshConnector})
    message = str(info.value)
    assert "(value not shown)" not in message and "no '..', '.', '//', trailing '/'" in message, message
