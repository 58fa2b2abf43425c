"""`firstline inventory check [--connect]` against the real lab (issue 7, item 22), run as
a subprocess the way an operator runs it: exit code, stdout and stderr.

* the lab inventory is valid and, with --connect, every target works (LDAP bind + base
  DN read on slapd and Samba AD, SMTP EHLO/NOOP, SSH host key + `true`, WinRM shell);
* broken copies exit 2 and name the exact field — each kind of mistake, and several at
  once (all reported);
* a wrong WinRM password or an untrusted LDAP CA exits 1 with the connector's own
  message for that target only; the other targets still report ok;
* `runbooks check` fails when the inventory the runbooks need is broken.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import REPO, start_lab

pytestmark = pytest.mark.integration
FIRSTLINE = str(REPO / ".venv" / "bin" / "firstline")
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def lab() -> None:
    start_lab("slapd", "samba", "smtp", "sshd", "winrm")


def _env(tmp_path: Path, inventory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update(
        FIRSTLINE_ENVIRONMENT="test",
        FIRSTLINE_DATA_DIR=str(tmp_path / "data"),
        FIRSTLINE_INVENTORY=str(inventory),
        FIRSTLINE_RUNBOOKS_DIR=str(REPO / "runbooks"),
    )
    return env


def fl(tmp_path: Path, inventory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIRSTLINE, *args],
        env=_env(tmp_path, inventory),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _copy(tmp_path: Path, edit: Edit) -> Path:
    raw = yaml.safe_load((REPO / "lab" / "inventory.yaml").read_text())
    edit(raw)
    (tmp_path / "lab").mkdir(exist_ok=True)
    path = tmp_path / "lab" / "inventory.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    if not (tmp_path / "var").exists():
        os.symlink(REPO / "var", tmp_path / "var")  # relative secret paths stay valid
    return path


def _lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if " (" in line and "): " in line:
            out[line.split(" (", 1)[0]] = line
    return out


def test_the_lab_inventory_is_valid_and_every_target_works(lab: None, tmp_path: Path) -> None:
    inventory = REPO / "lab" / "inventory.yaml"
    r = fl(tmp_path, inventory, "inventory", "check")
    assert r.returncode == 0 and "valid (5 targets)" in r.stdout, r.stdout + r.stderr
    r = fl(tmp_path, inventory, "inventory", "check", "--connect")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = _lines(r.stdout)
    assert set(lines) == {"corp", "ad", "mail-lab", "print-01", "print-win-01"}, r.stdout
    assert all(": ok — " in line for line in lines.values()), r.stdout
    assert "read ou=people,dc=example,dc=org" in lines["corp"]
    assert "read OU=People,DC=example,DC=test" in lines["ad"]
    assert "host key matched known_hosts" in lines["print-01"] and "ran true" in lines["print-01"]


def _set(path: str, value: Any) -> Edit:
    def edit(raw: dict[str, Any]) -> None:
        node = raw
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return edit


_DELETE = object()
BROKEN: dict[str, tuple[Edit, str]] = {
    "secret-file-missing": (
        _set("targets.corp.password", {"file": "../x"}),
        "targets.corp.password: file ../x not readable (No such file or directory)",
    ),
    "secret-env-unset": (
        _set("targets.ad.password", {"env": "FIRSTLINE_TEST_NOT_SET_ANYWHERE"}),
        "targets.ad.password: environment variable FIRSTLINE_TEST_NOT_SET_ANYWHERE is not set",
    ),
    "secret-two-sources": (
        _set("targets.print-win-01.password", {"env": "X", "file": "y"}),
        "targets.print-win-01.password:",
    ),
    "secret-unknown-source": (
        _set("targets.corp.password", {"vault": "kv/firstline"}),
        "targets.corp.password: a secret must be a reference",
    ),
    "ca-file-missing": (
        _set("targets.corp.ca_file", {"file": "../nope.crt"}),
        "targets.corp.ca_file: file ../nope.crt",
    ),
    "known-hosts-missing": (
        _set("targets.print-01.known_hosts", "../var/lab/sshd/no_known_hosts"),
        "targets.print-01.known_hosts: file ../var/lab/sshd/no_known_hosts not readable",
    ),
    "unknown-connector": (_set("targets.corp.connector", "ldapx"), "targets.corp.connector: unknown connector 'ldapx'"),
    "unknown-setting": (_set("targets.print-01.colour", "red"), "targets.print-01.colour: Extra inputs"),
    "missing-setting": (_set("targets.ad.base_dn", _DELETE), "targets.ad.base_dn: Field required"),
    "bad-port": (_set("targets.mail-lab.port", 70000), "targets.mail-lab.port:"),
    "choice-missing-target": (
        _set("choices.printers.office-1.target", "print-99"),
        "choices.printers.office-1 names unknown target 'print-99'",
    ),
    "choice-queue-not-allowed": (
        _set("choices.printers.office-2.queue", "office-9"),
        "choices.printers.office-2.queue: 'office-9' is not in targets.print-01.allowed_queues",
    ),
    "choice-service-not-allowed": (
        _set("choices.services.win-time.service", "Netlogon"),
        "choices.services.win-time.service: 'Netlogon' is not in targets.print-win-01.allowed_services",
    ),
    # a kind no runbook step names skipped every step, and the run resolved having done nothing
    "choice-kind-capitalised": (
        _set("choices.services.lab-daemon.kind", "Linux"),
        "choices.services.lab-daemon.kind: 'Linux' is not a kind Firstline knows (cups, linux, windows; lower case)",
    ),
    "choice-kind-unknown": (
        _set("choices.printers.office-1.kind", "unix"),
        "choices.printers.office-1.kind: 'unix' is not a kind Firstline knows",
    ),
    "choice-kind-missing": (
        _set("choices.cleanup.app-cache.kind", _DELETE),
        "choices.cleanup.app-cache: needs a 'kind' (cups, linux, windows)",
    ),
    "choice-kind-wrong-target": (
        _set("choices.services.win-time.kind", "linux"),
        "choices.services.win-time.kind: 'linux' needs a ssh target; its target is winrm",
    ),
    "default-wrong-connector": (_set("defaults.ldap", "mail-lab"), "defaults.ldap: target 'mail-lab' is a mail target"),
    "default-missing-target": (_set("defaults.mail", "mail-99"), "defaults.mail names unknown target 'mail-99'"),
    "default-unknown-connector": (_set("defaults.fax", "corp"), "defaults.fax: unknown connector 'fax'"),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_a_broken_inventory_exits_2_naming_the_field(lab: None, tmp_path: Path, case: str) -> None:
    edit, expected = BROKEN[case]
    inventory = _copy(tmp_path, edit)
    r = fl(tmp_path, inventory, "inventory", "check", "--connect")
    assert r.returncode == 2, r.stdout + r.stderr
    assert expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "nothing was connected to" in r.stderr
    rb = fl(tmp_path, inventory, "runbooks", "check")
    assert rb.returncode == 1 and str(inventory) in rb.stdout, rb.stdout + rb.stderr


def test_every_problem_is_reported_at_once(lab: None, tmp_path: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["targets"]["corp"]["password"] = {"file": "../x"}
        raw["targets"]["ad"]["colour"] = "red"
        raw["targets"]["print-01"]["port"] = "not-a-port"
        raw["choices"]["printers"]["office-win-1"]["queue"] = "office-win-9"
        raw["defaults"]["mail"] = "mail-99"

    r = fl(tmp_path, _copy(tmp_path, edit), "inventory", "check")
    assert r.returncode == 2
    for expected in (
        "targets.corp.password: file ../x not readable",
        "targets.ad.colour: Extra inputs",
        "targets.print-01.port:",
        "choices.printers.office-win-1.queue: 'office-win-9' is not in targets.print-win-01.allowed_queues",
        "defaults.mail names unknown target 'mail-99'",
    ):
        assert expected in r.stderr, r.stderr
    assert "5 problem(s)" in r.stderr, r.stderr


def test_a_bad_yaml_file_names_the_line(lab: None, tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("targets:\n  corp: {connector: ldap\n")
    r = fl(tmp_path, path, "inventory", "check")
    assert r.returncode == 2 and "not valid YAML: line " in r.stderr, r.stderr


def test_a_wrong_winrm_password_fails_that_target_only_with_the_auth_message(lab: None, tmp_path: Path) -> None:
    (tmp_path / "wrong").write_text("Not-The-WinRM-Password-31\n")
    inventory = _copy(tmp_path, _set("targets.print-win-01.password", {"file": str(tmp_path / "wrong")}))
    r = fl(tmp_path, inventory, "inventory", "check", "--connect")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = _lines(r.stdout)
    assert "FAILED [auth_failed]" in lines["print-win-01"] and "refused the credentials" in lines["print-win-01"]
    assert all(": ok — " in line for name, line in lines.items() if name != "print-win-01"), r.stdout
    assert "Not-The-WinRM-Password-31" not in r.stdout + r.stderr


def test_an_untrusted_ldap_ca_fails_that_target_only_with_a_tls_message(lab: None, tmp_path: Path) -> None:
    key, crt = str(tmp_path / "other.key"), str(tmp_path / "other.crt")
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Not the lab CA", "-days", "1"]
    subprocess.run(
        [*argv, "-keyout", key, "-out", crt],
        check=True,
        capture_output=True,
    )
    inventory = _copy(tmp_path, _set("targets.corp.ca_file", {"file": str(tmp_path / "other.crt")}))
    r = fl(tmp_path, inventory, "inventory", "check", "--connect")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = _lines(r.stdout)
    assert "FAILED" in lines["corp"] and ("certificate" in lines["corp"].lower() or "tls" in lines["corp"].lower())
    assert all(": ok — " in line for name, line in lines.items() if name != "corp"), r.stdout


def test_timeout_bounds_every_target_even_a_silent_one(lab: None, tmp_path: Path) -> None:
    """--timeout is "seconds per target": an SSH target and a WinRM target on a port that
    accepts and then never answers took 5.7 s and 30.8 s with --timeout 1 (their connectors'
    own timeouts). Each is now stopped after the timeout and said to have not answered."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel completes each handshake; nothing is ever read or sent
    port = silent.getsockname()[1]

    def edit(raw: dict[str, Any]) -> None:
        raw["targets"]["print-01"]["port"] = port
        raw["targets"]["print-win-01"]["endpoint"] = f"https://127.0.0.1:{port}/wsman"

    inventory = _copy(tmp_path, edit)
    try:
        r = fl(tmp_path, inventory, "inventory", "check", "--connect", "--timeout", "1")
    finally:
        silent.close()
    assert r.returncode == 1, r.stdout + r.stderr
    lines = _lines(r.stdout)
    for name in ("print-01", "print-win-01"):  # stopped by the check's own limit, not the connector's
        assert "FAILED [timeout]" in lines[name] and "no answer within 1 s (the check was stopped)" in lines[name]
    assert all(": ok — " in line for name, line in lines.items() if name not in ("print-01", "print-win-01"))
