"""The ``mail`` connector: tell an employee that something happened to their account.

Action ``notify(to, kind, account, channel, when?, client_ip?, link?)`` sends a short
plain-text message in English and Dutch to every address in ``to`` (comma-separated: all
the addresses the directory holds, ../shared/security.md item 36): what happened
(``password_reset``, ``password_change``, ``account_unlock``), when, through which
channel, from which client address, and a "wasn't you?" line naming the service desk and
``link`` (the portal's public URL, ``Settings.public_base_url``, never a request's
``Host``). It never carries a password, code or link token: there is no input for one.

Action ``send_code(to, account, code, purpose, minutes, link)`` is the one exception: it
mails a one-time code for the portal's forgotten-password / locked-account flow
(``runner.selfservice``). ``code`` is a secret input (never logged or stored); ``link``
is the portal's code page built from the configured public URL only, never from a
request's ``Host`` (security.md item 14); the message holds no password.

The runbook passes the address it has just read from the directory (a step re-reads
``account_status`` right before ``notify``), never one typed by the requester.

Inventory target::

    mail-lab:
      connector: mail
      host: smtp.example.org
      port: 587
      sender: servicedesk@example.org
      starttls: true              # or ssl: true (port 465); both validate the certificate
      ca_file: /etc/ssl/certs/ca-certificates.crt   # optional, else the system store
      username: firstline          # optional
      password: {file: secrets/smtp}
      service_desk: "the service desk (servicedesk@example.org, +31 20 555 0100)"
      service_desk_nl: "de servicedesk (servicedesk@example.org, 020 555 0100)"   # optional: the Dutch text
      timeout: 10
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import re
import select
import smtplib
import socket
import ssl
import threading
import time
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime
from email import charset as email_charset
from email import policy as email_policy
from email.header import Header
from email.message import Message
from email.utils import format_datetime, make_msgid
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from connectors.base import (
    ActionSpec,
    AuthFailed,
    Connector,
    ConnectorError,
    InputSpec,
    InvalidInput,
    Rejected,
    SecretResolver,
    TargetConfig,
    Timeout,
    Unreachable,
)
from connectors.tls_errors import certificate_error, client_context

__all__ = ["KINDS", "MailConnector", "MailTarget", "render"]

ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
CHANNELS = {
    "portal": ("the self-service portal", "het selfserviceportaal"),
    "api": ("the service desk API", "de servicedesk-API"),
    "cli": ("a service desk agent", "een servicedeskmedewerker"),
    "agent": ("a service desk agent", "een servicedeskmedewerker"),
    "chat": ("the service desk chat", "de servicedeskchat"),
    "phone": ("the service desk by phone", "de servicedesk via de telefoon"),
}

KINDS: dict[str, dict[str, str]] = {
    "password_reset": {
        "subject_en": "Your password was reset",
        "subject_nl": "Uw wachtwoord is opnieuw ingesteld",
        "en": "The password of your account {account} was reset",
        "nl": "Het wachtwoord van uw account {account} is opnieuw ingesteld",
    },
    "password_change": {
        "subject_en": "Your password was changed",
        "subject_nl": "Uw wachtwoord is gewijzigd",
        "en": "The password of your account {account} was changed",
        "nl": "Het wachtwoord van uw account {account} is gewijzigd",
    },
    "account_unlock": {
        "subject_en": "Your account was unlocked",
        "subject_nl": "Uw account is ontgrendeld",
        "en": "Your account {account} was unlocked",
        "nl": "Uw account {account} is ontgrendeld",
    },
}


CODE_PURPOSES = {
    "reset": (
        "Your code to set a new password",
        "Uw code om een nieuw wachtwoord in te stellen",
        "Someone asked to set a new password for the account {account}.",
        "Iemand heeft gevraagd een nieuw wachtwoord in te stellen voor het account {account}.",
    ),
    "unlock": (
        "Your code to unlock your account",
        "Uw code om uw account te ontgrendelen",
        "Someone asked to unlock the account {account}.",
        "Iemand heeft gevraagd het account {account} te ontgrendelen.",
    ),
}


def render_code(
    purpose: str,
    account: str,
    code: str,
    minutes: int,
    link: str,
    service_desk: str,
    service_desk_nl: str | None = None,
) -> tuple[str, str]:
    """Subject and body (English, then Dutch) of a one-time code mail. Holds the code, no password.
    *service_desk_nl*: how the Dutch part names the service desk (default: *service_desk*)."""
    subj_en, subj_nl, what_en, what_nl = CODE_PURPOSES[purpose]
    body = (
        f"{what_en.format(account=account)}\n\n"
        f"Your code: {code}\n\n"
        f"Enter it at {link} within {minutes} minutes. It works once.\n"
        "Did not ask for this? Ignore this message; nothing changes. If it keeps happening, "
        f"contact {service_desk}.\n\n"
        "-- \n\n"
        f"{what_nl.format(account=account)}\n\n"
        f"Uw code: {code}\n\n"
        f"Vul hem in op {link} binnen {minutes} minuten. Hij werkt één keer.\n"
        "Niet aangevraagd? Negeer dit bericht; er verandert niets. Gebeurt het vaker, neem dan "
        f"contact op met {service_desk_nl or service_desk}.\n"
    )
    return f"{subj_en} / {subj_nl}", body


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """Sign in with the exact UTF-8 bytes of the credentials (AUTH PLAIN, RFC 4616).

    smtplib encodes its AUTH exchange as ASCII, so a password with ``²`` or ``é`` raised
    ``UnicodeEncodeError`` before the server was asked. Servers without PLAIN get smtplib's
    own mechanisms (ASCII credentials only; otherwise ``AuthFailed`` saying so).
    """
    smtp.ehlo_or_helo_if_needed()
    mechanisms = str(smtp.esmtp_features.get("auth", "")).upper().split()
    if "PLAIN" not in mechanisms:
        try:
            smtp.login(user, password)
        except UnicodeEncodeError:
            raise AuthFailed(
                "The mail server offers no AUTH PLAIN, and its other sign-in methods cannot carry a "
                "password with non-ASCII characters; use another password for the mail account."
            ) from None  # not chained: the exception holds the password
        return
    try:
        raw = b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8")
    except UnicodeEncodeError:
        raise ConnectorError(
            "The mail account's user name or password is not valid text; check the inventory.", reason="config_error"
        ) from None  # not chained: the exception holds the password
    token = base64.b64encode(raw).decode("ascii")
    code, response = smtp.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, response)


class MailTarget(TargetConfig):
    """Inventory settings of one SMTP relay."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(pattern=ADDRESS.pattern)
    starttls: bool = True
    ssl: bool = False
    ca_file: str | None = None
    username: str | None = None
    password: dict[str, str] | None = None
    service_desk: str = Field(default="the service desk", max_length=200)
    service_desk_nl: str | None = Field(default=None, max_length=200)  # the Dutch text; else service_desk
    timeout: float = Field(default=10.0, gt=0, le=120)
    # the clock of the times in the mails (an IANA name): the owner reads "08:55 CET", not UTC
    time_zone: str = Field(default="UTC", min_length=1, max_length=64)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name (IANA, e.g. Europe/Amsterdam or UTC)") from None
        return value

    @property
    def service_desk_texts(self) -> tuple[str, str]:
        """(English, Dutch) of ``service_desk``: the default's Dutch is "de servicedesk"."""
        default_nl = "de servicedesk" if self.service_desk == "the service desk" else self.service_desk
        return self.service_desk, self.service_desk_nl or default_nl

    @model_validator(mode="after")
    def _modes(self) -> MailTarget:
        if self.ssl and self.starttls:
            raise ValueError("choose ssl (implicit TLS) or starttls, not both")
        if self.username and not (self.ssl or self.starttls):
            raise ValueError("SMTP credentials are only sent over TLS: set starttls or ssl")
        return self


