"""known_hosts read as OpenSSH reads it, for the ssh connector's host key check.

The format is sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT": one key per line,
``[marker] hostpatterns keytype base64-key [comment]``, fields separated by blanks.

* Blank lines and lines starting with ``#`` are ignored.
* ``hostpatterns`` is a comma-separated list: plain names, ``[host]:port`` for a port other
  than 22, wildcards ``*`` and ``?``, negations ``!pattern`` (a matching negation excludes the
  line whatever else matches), or one hashed name ``|1|base64(salt)|base64(HMAC-SHA1)``.
  Names compare without case, as OpenSSH lower-cases host names.
* ``@revoked`` marks a key that must never be accepted. This module is stricter than OpenSSH
  (which applies the mark to the hosts the line's patterns match): a revoked key is refused
  for every host of the file, even when another line lists it as trusted.
* ``@cert-authority`` lines name a CA for host certificates. paramiko cannot verify host
  certificates, so these lines are skipped (with a logged warning) and never grant trust; a
  host known only through a CA is reported as unknown, with a hint.
* A well-formed line whose key type paramiko does not know (``ssh-dss``,
  ``sk-ssh-ed25519@openssh.com``, certificate types) is skipped with a logged warning, as
  OpenSSH skips what it cannot use; its key still counts for ``@revoked``.
* Anything else that cannot be read — too few fields, an unknown marker, bad base64, key data
  of another type than the line says, a malformed hashed name, a key paramiko refuses — raises
  ``KnownHostsError`` naming the line number: a trust file is never half read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import paramiko
from paramiko.pkey import UnknownKeyType

__all__ = ["HostKeyCheck", "KnownHosts", "KnownHostsError", "KnownLine", "host_key_algorithms", "lookup_name"]

log = logging.getLogger("firstline.connectors.known_hosts")

Marker = Literal["", "@cert-authority", "@revoked"]
Verdict = Literal["trusted", "revoked", "changed", "unknown"]
_MARKERS: frozenset[str] = frozenset({"@cert-authority", "@revoked"})
_HASH_MAGIC = "|1|"


class KnownHostsError(ValueError):
    """The known_hosts content cannot be read; the message names the line (never key data)."""


@dataclass(frozen=True)
class KnownLine:
    """One key line: its marker, host patterns, declared key type and raw key blob."""

    lineno: int
    marker: Marker
    patterns: tuple[str, ...]
    key_type: str
    blob: bytes
    key: paramiko.PKey | None
    """The parsed key, or None when paramiko does not support the key type."""

    def matches(self, name: str) -> bool:
        return host_matches(self.patterns, name)


def lookup_name(address: str, port: int) -> str:
    """The name OpenSSH looks up: ``host`` on port 22, ``[host]:port`` otherwise (lower-cased)."""
    host = address.lower()
    return host if port == 22 else f"[{host}]:{port}"


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _hashed_matches(field: str, name: str) -> bool:
    _, _, salt_b64, hash_b64 = field.split("|")
    salt = base64.b64decode(salt_b64)
    digest = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
    return hmac.compare_digest(digest, base64.b64decode(hash_b64))


def host_matches(patterns: Iterable[str], name: str) -> bool:
    """OpenSSH's match_hostname: any positive pattern matches and no negated one does."""
    name = name.lower()
    matched = False
    for pattern in patterns:
        if pattern.startswith(_HASH_MAGIC):
            matched = matched or _hashed_matches(pattern, name)
            continue
        negated = pattern.startswith("!")
        body = (pattern[1:] if negated else pattern).lower()
        if _pattern_regex(body).fullmatch(name):
            if negated:
                return False
            matched = True
    return matched


def _check_hashed(field: str) -> str | None:
    """None when *field* is a well-formed ``|1|salt|hash``, else what is wrong."""
    parts = field.split("|")
    if len(parts) != 4 or parts[0] or parts[1] != "1":
        return "a hashed host name must look like |1|salt|hash"
    try:
        salt = base64.b64decode(parts[2], validate=True)
        digest = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return "the hashed host name is not valid base64"
    if len(salt) != 20 or len(digest) != 20:
        return "the hashed host name has a salt or hash of the wrong length"
    return None


def _blob_type(blob: bytes) -> str | None:
    """The key type written at the start of an SSH public key blob, or None if unreadable."""
    if len(blob) < 4:
        return None
    (size,) = struct.unpack(">I", blob[:4])
    if size == 0 or size > 64 or len(blob) < 4 + size:
        return None
    try:
        return blob[4 : 4 + size].decode("ascii")
    except UnicodeDecodeError:
        return None


