"""The mail connector's TLS failures are specific too (issue 7 item 9, same kind as LDAP).

A throwaway TLS listener (certificate from the lab CA, expired) stands in for an SMTPS
server: the handshake fails before any SMTP is spoken.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.base import AuthFailed, ConnectorError
from connectors.mail import MailConnector, MailTarget
from runner.secrets import SecretStore
from tests.integration.directory import test_ldap_tls as _tls
from tests.integration.directory.helpers import CA, LAB, VAR

expired_listener = _tls.expired_listener
foreign_ca = _tls.foreign_ca


def smtps(port: int, ca_file: str | None) -> MailConnector:
    cfg = MailTarget.model_validate(
        {
            "connector": "mail",
            "host": "127.0.0.1",
            "port": port,
            "sender": "servicedesk@example.org",
            "service_desk": "the service desk",
            "starttls": False,
            "ssl": True,
            "ca_file": ca_file,
        }
    )
    return MailConnector("mail-tls", cfg, SecretStore(LAB))


def failure(conn: MailConnector) -> ConnectorError:
    with pytest.raises(ConnectorError) as err:
        conn.run(
            "notify", {"to": "a@example.org", "kind": "password_reset", "account": "a", "channel": "cli"}, timeout=5
        )
    return err.value


def test_an_expired_mail_server_certificate_is_expired(expired_listener: int) -> None:
    err = failure(smtps(expired_listener, str(CA)))
    assert isinstance(err, AuthFailed) and err.reason == "certificate_expired" and "renewed" in str(err)


def test_an_untrusted_mail_server_certificate_names_ca_file(expired_listener: int, foreign_ca: Path) -> None:
    err = failure(smtps(expired_listener, str(foreign_ca)))
    assert err.reason == "certificate_untrusted" and "ca_file" in str(err) and str(foreign_ca) not in str(err)


@pytest.mark.parametrize("ca_file", ["/nonexistent/mail-ca.pem", "/etc"])
def test_an_unreadable_mail_ca_file_is_a_configuration_error(expired_listener: int, ca_file: str) -> None:
    err = failure(smtps(expired_listener, ca_file))
    assert err.reason == "config_error" and "ca_file" in str(err) and "/nonexistent" not in str(err)


# --- the mail account's password travels as typed too (issue 7 item 3, same kind) -----------


@pytest.fixture
def smtp_auth(tmp_path: Path) -> Iterator[tuple[int, list[bytes], Path]]:
    """An SMTP server with STARTTLS (lab certificate) and AUTH, recording the password bytes."""
    import socket
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    seen: list[bytes] = []
    expected = tmp_path / "expected"

    def authenticator(server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
        password = bytes(getattr(data, "password", b""))
        seen.append(password)
        return AuthResult(success=password == expected.read_bytes())

    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(VAR / "slapd" / "tls" / "server.crt", VAR / "slapd" / "tls" / "server.key")
    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=True,
        require_starttls=True,
        tls_context=tls,
    )
    controller.start()
    yield port, seen, expected
    controller.stop()


def smtp_login(port: int, secret: Path) -> MailConnector:
    cfg = MailTarget.model_validate(
        {
            "connector": "mail",
            "host": "127.0.0.1",
            "port": port,
            "sender": "servicedesk@example.org",
            "service_desk": "the service desk",
            "starttls": True,
            "ca_file": str(CA),
            "username": "svc-mail",
            "password": {"file": str(secret)},
        }
    )
    return MailConnector("mail-auth", cfg, SecretStore(LAB))


@pytest.mark.parametrize(
    "password",
    ["Sommet lointain ²² orage", "Kv-9 cafe\u0301 ﷺ\u00a0🐢", "plain ascii password"],
)
def test_the_mail_password_is_sent_as_typed(
    smtp_auth: tuple[int, list[bytes], Path], tmp_path: Path, password: str
) -> None:
    port, seen, expected = smtp_auth
    expected.write_bytes(password.encode("utf-8"))
    secret = tmp_path / "mail-password"
    secret.write_text(password, encoding="utf-8")
    out = smtp_login(port, secret).run(
        "notify", {"to": "a@example.org", "kind": "password_reset", "account": "a", "channel": "cli"}, timeout=10
    )
    assert out["sent"] is True and seen[-1] == password.encode("utf-8")