# SMTP sessions are kept for the next message: at most SMTP_MAX_IDLE per connector, each for at
# most SMTP_KEEP_IDLE seconds idle (servers drop idle clients after minutes: Postfix's
# smtpd_timeout is 300 s; RFC 5321 4.5.3.2.7 asks servers to wait at least 5 minutes).
SMTP_KEEP_IDLE = 30.0
SMTP_MAX_IDLE = 4
# A session idle this long at most is reused without NOOP when its socket looks open: a server
# that dropped it (restart, idle timeout, 421) has closed the TCP connection or sent a reply
# nobody asked for, both of which make the socket readable. Saves a round trip per message.
SMTP_TRUST_IDLE = 2.0


def _looks_open(sock: socket.socket | None) -> bool:
    """True when *sock* has nothing to read and no end of stream: the server has neither
    closed it nor said anything unasked (a 421 "closing" notice). Checked with ``poll``,
    without waiting; TLS bytes already decrypted count as unread data."""
    if sock is None:
        return False
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


@functools.cache
def _local_hostname() -> str:
    """The name said in EHLO, looked up once per process (smtplib asks ``getfqdn`` per session)."""
    return socket.getfqdn()


def _close_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        try:
            smtp.close()
        except OSError:
            pass


def _clean(value: str, what: str) -> str:
    if any(c in value for c in "\r\n\x00") or any(ord(c) < 32 for c in value):
        raise InvalidInput(f"The {what} contains line breaks or control characters.", reason="header_injection")
    return value


