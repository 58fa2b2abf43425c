"""The SSH connector reads English messages on a host whose default locale is not English.

Only the CUPS tools ran under ``LC_ALL=C``. On a host with ``LANG=de_DE.UTF-8`` set for
logins (/etc/default/locale, a profile), df, touch, sudo ... answered in German and the
connector's reading of those answers misclassified them: a missing cleanup path in
``disk_usage`` was a generic failure instead of ``not_found``, and a restart refused with
"Keine Berechtigung" (Permission denied) was audited as outcome unknown instead of a plain
``access_denied`` failure. Now every command runs under ``env LC_ALL=C LANG=C`` (the
launcher in connectors/ssh_exec.py).

How a German host is simulated on the shared lab sshd (which accepts no environment
variables and must not be restarted): the test adds a key of its own to the service user's
authorized_keys with a forced ``command=`` that starts the login with ``LANG=C.UTF-8
LANGUAGE=de`` - the environment a German login gets - and then runs the requested command
with bash, as sshd would. Only connections with this key are "German"; other tests are not
affected, and the line is removed afterwards. The lab machine has the German message
catalogues of coreutils but no generated ``de_DE`` locale (an ungenerated ``LANG`` would fall
back to C and translate nothing), hence ``C.UTF-8`` with ``LANGUAGE=de``; the fixture first
checks that a plain command really answers in German there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.base import NotFound, Rejected
from connectors.ssh import SshConnector
from tests.integration.hosts.helpers import SVC_LAB, SVC_USER, ssh_connector

AUTHORIZED_KEYS = Path("/home") / SVC_USER / ".ssh" / "authorized_keys"


@dataclass
class GermanHost:
    folder: Path  # root-owned scratch folder on the lab host (the service user can read, not write)
    key_file: Path

    def connector(self, **update: object) -> SshConnector:
        return ssh_connector(private_key={"file": str(self.key_file)}, **update)


def _rewrite_authorized_keys(edit: object) -> None:
    """Replace authorized_keys atomically (sshd may read it at any moment for other tests)."""
    assert callable(edit)
    text = AUTHORIZED_KEYS.read_text()
    new = AUTHORIZED_KEYS.with_name(f".authorized_keys.{uuid.uuid4().hex}")
    new.write_text(edit(text))
    shutil.chown(new, SVC_USER, SVC_USER)
    os.chmod(new, 0o600)
    os.replace(new, AUTHORIZED_KEYS)


@pytest.fixture
def german_host(lab_hosts: None, tmp_path: Path) -> Iterator[GermanHost]:
    marker = f"fl-locale-test-{uuid.uuid4().hex[:12]}"
    folder = SVC_LAB / "tmp" / marker
    folder.mkdir(mode=0o755)
    login = folder / "german-login"
    login.write_text(
        "#!/bin/sh\n"
        "# A login on a host whose default locale is German (see the module docstring).\n"
        "export LANG=C.UTF-8 LANGUAGE=de\n"
        'exec /bin/bash -c "$SSH_ORIGINAL_COMMAND"\n'
    )
    os.chmod(login, 0o755)
    key_file = tmp_path / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", marker, "-f", str(key_file)], check=True)
    public = (tmp_path / "client_key.pub").read_text().strip()
    line = f'command="{login}",no-pty,no-agent-forwarding,no-port-forwarding,no-X11-forwarding {public}\n'
    _rewrite_authorized_keys(lambda text: text + ("" if text.endswith("\n") or not text else "\n") + line)
    try:
        host = GermanHost(folder, key_file)
        # The simulation must be real: a command run without the connector's launcher answers in German.
        probe = host.connector()
        try:
            channel = probe.pool.transport().open_session()
            channel.exec_command(f"df -P -- {folder}/nirgends")
            err = channel.makefile_stderr("rb").read().decode()
            channel.close()
        finally:
            probe.close()
        assert "nicht gefunden" in err, f"the German host simulation does not translate: {err!r}"
        yield host
    finally:
        _rewrite_authorized_keys(lambda text: "".join(x for x in text.splitlines(True) if marker not in x))
        shutil.rmtree(folder, ignore_errors=True)


def test_a_missing_path_is_not_found_on_a_german_host(german_host: GermanHost) -> None:
    missing = str(SVC_LAB / "cache" / f"gone-{uuid.uuid4().hex[:8]}")
    conn = german_host.connector(cleanup_paths=[missing])
    try:
        with pytest.raises(NotFound) as info:  # before: Rejected "failed (exit 1): ... nicht gefunden"
            conn.run("disk_usage", {"path": missing}, timeout=20)
    finally:
        conn.close()
    assert "does not exist" in str(info.value)


def test_a_refused_restart_is_a_plain_failure_on_a_german_host(german_host: GermanHost) -> None:
    """A service script whose restart is refused by the file system (it may not write its pid file)."""
    locked = german_host.folder / "run"
    locked.mkdir(mode=0o755)  # root's: the service user may not write here
    script = german_host.folder / "svc-refused"
    script.write_text(f'#!/bin/sh\n# LSB-style manager: CMD status|restart NAME\nexec touch "{locked}/$2.pid"\n')
    os.chmod(script, 0o755)
    conn = german_host.connector(service_command=[str(script)], allowed_services=["labd"])
    try:
        with pytest.raises(Rejected) as info:
            conn.run("service_restart", {"service": "labd"}, timeout=20)
    finally:
        conn.close()
    # before: "... kann nicht berührt werden: Keine Berechtigung" was not understood as a refusal,
    # and the failed restart was recorded as outcome unknown
    assert info.value.reason == "access_denied", info.value
    assert info.value.outcome_unknown is False
    assert "Permission denied" in str(info.value)


def test_sudo_answers_in_english_on_a_german_host(german_host: GermanHost) -> None:
    """sudo's own messages follow the caller's locale: ``env LC_ALL=C`` stands before ``sudo -n``
    (the lab's real sudo, no rule for the user; German: "Ein Passwort ist notwendig")."""
    conn = german_host.connector(sudo=True)
    try:
        with pytest.raises(Rejected) as info:
            conn.run("service_restart", {"service": "labd"}, timeout=20)
    finally:
        conn.close()
    assert (info.value.reason, info.value.outcome_unknown) == ("access_denied", False), info.value
    assert "sudo: a password is required" in str(info.value)


def test_a_missing_cleanup_path_is_not_found_on_a_german_host(german_host: GermanHost) -> None:
    """disk_cleanup reads realpath's "No such file or directory" (German: "... nicht gefunden")."""
    missing = str(SVC_LAB / "cache" / f"gone-{uuid.uuid4().hex[:8]}")
    conn = german_host.connector(cleanup_paths=[missing])
    try:
        with pytest.raises(NotFound):
            conn.run("disk_cleanup", {"path": missing}, timeout=20)
    finally:
        conn.close()
