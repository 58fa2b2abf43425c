"""Proof of work for the self-service request form (../shared/security.md item 5).

No third-party CAPTCHA and no CDN: after ``Settings.reset_pow_after`` code requests from
one client address within an hour, ``runner.selfservice.SelfService.request_code`` wants
a solved puzzle with the next request. The puzzle is a server-issued challenge::

    v1.<id: 32 hex>.<bits>.<expires: unix seconds>.<mac: 32 hex>

where ``mac`` is an HMAC-SHA-256 (truncated to 128 bits) over the id, difficulty, expiry
and a digest of the client address, under a key derived from the audit key (never in the
database). A solution is a decimal ``nonce`` (at most 20 digits) such that
``SHA-256(challenge + ":" + nonce)`` starts with ``bits`` zero bits; the browser finds one
with Web Crypto (``portal/static/pow.js``), a client of the API the same way.

``verify`` checks the form, the MAC (constant time), the address, the expiry and the
work; it does not check replay: the caller stores the challenge id when it accepts a
solution and refuses an id it has seen (``runner.selfservice``, in the same transaction
as the throttle count), so one solution is good for one request only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_TOKEN = re.compile(r"^v1\.([0-9a-f]{32})\.([0-9]{1,2})\.([0-9]{1,12})\.([0-9a-f]{32})$")
_NONCE = re.compile(r"^[0-9]{1,20}$")


@dataclass(frozen=True)
class Challenge:
    """One issued puzzle: the token to solve, its difficulty (leading zero bits) and expiry."""

    token: str
    bits: int
    expires: int  # unix seconds


def leading_zero_bits(digest: bytes) -> int:
    """How many zero bits *digest* starts with."""
    count = 0
    for byte in digest:
        if byte == 0:
            count += 8
            continue
        return count + 8 - byte.bit_length()
    return count


def work(token: str, nonce: str) -> bytes:
    """``SHA-256(token + ":" + nonce)``: what the solver hashes."""
    return hashlib.sha256(f"{token}:{nonce}".encode("ascii")).digest()


class ProofOfWork:
    """Issues and checks challenges under one key (see the module docstring)."""

    def __init__(self, key: bytes, *, bits: int, minutes: int = 10) -> None:
        if not 1 <= bits <= 32:
            raise ValueError("bits must be 1..32")
        self._key = hmac.new(key, b"firstline-pow-v1", hashlib.sha256).digest()
        self.bits = bits
        self.seconds = minutes * 60

    def _mac(self, ident: str, bits: int, expires: int, address: str) -> str:
        message = f"{ident}\0{bits}\0{expires}\0{address}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def issue(self, address: str | None, now: float) -> Challenge:
        """A fresh challenge for *address* (the client address as the portal resolved it)."""
        ident = secrets.token_hex(16)
        expires = int(now) + self.seconds
        mac = self._mac(ident, self.bits, expires, address or "unknown")
        return Challenge(f"v1.{ident}.{self.bits}.{expires}.{mac}", self.bits, expires)

    def verify(self, token: str | None, nonce: str | None, address: str | None, now: float) -> str | None:
        """The challenge id when *nonce* solves *token* for *address* before expiry, else None.

        Refused: malformed, forged or altered (MAC), issued to another address, expired,
        easier than the current difficulty, or not enough zero bits. Replay is the caller's
        check (store the returned id).
        """
        if not isinstance(token, str) or not isinstance(nonce, str):
            return None
        found = _TOKEN.fullmatch(token)
        if found is None or not _NONCE.fullmatch(nonce):
            return None
        ident, bits_text, expires_text, mac = found.groups()
        bits, expires = int(bits_text), int(expires_text)
        if not hmac.compare_digest(mac, self._mac(ident, bits, expires, address or "unknown")):
            return None
        if bits < self.bits or expires < now:
            return None
        if leading_zero_bits(work(token, nonce)) < bits:
            return None
        return ident


def solve(token: str, bits: int, *, limit: int = 1 << 32) -> str:
    """A nonce for *token* (what the browser does; for tests and API clients)."""
    for n in range(limit):
        if leading_zero_bits(work(token, str(n))) >= bits:
            return str(n)
    raise ValueError("no solution found within the limit")
