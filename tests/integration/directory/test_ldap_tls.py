"""TLS is configurable and its errors are specific (issue 7, item 9), against the real lab.

* ``tls_server_name``: the name the certificate must carry while connecting to the URL's
  address (the lab certificates carry ``localhost`` and ``127.0.0.1``).
* Distinct reasons and messages, each naming the inventory setting to fix: an untrusted
  issuer (a CA made here, not the lab's), a name mismatch (a name the certificate does not
  carry), an expired certificate (made here from the lab CA, served by a throwaway TLS
  listener), an unreadable or non-PEM ``ca_file``. Over LDAPS and over StartTLS.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.base import AuthFailed, ConnectorError, Unreachable
from tests.integration.directory.helpers import CA, VAR, Directory, connector

TARGETS = {"openldap": "corp", "active_directory": "ad"}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject_key: ec.EllipticCurvePrivateKey,
    issuer_key: object,
    issuer: x509.Name,
    *,
    ca: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
    names: tuple[str, ...] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Firstline test")]))
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        import ipaddress

        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]


@pytest.fixture
def foreign_ca(tmp_path: Path) -> Path:
    """A CA that signed nothing the lab serves."""
    key = _key()
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some other CA")])
    cert = _cert(key, key, name, ca=True, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=9))
    path = tmp_path / "other-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def expired_listener(tmp_path: Path) -> Iterator[int]:
    """A TLS listener on 127.0.0.1 whose certificate (from the lab CA, right names) expired."""
    lab_key = serialization.load_pem_private_key((VAR / "ca" / "ca.key").read_bytes(), password=None)
    lab_ca = x509.load_pem_x509_certificate(CA.read_bytes())
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = _cert(
        key,
        lab_key,
        lab_ca.subject,
        ca=False,
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
        names=("127.0.0.1", "localhost"),
    )
    pem = tmp_path / "expired.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


def status_of(target: str, **changes: object) -> dict[str, object]:
    conn = connector(target, **changes)
    try:
        return conn.run("account_status", {"user": "alice"}, timeout=15)
    finally:
        conn.close()


def failure_of(target: str, **changes: object) -> ConnectorError:
    conn = connector(target, **changes)
    try:
        with pytest.raises(ConnectorError) as err:
            conn.run("account_status", {"user": "alice"}, timeout=15)
    finally:
        conn.close()
    return err.value


@pytest.mark.parametrize("name", ["localhost", "LOCALHOST", "127.0.0.1"])
def test_tls_server_name_is_used_for_the_check(directory: Directory, name: str) -> None:
    assert status_of(directory.target, tls_server_name=name)["exists"] is True


@pytest.mark.parametrize("name", ["dc.example.test", "ldap.example.org", "127.0.0.2"])
def test_a_name_the_certificate_does_not_carry_is_a_name_mismatch(directory: Directory, name: str) -> None:
    err = failure_of(directory.target, tls_server_name=name)
    assert isinstance(err, AuthFailed) and not err.transient
    assert err.reason == "certificate_name_mismatch"
    assert "tls_server_name" in str(err) and name in str(err)


def test_name_mismatch_over_starttls(openldap: Directory) -> None:
    url = "ldap://127.0.0.1:3389"
    assert status_of("corp", url=url, start_tls=True)["exists"] is True
    assert status_of("corp", url=url, start_tls=True, tls_server_name="localhost")["exists"] is True
    err = failure_of("corp", url=url, start_tls=True, tls_server_name="dc.example.test")
    assert err.reason == "certificate_name_mismatch" and "tls_server_name" in str(err)


def test_an_untrusted_issuer_names_ca_file(directory: Directory, foreign_ca: Path) -> None:
    err = failure_of(directory.target, ca_file=str(foreign_ca))
    assert isinstance(err, AuthFailed) and err.reason == "certificate_untrusted"
    assert "ca_file" in str(err) and str(foreign_ca) not in str(err)


def test_an_untrusted_issuer_over_starttls(openldap: Directory, foreign_ca: Path) -> None:
    err = failure_of("corp", url="ldap://127.0.0.1:3389", start_tls=True, ca_file=str(foreign_ca))
    assert err.reason == "certificate_untrusted" and "ca_file" in str(err)


def test_an_expired_certificate_is_said_to_be_expired(lab_directory: None, expired_listener: int) -> None:
    err = failure_of("corp", url=f"ldaps://127.0.0.1:{expired_listener}")
    assert isinstance(err, AuthFailed) and err.reason == "certificate_expired"
    assert "validity" in str(err) and "renewed" in str(err)


@pytest.mark.parametrize(
    "ca_file",
    [
        "/nonexistent/firstline/ca.pem",  # missing
        "/etc",  # a directory
        {"file": "../var/lab/no-such-ca.crt"},  # missing, given as {file: ...}
    ],
)
def test_an_unreadable_ca_file_is_a_configuration_error(directory: Directory, ca_file: object) -> None:
    err = failure_of(directory.target, ca_file=ca_file)
    assert err.reason == "config_error" and not isinstance(err, Unreachable)
    assert "ca_file" in str(err) and "/nonexistent" not in str(err) and "no-such-ca" not in str(err)


def test_a_ca_file_without_a_certificate_is_a_configuration_error(directory: Directory, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("this is not a certificate\n")
    err = failure_of(directory.target, ca_file=str(bogus))
    assert err.reason == "config_error" and "PEM" in str(err) and "ca_file" in str(err)


def test_the_four_failures_have_four_different_messages(
    openldap: Directory, foreign_ca: Path, expired_listener: int
) -> None:
    texts = {
        str(failure_of("corp", tls_server_name="dc.example.test")),
        str(failure_of("corp", ca_file=str(foreign_ca))),
        str(failure_of("corp", url=f"ldaps://127.0.0.1:{expired_listener}")),
        str(failure_of("corp", ca_file="/nonexistent/ca.pem")),
    }
    assert len(texts) == 4


def test_a_plain_port_is_unreachable_not_a_certificate_problem(openldap: Directory) -> None:
    """ldaps:// to the plain LDAP port: the handshake fails without any certificate."""
    err = failure_of("corp", url="ldaps://127.0.0.1:3389")
    assert isinstance(err, Unreachable) and err.reason == "unreachable"


def test_tls_server_name_is_validated() -> None:
    from pydantic import ValidationError

    from tests.integration.directory.helpers import target_config

    for bad in ("", "has space", "a/b", "x" * 300):
        with pytest.raises(ValidationError):
            target_config("corp", tls_server_name=bad)
    assert TARGETS  # both flavours are exercised through the parametrised fixture above
