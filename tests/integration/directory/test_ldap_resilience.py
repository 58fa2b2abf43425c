"""Connection trouble and credentials: unreachable, wrong service password, dropped links, TLS."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors.base import AuthFailed, Rejected, Unreachable
from tests.integration.directory.helpers import LAB, REPO, Directory, connector, new_password, target_config

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("target", ["corp", "ad"])
def test_a_stopped_port_is_unreachable(lab_directory: None, target: str) -> None:
    conn = connector(target, url=f"ldaps://127.0.0.1:{_free_port()}", connect_timeout=2)
    with pytest.raises(Unreachable) as err:
        conn.run("account_status", {"user": "alice"}, timeout=5)
    assert err.value.transient is True


@pytest.mark.parametrize("target", ["corp", "ad"])
def test_wrong_service_credentials_are_auth_failed(lab_directory: None, tmp_path: Path, target: str) -> None:
    secret = tmp_path / "wrong"
    secret.write_text("Definitely-Not-The-Password-1")
    conn = connector(target, password={"file": str(secret)})
    with pytest.raises(AuthFailed) as err:
        conn.run("account_status", {"user": "alice"}, timeout=10)
    assert "Definitely-Not" not in str(err.value)


@pytest.mark.parametrize("target", ["corp", "ad"])
def test_an_untrusted_certificate_is_refused(lab_directory: None, target: str) -> None:
    """Not transient (retrying cannot help) and names the setting to fix (issue 7 item 9)."""
    conn = connector(target, ca_file="/etc/ssl/certs/ca-certificates.crt")
    with pytest.raises(AuthFailed) as err:
        conn.run("account_status", {"user": "alice"}, timeout=10)
    assert err.value.reason == "certificate_untrusted"
    assert err.value.transient is False
    assert "ca_file" in str(err.value)


def test_plain_ldap_without_start_tls_is_a_configuration_error(lab_directory: None) -> None:
    with pytest.raises(ValidationError):
        target_config("corp", url="ldap://127.0.0.1:3389")


def test_start_tls_on_plain_port_works(openldap: Directory) -> None:
    conn = connector("corp", url="ldap://127.0.0.1:3389", start_tls=True)
    user, _ = openldap.create_user()
    pw = new_password()
    conn.run("reset_password", {"user": user, "new_password": pw}, timeout=30)
    assert openldap.bind_ok(user, pw)
    conn.close()


def test_pooled_connection_is_reused(directory: Directory) -> None:
    directory.conn.run("account_status", {"user": "alice"}, timeout=10)
    first = directory.conn._conn
    directory.conn.run("account_status", {"user": "bob"}, timeout=10)
    assert directory.conn._conn is first
    assert first is not None and first.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_a_killed_pooled_socket_reconnects_transparently(directory: Directory) -> None:
    directory.conn.run("account_status", {"user": "alice"}, timeout=10)
    pooled = directory.conn._conn
    assert pooled is not None
    pooled.socket.shutdown(socket.SHUT_RDWR)  # the link dies between two runs
    out = directory.conn.run("account_status", {"user": "alice"}, timeout=10)
    assert out["exists"] is True
    assert directory.conn._conn is not pooled


def test_a_server_restart_between_calls_is_survived(openldap: Directory) -> None:
    user, _ = openldap.create_user()
    openldap.conn.run("account_status", {"user": user}, timeout=10)
    subprocess.run(["bash", str(LAB / "slapd.sh"), "stop"], check=True, capture_output=True)
    try:
        with pytest.raises(Unreachable):
            openldap.conn.run("account_status", {"user": user}, timeout=5)
    finally:
        subprocess.run(["bash", str(LAB / "slapd.sh"), "start"], check=True, capture_output=True, cwd=REPO)
    assert openldap.conn.run("account_status", {"user": user}, timeout=10)["exists"] is True
    openldap.admin.unbind()
    openldap.admin.rebind()


def test_a_drop_during_a_write_is_unreachable_not_a_retry(
    directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes are never silently repeated: a link lost mid-write is reported as Unreachable."""
    user, _ = directory.create_user()
    directory.lock(user)
    flavor = directory.conn._flavor
    real_unlock = flavor.unlock

    def dying_unlock(conn, dn, seen):  # type: ignore[no-untyped-def]
        conn.socket.shutdown(socket.SHUT_RDWR)
        return real_unlock(conn, dn, seen)

    monkeypatch.setattr(flavor, "unlock", dying_unlock)
    with pytest.raises(Unreachable) as err:
        directory.conn.run("unlock_account", {"user": user}, timeout=10)
    assert "may or may not" in str(err.value)
    assert err.value.outcome_unknown  # audited as outcome "unknown", never as "failure"
    monkeypatch.undo()
    assert directory.conn.run("account_status", {"user": user}, timeout=10)["locked"] is True


def test_passwords_are_never_sent_without_tls(openldap: Directory, monkeypatch: pytest.MonkeyPatch) -> None:
    user, old = openldap.create_user()
    openldap.conn.run("account_status", {"user": user}, timeout=10)
    pooled = openldap.conn._conn
    assert pooled is not None
    monkeypatch.setattr(pooled.server, "ssl", False)  # as if TLS had silently not been set up
    with pytest.raises(Rejected) as err:
        openldap.conn.run("reset_password", {"user": user, "new_password": new_password()}, timeout=10)
    assert err.value.reason == "insecure_connection"
    assert openldap.bind_ok(user, old)
