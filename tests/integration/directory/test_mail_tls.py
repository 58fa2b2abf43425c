"""The mail connector's TLS failures are specific too (issue 7 item 9, same kind as LDAP).

A throwaway TLS listener (certificate from the lab CA, expired) stands in for an SMTPS
server: the handshake fails before any SMTP is spoken.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import AuthFailed, ConnectorError
from connectors.mail import MailConnector, MailTarget
from runner.secrets import SecretStore
from tests.integration.directory import test_ldap_tls as _tls
from tests.integration.directory.helpers import CA, LAB

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