def render(
    kind: str,
    account: str,
    channel: str,
    when: datetime,
    service_desk: str,
    client_ip: str = "",
    link: str = "",
    service_desk_nl: str | None = None,
    password_expired: bool = False,
    time_zone: str = "UTC",
) -> tuple[str, str]:
    """Subject and body (English, then Dutch) of a notification. Contains no secret.

    *when* is said on the clock of *time_zone* (an IANA name; the target's ``time_zone``),
    with the zone's abbreviation for that moment: ``2026-11-30 08:55 CET``.

    *client_ip* is the address the request came from ('' when unknown: said so); *link*
    the portal's public URL for the "wasn't you?" line ('' leaves it out). *password_expired*
    (an unlock of an account whose password has expired): the mail says a new password is
    needed before signing in, and where to set one — "unlocked" alone read as "sign in now"."""
    k = KINDS[kind]
    via_en, via_nl = CHANNELS.get(channel, (channel, channel))
    here = when.astimezone(zoneinfo.ZoneInfo(time_zone))
    stamp = f"{here:%Y-%m-%d %H:%M} {here.tzname()}"
    subject = f"{k['subject_en']} / {k['subject_nl']}"
    from_en = f"The request came from the network address {client_ip}." if client_ip else ""
    from_nl = f"Het verzoek kwam van het netwerkadres {client_ip}." if client_ip else ""
    see_en = f" (or see {link})" if link else ""
    see_nl = f" (of zie {link})" if link else ""
    where_en = f" at {link}" if link else ""
    where_nl = f" op {link}" if link else ""
    expired_en = (
        f'Your password has expired, though: set a new one ("Forgot password"{where_en}) before you sign in.\n'
        if password_expired
        else ""
    )
    expired_nl = (
        f'Uw wachtwoord is wel verlopen: stel eerst een nieuw in ("Wachtwoord vergeten"{where_nl}) '
        "voordat u zich aanmeldt.\n"
        if password_expired
        else ""
    )
    body = (
        f"{k['en'].format(account=account)} on {stamp} through {via_en}.\n"
        + expired_en
        + (f"{from_en}\n" if from_en else "")
        + f"\nThis wasn't you? Contact {service_desk} right away{see_en}, and do not reply to this message.\n\n"
        "-- \n\n"
        f"{k['nl'].format(account=account)} op {stamp} via {via_nl}.\n"
        + expired_nl
        + (f"{from_nl}\n" if from_nl else "")
        + f"\nWas u dit niet? Neem direct contact op met {service_desk_nl or service_desk}{see_nl}, "
        "en beantwoord dit bericht niet.\n"
    )
    return subject, body