def _parse_line(lineno: int, line: str) -> KnownLine:
    def bad(why: str) -> KnownHostsError:
        return KnownHostsError(f"line {lineno}: {why}")

    fields = line.split()
    marker: Marker = ""
    if fields[0].startswith("@"):
        if fields[0] not in _MARKERS:
            raise bad(f"unknown marker '{fields[0][:40]}' (known: @cert-authority, @revoked)")
        marker = "@revoked" if fields[0] == "@revoked" else "@cert-authority"
        fields = fields[1:]
    if len(fields) < 3:
        raise bad("expected 'hostpatterns keytype base64-key'")
    hosts, key_type, b64 = fields[0], fields[1], fields[2]
    if hosts.startswith("|"):
        problem = _check_hashed(hosts)
        if problem is not None:
            raise bad(problem)
        patterns: tuple[str, ...] = (hosts,)
    else:
        patterns = tuple(p for p in hosts.split(",") if p)
        if not patterns or any(p in ("!", "") or p.startswith("|") for p in patterns):
            raise bad("the host pattern list is malformed")
    if not re.fullmatch(r"[A-Za-z0-9@._+-]{1,64}", key_type):
        raise bad("the key type is missing or malformed (SSH protocol 1 keys are not supported)")
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"the {key_type} key is not valid base64") from None
    if _blob_type(blob) != key_type:
        raise bad(f"the key data is not a {key_type} key")
    key: paramiko.PKey | None = None
    try:
        if not key_type.endswith("-cert-v01@openssh.com"):  # a certificate is not a host key here
            key = paramiko.PKey.from_type_string(key_type, blob)
    except UnknownKeyType:
        key = None
    except Exception:  # noqa: BLE001  # paramiko/cryptography raise many types for bad key data
        raise bad(f"the {key_type} key cannot be read") from None
    return KnownLine(lineno, marker, patterns, key_type, blob, key)


@dataclass(frozen=True)
class HostKeyCheck:
    """What the file says about one host: the keys it trusts, and every revoked key."""

    name: str
    trusted: tuple[paramiko.PKey, ...]
    revoked: frozenset[bytes]
    cert_authorities: int
    """How many ``@cert-authority`` lines match the host (skipped: not supported)."""

    def verdict(self, key: paramiko.PKey) -> Verdict:
        """``revoked`` beats everything; then ``trusted``; a key of a known type is ``changed``."""
        blob = key.asbytes()
        if blob in self.revoked:
            return "revoked"
        if any(k.asbytes() == blob for k in self.trusted):
            return "trusted"
        if any(k.get_name() == key.get_name() for k in self.trusted):
            return "changed"
        return "unknown"


class KnownHosts:
    """A parsed known_hosts file. ``KnownHosts.parse(text)`` raises ``KnownHostsError``."""

    def __init__(self, lines: tuple[KnownLine, ...]) -> None:
        self.lines = lines

    @classmethod
    def parse(cls, text: str) -> KnownHosts:
        lines: list[KnownLine] = []
        for lineno, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            entry = _parse_line(lineno, line)
            if entry.marker == "@cert-authority":
                log.warning(
                    "known_hosts line %d: @cert-authority skipped (host certificates are not supported)", lineno
                )
            elif entry.key is None:
                log.warning("known_hosts line %d: key type %s is not supported; line skipped", lineno, entry.key_type)
            lines.append(entry)
        return cls(tuple(lines))

    def for_host(self, address: str, port: int) -> HostKeyCheck:
        name = lookup_name(address, port)
        revoked = frozenset(e.blob for e in self.lines if e.marker == "@revoked")
        trusted: list[paramiko.PKey] = []
        authorities = 0
        for e in self.lines:
            if e.marker == "@revoked" or not e.matches(name):
                continue
            if e.marker == "@cert-authority":
                authorities += 1
            elif e.key is not None and e.blob not in revoked:
                trusted.append(e.key)
        return HostKeyCheck(name, tuple(trusted), revoked, authorities)


def host_key_algorithms(keys: Iterable[paramiko.PKey]) -> list[str]:
    """Host key algorithms to offer first, in file order (an RSA key is offered as rsa-sha2-*)."""
    out: list[str] = []
    for key in keys:
        name = key.get_name()
        algs = ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if name == "ssh-rsa" else [name]
        out.extend(a for a in algs if a not in out)
    return out
