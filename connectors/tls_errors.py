"""TLS set-up and failures as plain, specific errors that name the inventory setting to fix.

Shared by the directory (``ldap``) and ``mail`` connectors (the ``winrm`` connector has
its own copy with the same reason codes). A certificate verification failure is told
apart by its OpenSSL ``X509_V_ERR`` code (``ssl.SSLCertVerificationError.verify_code``):

* ``certificate_untrusted`` — 2, 18, 19, 20, 21, 27, 28: the issuer is not in the trusted
  CA file (or the certificate is self-signed);
* ``certificate_name_mismatch`` — 62, 64: the certificate does not carry the expected host
  name / IP address;
* ``certificate_expired`` — 9, 10: outside its validity period;
* ``certificate_invalid`` — anything else.

A CA file that cannot be read or holds no PEM certificate is a ``config_error``. Messages
never include file paths (the operator log has the chained exception).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from connectors.base import AuthFailed, ConnectorError

__all__ = ["EXPIRED", "NAME_MISMATCH", "UNTRUSTED", "certificate_error", "client_context"]

UNTRUSTED = frozenset({2, 18, 19, 20, 21, 27, 28})
EXPIRED = frozenset({9, 10})
NAME_MISMATCH = frozenset({62, 64})


def client_context(ca_file: Any, *, setting: str, resolve: Callable[[Any], str] | None = None) -> ssl.SSLContext:
    """A verifying client context (TLS 1.2+, host names checked) trusting *ca_file*.

    *ca_file* is a path, ``{file: ...}`` resolved through *resolve* (PEM text), or None for
    the system store. *setting* names it in messages (``"ca_file of target 'corp'"``).
    """
    if ca_file is None:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    unreadable = f"The CA certificate file named by {setting} cannot be read; fix it in the inventory."
    no_pem = f"The file named by {setting} holds no readable PEM CA certificate; fix it in the inventory."
    try:
        if isinstance(ca_file, dict):
            if resolve is None:
                raise ConnectorError(unreadable, reason="config_error")
            try:
                pem = resolve(ca_file)
            except Exception as exc:  # the resolver's errors (missing, unreadable, not UTF-8)
                raise ConnectorError(unreadable, reason="config_error") from exc
            context.load_verify_locations(cadata=pem)
        elif ca_file is not None:
            context.load_verify_locations(cafile=str(ca_file))
    except (ssl.SSLError, ValueError) as exc:  # before OSError: SSLError is one
        raise ConnectorError(no_pem, reason="config_error") from exc
    except OSError as exc:
        raise ConnectorError(
            f"The CA certificate file named by {setting} cannot be read ({exc.strerror or 'unreadable'}); "
            "fix it in the inventory.",
            reason="config_error",
        ) from exc
    if ca_file is not None and not context.cert_store_stats().get("x509", 0):
        raise ConnectorError(no_pem, reason="config_error")
    return context


def certificate_error(
    exc: BaseException, *, what: str, ca_setting: str, name_setting: str, name: str
) -> AuthFailed | None:
    """The certificate failure in *exc* (or its causes) as a specific ``AuthFailed``; else None.

    *what* names the server ("the directory at 127.0.0.1:636"), *ca_setting* and
    *name_setting* the inventory settings to fix, *name* the name that was expected.
    """
    cert = _find(exc)
    if cert is None:
        return None
    code, detail = cert.verify_code, cert.verify_message or ""
    if code in UNTRUSTED:
        return AuthFailed(
            f"The certificate of {what} was issued by a CA that is not trusted ({detail}); "
            f"set {ca_setting} to the CA that issued it.",
            reason="certificate_untrusted",
        )
    if code in NAME_MISMATCH:
        return AuthFailed(
            f"The certificate of {what} does not carry the name '{name}'; set {name_setting} "
            "to a name in the certificate.",
            reason="certificate_name_mismatch",
        )
    if code in EXPIRED:
        return AuthFailed(
            f"The certificate of {what} is outside its validity period ({detail}); the server's "
            "certificate must be renewed (the CA file is not the problem).",
            reason="certificate_expired",
        )
    return AuthFailed(
        f"The certificate of {what} was not accepted ({detail}); check {ca_setting} and {name_setting}.",
        reason="certificate_invalid",
    )


def _find(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