# RFC 2045 body encodings: 7bit for ASCII, else UTF-8 in quoted-printable (readable, and safe
# through every relay). The header values are ASCII but for the subject, which is encoded
# (RFC 2047) when it is not.
_UTF8_QP = email_charset.Charset("utf-8")
_UTF8_QP.body_encoding = email_charset.QP
_SMTP = email_policy.compat32.clone(linesep="\r\n", max_line_length=78, mangle_from_=False)


def build_message(sender: str, to: str, subject: str, body: str, kind: str, message_id: str) -> bytes:
    """The RFC 5322 message (CRLF line ends) that ``_send`` hands to the relay.

    Built with the standard library's ``email.message.Message`` under the ``compat32``
    policy: the same headers and body as ``EmailMessage`` gives, at about a quarter of the
    cost (measured 0.26 vs 0.93 ms per message on the lab machine; ``EmailMessage`` parses
    every header it is given through the header registry). *sender*, *to* and *kind* are
    checked ASCII (``ADDRESS``, ``KINDS``) before they get here."""
    msg = Message(policy=_SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Firstline-Kind"] = kind
    msg["MIME-Version"] = "1.0"
    if body.isascii() and all(len(line) <= 998 for line in body.splitlines()):
        msg["Content-Type"] = 'text/plain; charset="us-ascii"'
        msg["Content-Transfer-Encoding"] = "7bit"
        msg.set_payload(body)
    else:
        msg.set_payload(body, _UTF8_QP)
    return msg.as_bytes(policy=_SMTP)


class MailConnector(Connector):
    """Sends account notifications through an SMTP relay (see the module docstring)."""

    name = "mail"
    config_model = MailTarget
    actions: ClassVar[Mapping[str, ActionSpec]] = {
        "notify": ActionSpec(
            name="notify",
            inputs=(
                InputSpec("to", max_length=2048),  # one address, or several separated by commas
                InputSpec("kind", max_length=32),
                InputSpec("account", max_length=64),
                InputSpec("channel", max_length=32),
                InputSpec("when", required=False, max_length=64),
                InputSpec("client_ip", required=False, max_length=64),
                InputSpec("link", required=False, max_length=512),
                # the account's password has expired (account_unlock): say that a new one is needed
                InputSpec("password_expired", type="bool", required=False),
            ),
            outputs=frozenset({"sent", "to", "message_id"}),
            changes_state=True,
            description="E-mail the account owner that their password or lock state changed.",
        ),
        "send_code": ActionSpec(
            name="send_code",
            inputs=(
                InputSpec("to", max_length=254),
                InputSpec("account", max_length=64),
                InputSpec("code", secret=True, max_length=64),
                InputSpec("purpose", max_length=16),
                InputSpec("minutes", type="int"),
                InputSpec("link", max_length=512),
            ),
            outputs=frozenset({"sent", "message_id"}),
            changes_state=True,
            description="E-mail a one-time code (forgotten password, locked account) to the directory's address.",
        ),
    }

    config: MailTarget

    def __init__(self, target_name: str, config: TargetConfig, secrets: SecretResolver) -> None:
        super().__init__(target_name, config, secrets)
        self._idle: list[tuple[smtplib.SMTP, float]] = []  # sessions ready for the next message
        self._idle_lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def check_connection(self, *, timeout: float) -> str:
        """Connect (TLS as configured), EHLO, sign in when configured, NOOP; sends nothing."""
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        limit = min(timeout, cfg.timeout)
        try:
            smtp: smtplib.SMTP
            if cfg.ssl:
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=limit, context=self._ssl_context())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=limit)
            with smtp:
                smtp.ehlo()
                if cfg.starttls:
                    smtp.starttls(context=self._ssl_context())
                    smtp.ehlo()
                if cfg.username and cfg.password:
                    _login(smtp, cfg.username, self._secrets(cfg.password))
                code, _ = smtp.noop()
        except smtplib.SMTPAuthenticationError as exc:
            raise AuthFailed(f"The mail server {where} refused the credentials.") from exc
        except ssl.SSLCertVerificationError as exc:
            raise self._tls_error(exc, where) from exc
        except TimeoutError as exc:
            raise Timeout(f"The mail server {where} did not answer in time.") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise Unreachable(f"The mail server {where} cannot be reached or failed.") from exc
        if code != 250:
            raise Unreachable(f"The mail server {where} answered NOOP with {code}.")
        tls = "TLS" if cfg.ssl else "STARTTLS" if cfg.starttls else "no TLS"
        auth = f", signed in as {cfg.username}" if cfg.username else ""
        return f"EHLO and NOOP accepted ({tls}{auth})"

    def _ssl_context(self) -> ssl.SSLContext:
        """Verifying context; ``config_error`` naming ``ca_file`` if it is unreadable or not PEM."""
        return client_context(self.config.ca_file, setting=f"ca_file of target '{self.target_name}'")

    def _tls_error(self, exc: ssl.SSLCertVerificationError, where: str) -> ConnectorError:
        """Untrusted issuer / name mismatch / expired, each naming the setting to fix."""
        error = certificate_error(
            exc,
            what=f"the mail server {where}",
            ca_setting=f"ca_file of target '{self.target_name}'",
            name_setting=f"host of target '{self.target_name}'",
            name=self.config.host,
        )
        return error or Unreachable(f"The TLS handshake with the mail server {where} failed.")

    def send_code(
        self, *, timeout: float, to: str, account: str, code: str, purpose: str, minutes: int, link: str
    ) -> dict[str, Any]:
        to, account, link = _clean(to, "address"), _clean(account, "account"), _clean(link, "link")
        if not to:
            raise Rejected("The account has no e-mail address in the directory.", reason="no_address")
        if not ADDRESS.fullmatch(to):
            raise InvalidInput("The e-mail address is not valid.", reason="invalid_address")
        if purpose not in CODE_PURPOSES:
            raise InvalidInput("Unknown code purpose; use reset or unlock.", reason="invalid_kind")
        if not (code.isascii() and code.isalnum()):
            raise InvalidInput("The code is not a code.", reason="invalid_code")
        subject, body = render_code(purpose, account, code, int(minutes), link, *self.config.service_desk_texts)
        message_id = self._send(to, subject, body, f"code_{purpose}", timeout)
        return {"sent": True, "message_id": message_id}

    def notify(
        self,
        *,
        timeout: float,
        to: str,
        kind: str,
        account: str,
        channel: str,
        when: str | None = None,
        client_ip: str | None = None,
        link: str | None = None,
        password_expired: bool = False,
    ) -> dict[str, Any]:
        to, account, channel = _clean(to, "address"), _clean(account, "account"), _clean(channel, "channel")
        recipients = list(dict.fromkeys(a.strip() for a in to.split(",") if a.strip()))
        if not recipients:
            raise Rejected("The account has no e-mail address in the directory.", reason="no_address")
        if any(not ADDRESS.fullmatch(a) for a in recipients):
            raise InvalidInput("The e-mail address is not valid.", reason="invalid_address")
        ip = _clean(client_ip or "", "client address").strip()
        if ip:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                raise InvalidInput("The client address is not an IP address.", reason="invalid_client_ip") from None
        url = _clean(link or "", "link").strip()
        if url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
            raise InvalidInput("The link is not an http(s) URL without query.", reason="invalid_link")
        if kind not in KINDS:
            raise InvalidInput(f"Unknown notification kind; use one of {', '.join(KINDS)}.", reason="invalid_kind")
        moment = datetime.now(UTC)
        if when:
            try:
                moment = datetime.fromisoformat(_clean(when, "time"))
            except ValueError as exc:
                raise InvalidInput("The time is not an ISO 8601 timestamp.", reason="invalid_time") from exc
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        en, nl = self.config.service_desk_texts
        expired = bool(password_expired) and kind == "account_unlock"
        subject, body = render(
            kind,
            account,
            channel,
            moment,
            en,
            ip,
            url,
            service_desk_nl=nl,
            password_expired=expired,
            time_zone=self.config.time_zone,
        )
        # one message per address (each sees only its own); every address is tried, the first failure raised
        ids, failure = [], None
        for address in recipients:
            try:
                ids.append(self._send(address, subject, body, kind, timeout))
            except ConnectorError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return {"sent": True, "to": ", ".join(recipients), "message_id": " ".join(ids)}

    def _send(self, to: str, subject: str, body: str, kind: str, timeout: float) -> str:
        """Send one plain-text message; the Message-ID. Raises the connector errors.

        The SMTP session is reused (``_checkout`` / ``_checkin``): a connection that just
        delivered a message goes back to this connector's idle set for the next one."""
        cfg = self.config
        message_id = make_msgid(domain=cfg.sender.split("@", 1)[1])
        data = build_message(cfg.sender, to, subject, body, kind, message_id)
        limit = min(timeout, cfg.timeout)
        where = f"{cfg.host}:{cfg.port}"
        try:
            smtp = self._checkout(limit)
            delivered = False
            try:
                refused = smtp.sendmail(cfg.sender, [to], data)
                delivered = True
            finally:
                if delivered:
                    self._checkin(smtp)
                else:
                    _close_quietly(smtp)
        except smtplib.SMTPAuthenticationError as exc:
            raise AuthFailed(f"The mail server {where} refused the credentials.") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise Rejected("The mail server refused the recipient address.", reason="recipient_refused") from exc
        except ssl.SSLCertVerificationError as exc:
            raise self._tls_error(exc, where) from exc
        except TimeoutError as exc:
            raise Timeout(f"The mail server {where} did not answer in time.") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise Unreachable(f"The mail server {where} cannot be reached or failed.") from exc
        if refused:
            raise Rejected("The mail server refused the recipient address.", reason="recipient_refused")
        return message_id

    # -- SMTP sessions, reused ---------------------------------------------------------------
    def _connect(self, limit: float) -> smtplib.SMTP:
        """A new session: TCP (TCP_NODELAY), TLS as configured, AUTH when configured."""
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.ssl:
            smtp = smtplib.SMTP_SSL(
                cfg.host, cfg.port, local_hostname=_local_hostname(), timeout=limit, context=self._context()
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=_local_hostname(), timeout=limit)
        try:
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if cfg.starttls:
                smtp.starttls(context=self._context())
            if cfg.username and cfg.password:
                _login(smtp, cfg.username, self._secrets(cfg.password))
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp

    def _checkout(self, limit: float) -> smtplib.SMTP:
        """An idle session (newest first; those idle longer than ``SMTP_KEEP_IDLE`` seconds
        are closed), else a new one (``_connect``). One idle for at most ``SMTP_TRUST_IDLE``
        seconds is used when its socket shows no close and no unread data (``_looks_open``,
        no round trip); one idle longer must first answer NOOP with 250."""
        now = time.monotonic()
        while True:
            with self._idle_lock:
                if not self._idle:
                    break
                smtp, since = self._idle.pop()
            if now - since > SMTP_KEEP_IDLE:
                _close_quietly(smtp)
                continue
            try:
                if _looks_open(smtp.sock):
                    assert smtp.sock is not None
                    smtp.sock.settimeout(limit)
                    if now - since <= SMTP_TRUST_IDLE or smtp.noop()[0] == 250:
                        return smtp
            except (smtplib.SMTPException, OSError):
                pass
            _close_quietly(smtp)
        return self._connect(limit)

    def _checkin(self, smtp: smtplib.SMTP) -> None:
        with self._idle_lock:
            if len(self._idle) < SMTP_MAX_IDLE:
                self._idle.append((smtp, time.monotonic()))
                return
        _close_quietly(smtp)

    def _context(self) -> ssl.SSLContext:
        """The verifying TLS context, built once per connector (it reads the CA file)."""
        with self._idle_lock:
            if self._tls is None:
                self._tls = self._ssl_context()
            return self._tls

    def close(self) -> None:
        """QUIT every idle session; never raises."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for smtp, _since in idle:
            _close_quietly(smtp)
