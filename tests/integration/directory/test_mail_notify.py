"""The mail connector against the lab SMTP sink: real delivery, bilingual text, no secrets."""

from __future__ import annotations

import secrets

import pytest

from connectors.base import InvalidInput, Rejected, Unreachable
from connectors.mail import MailConnector, MailTarget
from runner.secrets import SecretStore
from tests.integration.directory.helpers import LAB, mail_connector, mails_to

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["password_reset", "password_change", "account_unlock"])
def test_notification_is_delivered_with_time_channel_and_wasnt_me(lab_directory: None, kind: str) -> None:
    to = f"m{secrets.token_hex(4)}@example.org"
    out = mail_connector().run(
        "notify",
        {"to": to, "kind": kind, "account": "alice", "channel": "portal", "when": "2026-03-01T09:30:00+00:00"},
        timeout=10,
    )
    assert out["sent"] is True and out["to"] == to
    (msg,) = mails_to(to)
    body = msg.get_content()
    assert "2026-03-01 09:30 UTC" in body
    assert "self-service portal" in body and "selfserviceportaal" in body
    assert "wasn't you" in body and "Was u dit niet" in body
    cut = body.index("Was u dit niet")
    english, dutch = body[:cut], body[cut:]
    assert "Contact the service desk (servicedesk@example.org" in english
    assert "contact op met de servicedesk (servicedesk@example.org" in dutch and "the service desk" not in dutch
    assert "alice" in body
    assert msg["From"] == "servicedesk@example.org"


@pytest.mark.parametrize(
    "field,value",
    [("to", "victim@example.org\r\nBcc: evil@example.net"), ("account", "alice\nBcc: x@y"), ("to", "not-an-address")],
)
def test_header_injection_and_bad_addresses_are_refused(lab_directory: None, field: str, value: str) -> None:
    inputs = {"to": "a@example.org", "kind": "password_reset", "account": "alice", "channel": "cli"} | {field: value}
    with pytest.raises(InvalidInput):
        mail_connector().run("notify", inputs, timeout=10)


def test_unknown_kind_is_refused(lab_directory: None) -> None:
    with pytest.raises(InvalidInput):
        mail_connector().run(
            "notify", {"to": "a@example.org", "kind": "password_is", "account": "a", "channel": "cli"}, timeout=10
        )


def test_mail_server_down_is_unreachable(lab_directory: None) -> None:
    cfg = MailTarget.model_validate(
        {"connector": "mail", "host": "127.0.0.1", "port": 1, "sender": "s@example.org", "starttls": False}
    )
    with pytest.raises(Unreachable):
        MailConnector("down", cfg, SecretStore(LAB)).run(
            "notify", {"to": "a@example.org", "kind": "password_reset", "account": "a", "channel": "cli"}, timeout=5
        )


def test_notification_goes_to_every_address_with_client_address_and_link(lab_directory: None) -> None:
    """security.md item 36: all registered addresses, the client IP and time, a "wasn't you?"
    line with the service desk and the portal link; nothing secret (there is no input for it)."""
    first, second = (f"m{secrets.token_hex(4)}@example.org" for _ in range(2))
    out = mail_connector().run(
        "notify",
        {
            "to": f"{first},{second.upper()}, {first}",  # duplicates (any case) once
            "kind": "password_reset",
            "account": "alice",
            "channel": "portal",
            "when": "2026-03-01T09:30:00+00:00",
            "client_ip": "2001:db8::0:1",
            "link": "https://portal.example.org/help",
        },
        timeout=10,
    )
    assert out["to"] == f"{first}, {second.upper()}"
    for address in (first, second):
        (msg,) = mails_to(address)
        body = msg.get_content()
        assert "The request came from the network address 2001:db8::1." in body
        assert "Het verzoek kwam van het netwerkadres 2001:db8::1." in body
        assert "2026-03-01 09:30 UTC" in body
        assert (
            "This wasn't you? Contact the service desk" in body and "(or see https://portal.example.org/help)" in body
        )
        assert "(of zie https://portal.example.org/help)" in body


@pytest.mark.parametrize(
    "field,value",
    [
        ("client_ip", "10.0.0.1\r\nBcc: x@y"),
        ("client_ip", "not-an-ip"),
        ("link", "https://portal.example.org/x?token=abc"),
        ("link", "javascript:alert(1)"),
        ("link", "https://evil.example/\nBcc: x@y"),
        ("to", "a@example.org,not-an-address"),
        ("to", " , "),
    ],
)
def test_bad_client_address_link_or_one_bad_recipient_is_refused(lab_directory: None, field: str, value: str) -> None:
    inputs = {"to": "a@example.org", "kind": "account_unlock", "account": "alice", "channel": "portal"} | {field: value}
    with pytest.raises((InvalidInput, Rejected)):
        mail_connector().run("notify", inputs, timeout=10)


def _notify(conn: MailConnector, to: str) -> None:
    conn.run("notify", {"to": to, "kind": "account_unlock", "account": "alice", "channel": "portal"}, timeout=10)


def test_one_smtp_session_carries_consecutive_messages_and_a_dead_one_is_replaced(lab_directory: None) -> None:
    """The session is reused (no connect, TLS handshake and EHLO per message); one the server
    dropped is noticed by NOOP before use and replaced, and the message still arrives."""
    conn = mail_connector()
    try:
        first, second, third = (f"r{secrets.token_hex(4)}@example.org" for _ in range(3))
        _notify(conn, first)
        (session, _since) = conn._idle[-1]
        _notify(conn, second)
        assert [s for s, _ in conn._idle] == [session]  # the same session carried the second message
        session.sock.shutdown(2)  # as if the server had dropped the idle client
        _notify(conn, third)
        assert [s for s, _ in conn._idle] != [session]
        assert all(len(mails_to(to)) == 1 for to in (first, second, third))
    finally:
        conn.close()
    assert conn._idle == []  # close() ends every idle session


@pytest.mark.parametrize("how", ["quit", "rst"])
def test_a_session_the_server_closed_moments_ago_is_replaced_without_losing_the_message(
    lab_directory: None, how: str
) -> None:
    """A session reused without NOOP (idle under ``SMTP_TRUST_IDLE``) must still be one the
    server has not closed: the server ends it here (it answers a QUIT sent behind smtplib's
    back and closes; or the connection is reset) and the next message goes on a new one."""
    import socket
    import struct
    import time

    conn = mail_connector()
    try:
        _notify(conn, f"c{secrets.token_hex(4)}@example.org")
        (session, _since) = conn._idle[-1]
        if how == "quit":
            session.sock.sendall(b"QUIT\r\n")  # the server answers 221 and closes its end
        else:
            session.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            session.sock.sendall(b"NOOP\r\n")  # an answer nobody reads: unread data
        time.sleep(0.2)
        to = f"c{secrets.token_hex(4)}@example.org"
        _notify(conn, to)
        assert [s for s, _ in conn._idle] != [session] and session.sock is None  # closed, not used
        assert len(mails_to(to)) == 1
    finally:
        conn.close()


def test_sessions_idle_too_long_are_not_reused(lab_directory: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.mail as mail

    conn = mail_connector()
    try:
        _notify(conn, f"i{secrets.token_hex(4)}@example.org")
        (old, _since) = conn._idle[-1]
        monkeypatch.setattr(mail, "SMTP_KEEP_IDLE", -1.0)
        to = f"i{secrets.token_hex(4)}@example.org"
        _notify(conn, to)
        assert old.sock is None  # closed, not used
        assert [s for s, _ in conn._idle] != [old] and len(mails_to(to)) == 1
    finally:
        conn.close()
